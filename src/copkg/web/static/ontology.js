// The ontology's documentation: a box that filters the terms' sections (and the contents'
// links) by name, label, IRI and definition. Without script the box stays hidden.
(function () {
  "use strict";
  const box = document.querySelector(".term-search");
  const input = document.getElementById("term-filter");
  const status = document.getElementById("term-filter-status");
  if (!box || !input || !status) return;
  const sections = Array.from(document.querySelectorAll("section.term"));
  const text = new Map(sections.map((s) => {
    const parts = [s.id];
    for (const sel of ["h3", "p.iri", "p.definition"]) {
      const el = s.querySelector(sel);
      if (el) parts.push(el.textContent);
    }
    return [s, parts.join(" ").toLowerCase()];
  }));
  const links = Array.from(document.querySelectorAll("nav.toc a[href^='#'], nav.class-tree a"))
    .filter((a) => document.getElementById(a.getAttribute("href").slice(1)) instanceof HTMLElement
      && sections.includes(document.getElementById(a.getAttribute("href").slice(1))));
  function apply() {
    const words = input.value.trim().toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0;
    for (const s of sections) {
      const hit = words.every((w) => text.get(s).includes(w));
      s.hidden = !hit;
      if (hit) shown += 1;
    }
    for (const a of links) {
      const target = document.getElementById(a.getAttribute("href").slice(1));
      a.classList.toggle("filtered-out", Boolean(target && target.hidden));
    }
    status.textContent = words.length ? shown + " of " + sections.length + " terms" : "";
  }
  input.addEventListener("input", apply);
  box.hidden = false;
})();
