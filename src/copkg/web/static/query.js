// The query page: examples from /api/queries, run against the SPARQL endpoint, table of results.
(function () {
  "use strict";
  var BASE = "https://w3id.org/copkg";
  var form = document.getElementById("query-form");
  if (!form) { return; }
  var select = document.getElementById("examples");
  var textarea = document.getElementById("sparql");
  var summary = document.getElementById("example-summary");
  var statusLine = document.getElementById("status");
  var results = document.getElementById("results");
  var examples = {};

  function localHref(iri) {
    if (iri.indexOf(BASE + "/") === 0) { return iri.substring(BASE.length); }
    return iri;
  }

  function el(tag, text, attrs) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = text; }
    if (attrs) { Object.keys(attrs).forEach(function (k) { node.setAttribute(k, attrs[k]); }); }
    return node;
  }

  function cell(term) {
    var td = el("td");
    if (!term) { return td; }
    if (term.type === "uri") {
      td.appendChild(el("a", term.value, { href: localHref(term.value), title: term.value }));
    } else if (term.type === "bnode") {
      td.appendChild(el("code", "_:" + term.value));
    } else {
      td.textContent = term.value;
      if (term["xml:lang"]) { td.appendChild(el("small", " @" + term["xml:lang"])); }
    }
    return td;
  }

  function showError(message) {
    results.innerHTML = "";
    results.appendChild(el("p", message, { "class": "error" }));
  }

  function showResults(data) {
    results.innerHTML = "";
    if (typeof data.boolean === "boolean") {
      results.appendChild(el("p", "Answer: " + data.boolean, { "class": "answer" }));
      statusLine.textContent = "done";
      return;
    }
    var vars = data.head.vars || [];
    var rows = data.results.bindings || [];
    var table = el("table", null, { "class": "data", id: "result-table" });
    var head = el("tr");
    vars.forEach(function (v) { head.appendChild(el("th", v)); });
    var thead = el("thead"); thead.appendChild(head); table.appendChild(thead);
    var tbody = el("tbody");
    rows.forEach(function (row) {
      var tr = el("tr");
      vars.forEach(function (v) { tr.appendChild(cell(row[v])); });
      tbody.appendChild(tr);
    });
    table.appendChild(tbody);
    results.appendChild(table);
    statusLine.textContent = rows.length + (rows.length === 1 ? " row" : " rows");
  }

  function run(event) {
    if (event) { event.preventDefault(); }
    statusLine.textContent = "running…";
    var body = new URLSearchParams();
    body.set("query", textarea.value);
    fetch(form.getAttribute("data-sparql") || "/sparql", {
      method: "POST",
      headers: {
        "Accept": "application/sparql-results+json",
        "Content-Type": "application/x-www-form-urlencoded"
      },
      body: body.toString()
    }).then(function (response) {
      var type = response.headers.get("Content-Type") || "";
      if (!response.ok) {
        return response.json().then(function (err) {
          throw new Error(err.error + (err.errors && err.errors.length ?
            " — " + err.errors.map(function (e) { return e.message; }).join("; ") : ""));
        }, function () { throw new Error("HTTP " + response.status); });
      }
      if (type.indexOf("json") < 0) {
        return response.text().then(function (text) {
          results.innerHTML = ""; results.appendChild(el("pre", text));
          statusLine.textContent = "done";
        });
      }
      return response.json().then(showResults);
    }).catch(function (error) {
      statusLine.textContent = "failed";
      showError(error.message);
    });
  }

  function choose(name) {
    var q = examples[name];
    if (!q) { return; }
    select.value = name;
    textarea.value = q.sparql;
    summary.textContent = q.summary || "";
  }

  fetch("/api/queries", { headers: { "Accept": "application/json" } })
    .then(function (r) { return r.json(); })
    .then(function (data) {
      (data.queries || []).forEach(function (q) {
        examples[q.name] = q;
        select.appendChild(el("option", q.name + " — " + (q.summary || ""), { value: q.name }));
      });
      var initial = form.getAttribute("data-initial");
      if (initial) { choose(initial); }
      form.setAttribute("data-ready", "true");
    })
    .catch(function () { summary.textContent = "examples could not be loaded"; });

  select.addEventListener("change", function () { choose(select.value); });
  form.addEventListener("submit", run);
}());
