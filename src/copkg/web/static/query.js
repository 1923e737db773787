// The query page: a SPARQL editor (vendor/copkg-editor.js, CodeMirror 6), named queries with a
// form for their parameters, and the answer as a table with labels, sorting, paging and downloads.
// All behaviour lives here (no inline script), so a Content-Security-Policy can forbid it.
(function () {
  "use strict";
  var BASE = "https://w3id.org/copkg";
  var RDFS_LABEL = "http://www.w3.org/2000/01/rdf-schema#label";
  var ACCEPT = "application/sparql-results+json, application/n-triples;q=0.9";
  var PAGE_SIZES = [25, 50, 100, 250];

  var form = document.getElementById("query-form");
  if (!form) { return; }
  var select = document.getElementById("examples");
  var textarea = document.getElementById("sparql");
  var summary = document.getElementById("example-summary");
  var paramBox = document.getElementById("named-params");
  var paramFields = document.getElementById("param-fields");
  var editedNote = document.getElementById("edited-note");
  var statusLine = document.getElementById("status");
  var permalink = document.getElementById("permalink");
  var sparqlBox = document.getElementById("sparql-box");
  var sparqlBoxHint = document.getElementById("sparql-box-hint");
  var results = document.getElementById("results");
  var sparqlUrl = form.getAttribute("data-sparql") || "/sparql";
  var prefixes = {};
  try { prefixes = JSON.parse(form.getAttribute("data-prefixes") || "{}"); } catch (e) { prefixes = {}; }

  var examples = {};      // name -> the /api/queries entry
  var named = null;       // the named query in the editor: {name, body}, null for plain SPARQL
  var labels = {};        // IRI -> label, filled as pages of results are shown
  var terms = [];         // the ontology's terms, for completion and option labels
  var view = null;        // the table being shown: {vars, rows, sort, dir, page, size}
  var editor = null;
  var running = 0;        // a counter: an answer that comes back late is dropped

  // -- small helpers -----------------------------------------------------------------------

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = text; }
    if (attrs) { Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); }); }
    return node;
  }

  function localHref(iri) {
    if (iri.indexOf(BASE + "/") === 0) { return iri.substring(BASE.length); }
    return iri;
  }

  function curie(iri) {
    var best = "", bestPrefix = "";
    Object.keys(prefixes).forEach(function (p) {
      var ns = prefixes[p];
      if (iri.indexOf(ns) === 0 && ns.length > best.length) { best = ns; bestPrefix = p; }
    });
    var rest = iri.substring(best.length);
    if (best && /^[\w\-.]*$/.test(rest)) { return bestPrefix + ":" + rest; }
    return iri;
  }

  function expand(value) {
    var m = /^([A-Za-z][\w\-.]*):([\w\-.]*)$/.exec(value || "");
    if (m && prefixes[m[1]]) { return prefixes[m[1]] + m[2]; }
    return value;
  }

  function getText() { return editor ? editor.getValue() : textarea.value; }
  function setText(text) {
    if (editor) { editor.setValue(text); } else { textarea.value = text; }
  }

  /** A query's text without its `#+` header (the lines a named query starts with). */
  function body(text) {
    var lines = text.split("\n");
    var i = 0;
    while (i < lines.length && /^#\+/.test(lines[i])) { i += 1; }
    return lines.slice(i).join("\n").replace(/^\s*\n/, "");
  }

  function setStatus(text) { statusLine.textContent = text; }

  // -- the editor --------------------------------------------------------------------------

  if (window.CopkgEditor) {
    editor = window.CopkgEditor.create(textarea, {
      prefixes: prefixes,
      describedBy: "editor-help",
      onRun: function () { run(); },
      onChange: function (text) {
        if (named && text !== named.body) { leaveNamed(); }
      }
    });
    var label = document.getElementById("sparql-label");
    if (label) { label.addEventListener("click", function () { editor.focus(); }); }
  } else {
    textarea.addEventListener("keydown", function (event) {
      if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { event.preventDefault(); run(); }
    });
    textarea.addEventListener("input", function () {
      if (named && textarea.value !== named.body) { leaveNamed(); }
    });
  }

  /** The ontology's terms (copkg: namespace) with kind, label and definition, for completion. */
  function loadTerms() {
    var ns = prefixes.copkg || BASE + "/ontology#";
    var q = "PREFIX owl: <http://www.w3.org/2002/07/owl#>\n" +
      "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n" +
      "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n" +
      "SELECT ?term ?type ?label ?comment WHERE { ?term a ?type .\n" +
      "  FILTER(isIRI(?term) && STRSTARTS(STR(?term), \"" + ns + "\"))\n" +
      "  OPTIONAL { ?term rdfs:label ?label FILTER(LANGMATCHES(LANG(?label), \"en\") || LANG(?label) = \"\") }\n" +
      "  OPTIONAL { ?term skos:definition|rdfs:comment ?comment } }";
    return sparqlJson(q).then(function (data) {
      var byIri = {};
      data.results.bindings.forEach(function (b) {
        var iri = b.term.value;
        var t = byIri[iri] || (byIri[iri] = { iri: iri, kinds: {} });
        t.kinds[b.type.value.replace(/^.*[#/]/, "")] = true;
        if (b.label && !t.label) { t.label = b.label.value; }
        if (b.comment && !t.comment) { t.comment = b.comment.value; }
      });
      terms = Object.keys(byIri).sort().map(function (iri) {
        var t = byIri[iri], k = t.kinds;
        var kind = k.Class ? "class" : (k.ObjectProperty || k.DatatypeProperty ||
          k.AnnotationProperty || k.Property) ? "property" : "constant";
        if (t.label) { labels[iri] = t.label; }
        return { iri: iri, kind: kind, label: t.label || "", comment: t.comment || "" };
      });
      if (editor) { editor.setTerms(terms); }
      form.setAttribute("data-terms", String(terms.length));
      relabelOptions();
    });
  }

  function sparqlJson(q) {
    var data = new URLSearchParams();
    data.set("query", q);
    return fetch(sparqlUrl, {
      method: "POST",
      headers: { "Accept": "application/sparql-results+json",
                 "Content-Type": "application/x-www-form-urlencoded" },
      body: data.toString()
    }).then(function (r) {
      if (!r.ok) { throw new Error("HTTP " + r.status); }
      return r.json();
    });
  }

  // -- named queries -----------------------------------------------------------------------

  function leaveNamed() {
    if (!named) { return; }
    named = null;
    sparqlBoxHint.textContent = "";
    paramBox.hidden = true;
    editedNote.hidden = false;
    select.value = "";
  }

  function optionLabel(value) {
    var iri = expand(value);
    return labels[iri] ? labels[iri] + " (" + curie(iri) + ")" : curie(iri);
  }

  function relabelOptions() {
    Array.prototype.forEach.call(paramFields.querySelectorAll("select option[value]"), function (o) {
      if (o.value) { o.textContent = optionLabel(o.value); }
    });
  }

  function paramForm(q, given) {
    paramFields.innerHTML = "";
    (q.parameters || []).forEach(function (p) {
      var id = "param-" + p.name;
      var row = el("div", null, { "class": "param" });
      row.appendChild(el("label", p.name + (p.required ? " (required)" : ""), { "for": id }));
      var value = given && given[p.name] !== undefined ? given[p.name] : "";
      var input;
      if (p.enum && p.enum.length) {
        input = el("select", null, { id: id, name: p.name });
        if (!p.required) {
          input.appendChild(el("option", p.default ? "default: " + optionLabel(p.default) : "any", { value: "" }));
        }
        p.enum.forEach(function (v) {
          var o = el("option", optionLabel(v), { value: v });
          if (value && expand(value) === expand(v)) { o.selected = true; }
          input.appendChild(o);
        });
      } else {
        input = el("input", null, { id: id, name: p.name, type: "text", autocomplete: "off",
          spellcheck: "false", placeholder: p.default ? curie(p.default) : (p.kind === "iri" ? "an IRI or a name such as j04:facilitation" : "") });
        input.value = value;
        if (p.required) { input.required = true; }
      }
      input.setAttribute("aria-describedby", id + "-hint");
      row.appendChild(input);
      var hint = p.type + (p.default ? "; default " + curie(p.default) : "; leave empty for any");
      row.appendChild(el("span", hint, { id: id + "-hint", "class": "hint" }));
      paramFields.appendChild(row);
    });
    paramBox.hidden = !(q.parameters && q.parameters.length);
  }

  function choose(name, given) {
    var q = examples[name];
    editedNote.hidden = true;
    if (!q) {
      named = null;
      paramBox.hidden = true;
      summary.textContent = "";
      showSparql(true);
      return;
    }
    select.value = name;
    var text = body(q.sparql);
    named = { name: name, body: text };
    setText(text);
    named.body = getText();
    summary.textContent = (q.description || q.summary || "").trim();
    paramForm(q, given);
    showSparql(false);
  }

  /** Open or fold the editor: a named query's text is folded away under its form. */
  function showSparql(open) {
    if (!sparqlBox) { return; }
    sparqlBox.open = open;
    sparqlBoxHint.textContent = open ? "" : " — the named query's text (open to read or change it)";
  }

  function paramValues() {
    var values = [];
    Array.prototype.forEach.call(paramFields.querySelectorAll("input, select"), function (input) {
      if (input.value.trim()) { values.push([input.name, input.value.trim()]); }
    });
    return values;
  }

  function queryString(pairs) {
    var params = new URLSearchParams();
    pairs.forEach(function (kv) { params.append(kv[0], kv[1]); });
    var s = params.toString();
    return s ? "?" + s : "";
  }

  // -- running -----------------------------------------------------------------------------

  function run(event, page) {
    if (event) { event.preventDefault(); }
    var token = ++running;
    var request, link, downloads;
    if (named) {
      var pairs = paramValues();
      var withPage = page ? pairs.concat([["page", String(page)]]) : pairs;
      var api = "/api/queries/" + encodeURIComponent(named.name);
      request = fetch(api + queryString(withPage), { headers: { "Accept": "application/sparql-results+json" } });
      link = "/query" + queryString([["name", named.name]].concat(pairs));
      downloads = {
        select: [["CSV", api + ".csv" + queryString(withPage)],
                 ["JSON", api + queryString(withPage)]],
        graph: []
      };
    } else {
      var text = getText();
      if (!text.trim()) { showError("Write a query first."); return; }
      var data = new URLSearchParams();
      data.set("query", text);
      data.set("partial", "true");  // the first rows, with the row-limit notice, rather than a 400
      request = fetch(sparqlUrl, {
        method: "POST",
        headers: { "Accept": ACCEPT, "Content-Type": "application/x-www-form-urlencoded" },
        body: data.toString()
      });
      link = "/query" + queryString([["query", text]]);
      var get = function (format) { return sparqlUrl + queryString([["query", text], ["format", format]]); };
      downloads = {
        select: [["CSV", get("csv")], ["TSV", get("tsv")], ["JSON", get("json")]],
        graph: [["Turtle", get("turtle")], ["JSON-LD", get("jsonld")], ["N-Triples", get("ntriples")]]
      };
    }
    permalink.href = link;
    permalink.hidden = false;
    if (window.history && window.history.replaceState) {
      window.history.replaceState(null, "", link);
    }
    setStatus("running…");
    form.setAttribute("aria-busy", "true");
    var started = Date.now();
    request.then(function (response) {
      var type = (response.headers.get("Content-Type") || "").split(";")[0].trim();
      var truncated = response.headers.get("Copkg-Truncated");
      var pages = serverPages(response.headers.get("Link"), response.headers.get("X-Page"));
      if (!response.ok) {
        return response.json().then(function (err) { throw err; },
          function () { throw { error: "the service answered HTTP " + response.status }; });
      }
      if (type === "application/n-triples") {
        return response.text().then(function (text) {
          if (token !== running) { return; }
          showTriples(parseNTriples(text), { truncated: truncated, downloads: downloads.graph, ms: Date.now() - started });
        });
      }
      return response.json().then(function (data) {
        if (token !== running) { return; }
        if (typeof data.boolean === "boolean") {
          showAnswer(data.boolean);
        } else {
          showTable(data.head.vars || [], data.results.bindings || [],
            { truncated: truncated, downloads: downloads.select, pages: pages, ms: Date.now() - started });
        }
      });
    }).catch(function (error) {
      if (token !== running) { return; }
      showError(errorMessage(error));
    }).then(function () {
      if (token === running) { form.removeAttribute("aria-busy"); }
    });
  }

  /** One message for an error body ({error, errors: [{message, line, column}]}) or exception. */
  function errorMessage(error) {
    if (error && error.errors && error.errors.length && error.errors[0].line) {
      var first = error.errors[0];
      showSparql(true);
      if (editor) { editor.goTo(first.line, first.column); }
      return "Syntax error at line " + first.line + ", column " + first.column + ": " + first.message;
    }
    if (error && error.error) { return error.error; }
    if (error && error.message) { return "The query could not be sent: " + error.message; }
    return "The query failed.";
  }

  /** The server's own pages of a named query's answer (RFC 8288 Link header). */
  function serverPages(header, current) {
    if (!header) { return null; }
    var links = {};
    header.split(",").forEach(function (part) {
      var m = /<([^>]*)>\s*;\s*rel="([^"]+)"/.exec(part);
      if (m) { links[m[2]] = m[1]; }
    });
    var number = function (url) {
      var m = url && /[?&]page=(\d+)/.exec(url);
      return m ? parseInt(m[1], 10) : null;
    };
    return { current: parseInt(current || "1", 10), prev: number(links.prev),
             next: number(links.next), last: number(links.last) };
  }

  // -- showing answers ---------------------------------------------------------------------

  function clear() { results.innerHTML = ""; view = null; }

  function showError(message) {
    clear();
    setStatus("failed");
    results.appendChild(el("p", message, { "class": "error", id: "query-error", role: "alert" }));
  }

  function showAnswer(value) {
    clear();
    results.appendChild(el("p", "Answer: " + (value ? "yes (true)" : "no (false)"), { "class": "answer", id: "ask-answer" }));
    setStatus("done");
  }

  function resultBar(count, what, info) {
    var bar = el("div", null, { "class": "result-bar" });
    bar.appendChild(el("p", count + " " + what + (count === 1 ? "" : "s") + " in " + info.ms + " ms", { id: "result-count" }));
    if (info.downloads && info.downloads.length) {
      var nav = el("nav", null, { "class": "downloads", "aria-label": "Download the answer" });
      nav.appendChild(document.createTextNode("Download: "));
      info.downloads.forEach(function (d) {
        nav.appendChild(el("a", d[0], { href: d[1], "class": "download", "data-format": d[0].toLowerCase() }));
      });
      bar.appendChild(nav);
    }
    results.appendChild(bar);
    if (info.truncated) {
      var max = form.getAttribute("data-max-rows");
      results.appendChild(el("p", "The answer is incomplete: the service stops at " +
        (max ? max + " rows" : "its row limit") + " and there were more. Narrow the query " +
        "(a FILTER, a LIMIT) or page through it with ORDER BY, LIMIT and OFFSET.",
        { "class": "notice", id: "truncated", role: "note", title: info.truncated }));
    }
    if (info.pages && (info.pages.prev || info.pages.next)) {
      var nav2 = el("nav", null, { "class": "pager", "aria-label": "Pages of the named query's answer", id: "server-pager" });
      var p = info.pages;
      nav2.appendChild(el("span", "Page " + p.current + (p.last ? " of " + p.last : "") + " of the answer"));
      [["Previous page", p.prev], ["Next page", p.next]].forEach(function (b) {
        var button = el("button", b[0], { type: "button" });
        if (!b[1]) { button.disabled = true; } else {
          button.addEventListener("click", function () { run(null, b[1]); });
        }
        nav2.appendChild(button);
      });
      results.appendChild(nav2);
    }
  }

  function showTable(vars, rows, info) {
    clear();
    resultBar(rows.length, "row", info);
    view = { vars: vars, rows: rows, sort: null, dir: 1, page: 0, size: PAGE_SIZES[0] };
    var scroll = el("div", null, { "class": "table-scroll", tabindex: "0", role: "region",
                                  "aria-label": "Answer table (scrolls sideways when wide)" });
    var table = el("table", null, { "class": "data", id: "result-table" });
    var caption = el("caption", "Answer", { "class": "visually-hidden" });
    table.appendChild(caption);
    var thead = el("thead");
    var head = el("tr");
    vars.forEach(function (v, i) {
      var th = el("th", null, { scope: "col", "aria-sort": "none" });
      var button = el("button", v, { type: "button", title: "Sort by " + v });
      button.addEventListener("click", function () { sortBy(i); });
      th.appendChild(button);
      head.appendChild(th);
    });
    thead.appendChild(head);
    table.appendChild(thead);
    table.appendChild(el("tbody"));
    scroll.appendChild(table);
    results.appendChild(scroll);
    results.appendChild(pager());
    render();
    setStatus(rows.length + (rows.length === 1 ? " row" : " rows"));
  }

  function showTriples(triples, info) {
    clear();
    var vars = ["subject", "predicate", "object"];
    var rows = triples.map(function (t) { return { subject: t[0], predicate: t[1], object: t[2] }; });
    showTable(vars, rows, info);
    results.querySelector("#result-count").textContent =
      triples.length + " triple" + (triples.length === 1 ? "" : "s") + " in " + info.ms + " ms";
    results.querySelector("#result-table").setAttribute("data-kind", "graph");
    setStatus(triples.length + (triples.length === 1 ? " triple" : " triples"));
  }

  function pager() {
    var nav = el("nav", null, { "class": "pager", id: "pager", "aria-label": "Pages of the table" });
    var prev = el("button", "Previous", { type: "button", id: "page-prev" });
    var next = el("button", "Next", { type: "button", id: "page-next" });
    var where = el("span", "", { id: "page-info", "aria-live": "polite" });
    var sizeLabel = el("label", "Rows per page", { "for": "page-size" });
    var size = el("select", null, { id: "page-size" });
    PAGE_SIZES.forEach(function (n) { size.appendChild(el("option", String(n), { value: String(n) })); });
    prev.addEventListener("click", function () { view.page -= 1; render(); });
    next.addEventListener("click", function () { view.page += 1; render(); });
    size.addEventListener("change", function () {
      view.size = parseInt(size.value, 10); view.page = 0; render();
    });
    [prev, where, next, sizeLabel, size].forEach(function (n) { nav.appendChild(n); });
    return nav;
  }

  function sortKey(term) {
    if (!term) { return [2, ""]; }
    if (term.type === "literal" && term.datatype && /#(integer|decimal|double|float|int|long|nonNegativeInteger|positiveInteger)$/.test(term.datatype)) {
      var n = parseFloat(term.value);
      if (!isNaN(n)) { return [0, n]; }
    }
    if (term.type === "uri") { return [1, (labels[term.value] || curie(term.value)).toLowerCase()]; }
    return [1, String(term.value).toLowerCase()];
  }

  function compare(a, b) {
    if (a[0] !== b[0]) { return a[0] - b[0]; }
    if (a[1] < b[1]) { return -1; }
    if (a[1] > b[1]) { return 1; }
    return 0;
  }

  function sortBy(index) {
    var name = view.vars[index];
    view.dir = view.sort === name ? -view.dir : 1;
    view.sort = name;
    var keyed = view.rows.map(function (row, i) { return [sortKey(row[name]), i, row]; });
    keyed.sort(function (x, y) { return view.dir * compare(x[0], y[0]) || x[1] - y[1]; });
    view.rows = keyed.map(function (k) { return k[2]; });
    view.page = 0;
    Array.prototype.forEach.call(results.querySelectorAll("#result-table th"), function (th, i) {
      th.setAttribute("aria-sort", i === index ? (view.dir > 0 ? "ascending" : "descending") : "none");
    });
    render();
  }

  function render() {
    if (!view) { return; }
    var pages = Math.max(1, Math.ceil(view.rows.length / view.size));
    view.page = Math.min(Math.max(0, view.page), pages - 1);
    var start = view.page * view.size;
    var shown = view.rows.slice(start, start + view.size);
    var tbody = results.querySelector("#result-table tbody");
    tbody.innerHTML = "";
    shown.forEach(function (row) {
      var tr = el("tr");
      view.vars.forEach(function (v) { tr.appendChild(cell(row[v])); });
      tbody.appendChild(tr);
    });
    var info = results.querySelector("#page-info");
    info.textContent = view.rows.length ?
      "Rows " + (start + 1) + "–" + (start + shown.length) + " of " + view.rows.length +
      " (page " + (view.page + 1) + " of " + pages + ")" : "No rows";
    results.querySelector("#page-prev").disabled = view.page === 0;
    results.querySelector("#page-next").disabled = view.page >= pages - 1;
    results.querySelector("#pager").hidden = view.rows.length <= PAGE_SIZES[0];
    fetchLabels(shown);
  }

  function cell(term) {
    var td = el("td");
    if (!term) { return td; }
    if (term.type === "uri") {
      var short = curie(term.value);
      var label = labels[term.value];
      // only the service's own pages, http(s) and mailto become links (never javascript: etc.)
      var safe = term.value.indexOf(BASE + "/") === 0 || /^(https?|mailto):/i.test(term.value);
      var a = safe
        ? el("a", label || short, { href: localHref(term.value), title: term.value, "data-iri": term.value })
        : el("code", label || short, { title: term.value, "data-iri": term.value });
      td.appendChild(a);
      if (label) { td.appendChild(el("span", short, { "class": "curie" })); }
    } else if (term.type === "bnode") {
      td.appendChild(el("code", "_:" + term.value));
    } else {
      td.appendChild(document.createTextNode(term.value));
      if (term["xml:lang"]) { td.appendChild(el("span", "@" + term["xml:lang"], { "class": "dt" })); }
      else if (term.datatype && term.datatype !== "http://www.w3.org/2001/XMLSchema#string") {
        td.appendChild(el("span", curie(term.datatype), { "class": "dt" }));
      }
    }
    return td;
  }

  /** Labels of the IRIs on the page being shown, asked of /sparql once each. */
  function fetchLabels(rows) {
    var wanted = {};
    rows.forEach(function (row) {
      Object.keys(row).forEach(function (k) {
        var t = row[k];
        if (t && t.type === "uri" && !(t.value in labels) && !/[<>"{}|^`\\\s]/.test(t.value)) {
          wanted[t.value] = true;
        }
      });
    });
    var iris = Object.keys(wanted);
    if (!iris.length) { return; }
    iris.forEach(function (iri) { labels[iri] = labels[iri] || null; });
    var q = "PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>\n" +
      "PREFIX skos: <http://www.w3.org/2004/02/skos/core#>\n" +
      "PREFIX dcterms: <http://purl.org/dc/terms/>\n" +
      "SELECT ?s (SAMPLE(?l) AS ?label) WHERE { VALUES ?s { " +
      iris.map(function (i) { return "<" + i + ">"; }).join(" ") +
      " } ?s rdfs:label|skos:prefLabel|dcterms:title ?l } GROUP BY ?s";
    sparqlJson(q).then(function (data) {
      var changed = false;
      data.results.bindings.forEach(function (b) {
        if (b.label) { labels[b.s.value] = b.label.value; changed = true; }
      });
      if (changed) { relabel(); }
    }).catch(function () { /* labels are a convenience: the CURIEs stay */ });
  }

  function relabel() {
    Array.prototype.forEach.call(results.querySelectorAll("#result-table a[data-iri]"), function (a) {
      var iri = a.getAttribute("data-iri");
      if (labels[iri] && a.textContent !== labels[iri]) {
        a.textContent = labels[iri];
        var td = a.parentNode;
        if (!td.querySelector(".curie")) { td.appendChild(el("span", curie(iri), { "class": "curie" })); }
      }
    });
  }

  // -- N-Triples -------------------------------------------------------------------------

  var NT_TERM = /\s*(<([^>]*)>|_:([A-Za-z0-9_\-.]+)|"((?:[^"\\]|\\.)*)"(?:@([A-Za-z]+(?:-[A-Za-z0-9]+)*)|\^\^<([^>]*)>)?)/y;

  function unescape(text) {
    return text.replace(/\\(?:u([0-9A-Fa-f]{4})|U([0-9A-Fa-f]{8})|(.))/g, function (_, u, U, c) {
      if (u || U) { return String.fromCodePoint(parseInt(u || U, 16)); }
      return { t: "\t", b: "\b", n: "\n", r: "\r", f: "\f", "\"": "\"", "'": "'", "\\": "\\" }[c] || c;
    });
  }

  /** N-Triples text -> [[s, p, o]] as SPARQL JSON terms. */
  function parseNTriples(text) {
    var triples = [];
    text.split("\n").forEach(function (line) {
      if (!line.trim() || /^\s*#/.test(line)) { return; }
      var terms = [];
      NT_TERM.lastIndex = 0;
      for (var i = 0; i < 3; i += 1) {
        var m = NT_TERM.exec(line);
        if (!m) { return; }
        if (m[2] !== undefined) { terms.push({ type: "uri", value: unescape(m[2]) }); }
        else if (m[3] !== undefined) { terms.push({ type: "bnode", value: m[3] }); }
        else {
          var lit = { type: "literal", value: unescape(m[4]) };
          if (m[5]) { lit["xml:lang"] = m[5]; }
          if (m[6]) { lit.datatype = m[6]; }
          terms.push(lit);
        }
      }
      triples.push(terms);
    });
    return triples;
  }

  // -- start -------------------------------------------------------------------------------

  form.addEventListener("submit", run);
  select.addEventListener("change", function () {
    choose(select.value, null);
  });

  var autorun = form.getAttribute("data-autorun") === "true";
  var initial = form.getAttribute("data-initial");
  var search = new URLSearchParams(window.location.search);
  var given = {};
  search.forEach(function (value, key) { if (key !== "name" && key !== "query") { given[key] = value; } });

  var termsLoaded = loadTerms().catch(function () { /* completion then offers keywords and prefixes only */ });
  fetch("/api/queries", { headers: { "Accept": "application/json" } })
    .then(function (r) { return r.json(); })
    .then(function (data) {
      (data.queries || []).forEach(function (q) { examples[q.name] = q; });
      if (initial) { choose(initial, given); }
      form.setAttribute("data-ready", "true");
      if (autorun) { run(); }
      return termsLoaded;
    })
    .catch(function () {
      summary.textContent = "The named queries could not be loaded.";
      form.setAttribute("data-ready", "true");
      if (autorun && !initial) { run(); }
    });
}());
