// The query page's SPARQL editor: CodeMirror 6 with the SPARQL stream mode, completion of
// keywords, prefixes and the ontology's terms, Ctrl/Cmd+Enter to run. Bundled by build.mjs into
// src/copkg/web/static/vendor/copkg-editor.js, which sets window.CopkgEditor.
import { EditorState } from "@codemirror/state";
import {
  EditorView, keymap, lineNumbers, highlightActiveLine, drawSelection, placeholder,
} from "@codemirror/view";
import { defaultKeymap, history, historyKeymap, indentWithTab } from "@codemirror/commands";
import {
  StreamLanguage, syntaxHighlighting, bracketMatching, indentOnInput,
} from "@codemirror/language";
import { classHighlighter, tags } from "@lezer/highlight";
import { sparql } from "@codemirror/legacy-modes/mode/sparql";
import {
  autocompletion, completionKeymap, closeBrackets, closeBracketsKeymap,
} from "@codemirror/autocomplete";
import { searchKeymap, highlightSelectionMatches } from "@codemirror/search";

const KEYWORDS = [
  "PREFIX", "BASE", "SELECT", "DISTINCT", "REDUCED", "CONSTRUCT", "DESCRIBE", "ASK", "FROM",
  "NAMED", "WHERE", "ORDER BY", "GROUP BY", "HAVING", "LIMIT", "OFFSET", "FILTER", "OPTIONAL",
  "GRAPH", "UNION", "MINUS", "VALUES", "BIND", "SERVICE", "NOT EXISTS", "EXISTS", "ASC", "DESC",
  "AS", "IN", "NOT IN", "UNDEF", "COUNT", "SUM", "MIN", "MAX", "AVG", "SAMPLE", "GROUP_CONCAT",
  "STR", "LANG", "LANGMATCHES", "DATATYPE", "BOUND", "IRI", "ISIRI", "ISBLANK", "ISLITERAL",
  "REGEX", "CONTAINS", "STRSTARTS", "STRENDS", "LCASE", "UCASE", "CONCAT", "COALESCE", "IF",
];

/** Completion source: `prefix:` names, terms of a declared-or-known prefix, keywords. */
function sparqlCompletions(vocabulary) {
  const prefixes = vocabulary.prefixes || {};
  return (context) => {
    const terms = vocabulary.terms || [];
    // a prefixed name being typed: prefix:local
    const name = context.matchBefore(/[A-Za-z][\w.-]*:[\w.-]*$/);
    if (name) {
      const colon = name.text.indexOf(":");
      const prefix = name.text.slice(0, colon);
      const ns = declaredPrefixes(context.state.doc.toString())[prefix] || prefixes[prefix];
      if (!ns) { return null; }
      const options = terms
        .filter((t) => t.iri.startsWith(ns) && /^[\w.-]*$/.test(t.iri.slice(ns.length)))
        .map((t) => ({
          label: prefix + ":" + t.iri.slice(ns.length),
          type: t.kind || "variable",
          detail: t.label || "",
          info: t.comment || undefined,
        }));
      return { from: name.from, options, validFor: /^[\w.:-]*$/ };
    }
    const word = context.matchBefore(/[A-Za-z_][\w]*$/);
    if (!word && !context.explicit) { return null; }
    const from = word ? word.from : context.pos;
    const line = context.state.doc.lineAt(context.pos).text;
    const options = [];
    // after PREFIX: the whole declaration
    if (/^\s*PREFIX\s+[\w-]*$/i.test(line.slice(0, context.pos - context.state.doc.lineAt(context.pos).from))) {
      Object.keys(prefixes).forEach((p) => options.push({
        label: p + ": <" + prefixes[p] + ">", type: "namespace", detail: "prefix",
      }));
      return { from, options };
    }
    KEYWORDS.forEach((k) => options.push({ label: k, type: "keyword" }));
    Object.keys(prefixes).forEach((p) => options.push({
      label: p + ":", type: "namespace", detail: prefixes[p], boost: -1,
    }));
    return { from, options, validFor: /^[A-Za-z_][\w]*$/ };
  };
}

/** The prefixes a query declares itself (PREFIX p: <ns>). */
function declaredPrefixes(text) {
  const found = {};
  const re = /PREFIX\s+([A-Za-z][\w.-]*)?:\s*<([^>]*)>/gi;
  let m;
  while ((m = re.exec(text)) !== null) { found[m[1] || ""] = m[2]; }
  return found;
}

/**
 * Replace a textarea with the editor; the textarea stays (hidden) and follows the text, so the
 * form still submits it. Returns {view, getValue, setValue, focus, markError, clearError}.
 */
function create(textarea, options) {
  const opts = options || {};
  const vocabulary = { prefixes: opts.prefixes || {}, terms: [] };
  const runKeys = [
    { key: "Mod-Enter", run: () => { if (opts.onRun) { opts.onRun(); } return true; } },
  ];
  const labelled = {};
  if (textarea.id) {
    const label = document.querySelector('label[for="' + textarea.id + '"]');
    if (label) {
      if (!label.id) { label.id = textarea.id + "-label"; }
      labelled["aria-labelledby"] = label.id;
    }
  }
  if (opts.describedBy) { labelled["aria-describedby"] = opts.describedBy; }
  const state = EditorState.create({
    doc: textarea.value,
    extensions: [
      lineNumbers(),
      history(),
      drawSelection(),
      indentOnInput(),
      bracketMatching(),
      closeBrackets(),
      highlightActiveLine(),
      highlightSelectionMatches(),
      StreamLanguage.define({ ...sparql, tokenTable: { builtin: tags.keyword } }),
      syntaxHighlighting(classHighlighter),
      autocompletion({ override: [sparqlCompletions(vocabulary)], activateOnTyping: true }),
      keymap.of([
        ...runKeys, ...closeBracketsKeymap, ...defaultKeymap, ...searchKeymap,
        ...historyKeymap, ...completionKeymap, indentWithTab,
      ]),
      EditorView.lineWrapping,
      EditorView.contentAttributes.of({ ...labelled, "aria-multiline": "true", spellcheck: "false" }),
      placeholder(opts.placeholder || "SELECT ..."),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) {
          textarea.value = update.state.doc.toString();
          if (opts.onChange) { opts.onChange(textarea.value); }
        }
      }),
    ],
  });
  const host = document.createElement("div");
  host.className = "copkg-editor";
  textarea.parentNode.insertBefore(host, textarea);
  textarea.hidden = true;
  const view = new EditorView({ state, parent: host });

  function setValue(text) {
    view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
  }
  return {
    view,
    getValue: () => view.state.doc.toString(),
    setValue,
    focus: () => view.focus(),
    setTerms: (terms) => { vocabulary.terms = terms || []; },
    /** Put the cursor at line/column (1-based) and select the rest of that word. */
    goTo: (line, column) => {
      const doc = view.state.doc;
      if (!line || line < 1 || line > doc.lines) { return; }
      const l = doc.line(line);
      const pos = Math.min(l.from + Math.max(0, (column || 1) - 1), l.to);
      view.dispatch({ selection: { anchor: pos }, scrollIntoView: true });
    },
  };
}

window.CopkgEditor = { create, declaredPrefixes };
