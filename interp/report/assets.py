"""The inline CSS and JavaScript of index.html (no CDN, no external file: the page works offline).

The script does two things: sortable tables (click a header; numbers sort as numbers) and the
attention-pattern viewer (hover a token: every earlier token is shaded by the selected head's attention
weight from it, and a tooltip lists the strongest ones). The viewer is also exposed as
``window.interpAttentionViewer(root, data)`` so `interp serve`'s page can draw it from live data.
"""

CSS = """
:root { --ink:#1d2430; --muted:#5b6575; --line:#dde2ea; --accent:#2166ac; --bg:#ffffff; --soft:#f5f7fa; }
* { box-sizing: border-box; }
body { font: 15px/1.55 -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif; color: var(--ink);
       background: var(--bg); margin: 0; }
main { max-width: 1040px; margin: 0 auto; padding: 1.5rem 1.25rem 4rem; }
header.top { border-bottom: 1px solid var(--line); margin-bottom: 1rem; }
h1 { font-size: 1.7rem; margin: 0.2rem 0 0.3rem; }
h2 { font-size: 1.3rem; margin: 2.2rem 0 0.4rem; padding-top: 0.6rem; border-top: 1px solid var(--line); }
h3, h4, h5 { font-size: 1.05rem; margin: 1.2rem 0 0.3rem; }
.meta, .muted { color: var(--muted); font-size: 0.88rem; }
nav.toc { background: var(--soft); border: 1px solid var(--line); border-radius: 6px; padding: 0.5rem 1rem; }
nav.toc ol { margin: 0.2rem 0; padding-left: 1.3rem; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: 0.86em; }
code { background: var(--soft); padding: 0.05em 0.3em; border-radius: 3px; }
.repro { background: #eef4fb; border-left: 3px solid var(--accent); padding: 0.35rem 0.7rem; margin: 0.6rem 0;
         font-size: 0.88rem; }
.badge { display: inline-block; font-size: 0.75rem; padding: 0.05rem 0.45rem; border-radius: 9px;
         background: var(--soft); border: 1px solid var(--line); color: var(--muted); margin-left: 0.4rem; }
.badge.failed, .badge.disabled { background: #fdecea; color: #a4262c; border-color: #f3c1bd; }
figure { margin: 1rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid var(--line); border-radius: 4px; }
figcaption { font-size: 0.88rem; color: var(--muted); margin-top: 0.3rem; }
.tablewrap { overflow-x: auto; max-height: 420px; overflow-y: auto; border: 1px solid var(--line); border-radius: 4px; }
table { border-collapse: collapse; font-size: 0.84rem; width: 100%; }
th, td { padding: 0.25rem 0.55rem; border-bottom: 1px solid var(--line); text-align: left; white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
thead th { position: sticky; top: 0; background: var(--soft); }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[aria-sort="ascending"]::after { content: " \\25B2"; font-size: 0.7em; }
table.sortable th[aria-sort="descending"]::after { content: " \\25BC"; font-size: 0.7em; }
details { margin: 0.6rem 0; }
summary { cursor: pointer; color: var(--accent); }
.viewer { border: 1px solid var(--line); border-radius: 6px; padding: 0.7rem; margin: 1rem 0; position: relative; }
.viewer .heads button { font: inherit; font-size: 0.82rem; margin: 0 0.3rem 0.3rem 0; padding: 0.15rem 0.5rem;
                         border: 1px solid var(--line); background: var(--bg); border-radius: 4px; cursor: pointer; }
.viewer .heads button.active { background: var(--accent); color: #fff; border-color: var(--accent); }
.viewer .tokens { line-height: 2.1; margin-top: 0.4rem; }
.viewer .tok { display: inline-block; white-space: pre; padding: 0 0.05rem; margin: 1px 0; border-radius: 3px;
               cursor: default; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.85rem; }
.viewer .tok.query { outline: 2px solid #d6604d; }
.viewer .tok.best { outline: 1px dashed var(--accent); }
.viewer .tooltip { position: absolute; z-index: 5; background: #1d2430; color: #fff; font-size: 0.8rem;
                   padding: 0.35rem 0.55rem; border-radius: 4px; pointer-events: none; max-width: 360px;
                   white-space: pre-line; }
.viewer .legend { font-size: 0.8rem; color: var(--muted); margin-top: 0.4rem; }
.error { color: #a4262c; }
.pending { color: var(--muted); font-style: italic; }
.badge.running, .badge.queued { background: #fff6e0; color: #7a5a00; border-color: #f0dca0; }
.demo { display: block; background: #fff6e0; border-left: 3px solid #d9a400; padding: 0.3rem 0.7rem; margin: 0.4rem 0;
        font-size: 0.86rem; }
.banner { background: #fff6e0; border: 1px solid #f0dca0; border-radius: 4px; padding: 0.4rem 0.7rem; }
"""

JS = r"""
(function () {
  "use strict";
  function cellValue(td) {
    var t = td.getAttribute("data-v");
    if (t === null) t = td.textContent;
    var n = parseFloat(t);
    return (t.trim() !== "" && isFinite(t)) ? n : t.toLowerCase();
  }
  function sortTable(table, col, th) {
    var body = table.tBodies[0];
    if (!body) return;
    var asc = th.getAttribute("aria-sort") !== "ascending";
    Array.prototype.forEach.call(th.parentNode.children, function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a.cells[col]), y = cellValue(b.cells[col]);
      if (typeof x === typeof y) return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
      return (typeof x === "number" ? -1 : 1) * (asc ? 1 : -1);
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll("table.sortable").forEach(function (table) {
    var head = table.tHead;
    if (!head) return;
    Array.prototype.forEach.call(head.rows[0].cells, function (th, i) {
      th.title = "Click to sort";
      th.addEventListener("click", function () { sortTable(table, i, th); });
    });
  });

  function shown(tok) { return JSON.stringify(tok.replace(/\n/g, "\u21b5")); }
  // root: a .viewer element; data ({tokens, heads}) is read from its data-src script unless given (interp serve)
  function setupViewer(root, given) {
    var data = given || JSON.parse(document.getElementById(root.getAttribute("data-src")).textContent);
    var heads = root.querySelector(".heads"), row = root.querySelector(".tokens");
    var tip = root.querySelector(".tooltip"), current = 0, spans = [];
    data.heads.forEach(function (h, k) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = "L" + h.layer + "H" + h.head +
        (typeof h.score === "number" ? " (" + h.score.toFixed(2) + ")" : "");
      b.addEventListener("click", function () {
        current = k;
        heads.querySelectorAll("button").forEach(function (x) { x.classList.remove("active"); });
        b.classList.add("active");
        clear();
      });
      if (k === 0) b.classList.add("active");
      heads.appendChild(b);
    });
    data.tokens.forEach(function (t, i) {
      var s = document.createElement("span");
      s.className = "tok";
      s.textContent = t.replace(/\n/g, "\u21b5");
      s.setAttribute("data-i", String(i));
      s.addEventListener("mouseover", function () { show(i); });
      s.addEventListener("mouseout", clear);
      row.appendChild(s);
      spans.push(s);
    });
    function clear() {
      spans.forEach(function (s) { s.style.background = ""; s.classList.remove("query", "best"); });
      tip.hidden = true;
    }
    function show(i) {
      clear();
      var h = data.heads[current], weights = h.pattern[i] || [];
      var order = weights.map(function (w, j) { return j; }).sort(function (a, b) { return weights[b] - weights[a]; });
      weights.forEach(function (w, j) {
        spans[j].style.background =
          "rgba(33, 102, 172, " + Math.min(1, w * 0.9 + (w > 0.02 ? 0.08 : 0)).toFixed(3) + ")";
      });
      spans[i].classList.add("query");
      if (order.length) spans[order[0]].classList.add("best");
      var lines = ["L" + h.layer + "H" + h.head + ": query " + shown(data.tokens[i]) +
                   " (position " + i + ") attends to"];
      order.slice(0, 3).forEach(function (j) {
        lines.push("  " + shown(data.tokens[j]) + " (position " + j + "): " + weights[j].toFixed(3));
      });
      tip.textContent = lines.join("\n");
      tip.hidden = false;
      var r = spans[i].getBoundingClientRect(), box = root.getBoundingClientRect();
      tip.style.left = Math.max(0, Math.min(r.left - box.left, box.width - 370)) + "px";
      tip.style.top = (r.bottom - box.top + 6) + "px";
    }
  }
  window.interpAttentionViewer = setupViewer;
  document.querySelectorAll(".viewer[data-src]").forEach(function (root) { setupViewer(root); });
})();
"""
