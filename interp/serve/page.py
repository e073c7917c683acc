"""The page of `interp serve`: one HTML document, its style and its script, all served by the same process
(no CDN: it works offline). The report's style and attention viewer (`interp.report.assets`) are included
as they are; the page's own script calls the JSON API and renders every value from the user, the model or
a file with textContent, never as markup (the Content-Security-Policy also forbids inline script).
"""

from __future__ import annotations

from interp.report.assets import CSS as REPORT_CSS
from interp.report.assets import JS as REPORT_JS

HTML = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>interp lab</title><link rel="icon" href="data:,"><link rel="stylesheet" href="page.css"></head>
<body><main class="lab">
<header class="top">
  <div class="titlebar"><h1>interp lab</h1><span id="model-name" class="pill">loading…</span>
    <span id="status" class="status idle" role="status">idle</span></div>
  <p id="model-meta" class="meta">Connecting to the model…</p>
</header>
<p id="global-error" class="error banner" hidden></p>

<section class="card" id="ask">
  <h2><span class="step">1</span>Ask the model</h2>
  <p class="muted">The next-token distribution, the logit lens (the top answer read out of the residual stream
  after every layer) and where each attention head looks.</p>
  <form id="predict-form" autocomplete="off">
    <label class="wide">Prompt<textarea id="prompt" rows="2" spellcheck="false">The Eiffel Tower is located in the city of</textarea></label>
    <div class="row">
      <label>Top <input id="top-k" type="number" value="10" min="1"> tokens</label>
      <label>Continue <input id="new-tokens" type="number" value="12" min="0"> tokens</label>
      <button id="predict" type="submit" class="primary">Predict</button>
    </div>
  </form>
  <p class="error" id="predict-error" hidden></p>
  <div id="predict-out" hidden>
    <div class="tokenline" id="prompt-tokens"></div>
    <div class="grid2">
      <div><h3>Next token</h3><table class="bars" id="topk"></table>
        <p class="continuation"><span class="muted">Greedy continuation:</span> <span id="continuation"></span></p></div>
      <div><h3>Logit lens for <span class="tok" id="lens-answer"></span></h3>
        <div class="lenswrap" id="lens-wrap"><table class="bars" id="lens"></table></div></div>
    </div>
    <h3>Attention</h3>
    <div class="row">
      <label>Layer <select id="att-layer"></select></label>
      <button id="attention" type="button">Show attention</button>
      <span class="muted">Pick a head, then hover a token: earlier tokens are shaded by that head's attention from it.</span>
    </div>
    <p class="error" id="attention-error" hidden></p>
    <div id="att-out"></div>
  </div>
</section>

<section class="card" id="trace-card">
  <h2><span class="step">2</span>Where is the fact? Causal tracing</h2>
  <p class="muted">Noise on the subject's embeddings destroys the answer; restoring one clean hidden state at a
  time (token &times; layer) shows which states carry the fact (Meng et al. 2022).</p>
  <form id="trace-form" autocomplete="off">
    <div class="fields">
      <label class="wide">Prompt (with {} for the subject)<input id="trace-prompt" value="The {} is located in the city of"></label>
      <label>Subject<input id="trace-subject" value="Eiffel Tower"></label>
      <label>Answer<input id="trace-target" placeholder="the model's own"></label>
    </div>
    <div class="row">
      <label>Noise samples <input id="trace-samples" type="number" value="10" min="1"></label>
      <span class="muted">Restore:</span>
      <label class="check"><input type="checkbox" id="kind-resid" checked> residual</label>
      <label class="check"><input type="checkbox" id="kind-mlp" checked> MLP</label>
      <label class="check"><input type="checkbox" id="kind-attn" checked> attention</label>
      <button id="trace" type="submit" class="primary">Trace</button>
    </div>
  </form>
  <div class="progress" id="trace-progress" hidden><div class="track"><div class="fill"></div></div><span class="label"></span></div>
  <p class="error" id="trace-error" hidden></p>
  <div id="trace-out" hidden><p id="trace-summary"></p><div class="figures" id="trace-figures"></div>
    <table class="plain" id="trace-peaks"></table></div>
</section>

<section class="card" id="edit-card">
  <h2><span class="step">3</span>Rewrite the fact</h2>
  <p class="muted">A rank-one change to one MLP's output matrix (ROME), or a change spread over several layers
  (MEMIT). The prompt, a paraphrase and a neighbour are probed before and after.</p>
  <form id="edit-form" autocomplete="off">
    <div class="fields">
      <label class="wide">Prompt (with {} for the subject)<input id="edit-prompt" value="The {} is located in the city of"></label>
      <label>Subject<input id="edit-subject" value="Eiffel Tower"></label>
      <label>New answer<input id="edit-target" value="Rome"></label>
      <label>Method<select id="edit-method"><option value="rome">ROME</option><option value="memit">MEMIT</option></select></label>
      <label>Layer(s)<input id="edit-layers" placeholder="default"></label>
      <label class="wide">Paraphrase<input id="edit-paraphrase" value="The Eiffel Tower stands in the heart of the city of"></label>
      <label class="wide">Neighbour (should keep its answer)<input id="edit-neighbour" value="The Louvre is located in the city of"></label>
    </div>
    <div class="row"><button id="apply-edit" type="submit" class="primary">Apply edit</button>
      <span class="muted">The first edit also computes key statistics for the layer (cached on disk).</span></div>
  </form>
  <div class="progress" id="edit-progress" hidden><div class="track"><div class="fill"></div></div><span class="label"></span></div>
  <p class="error" id="edit-error" hidden></p>
  <div id="edit-out" hidden><table class="plain" id="edit-probes"></table></div>
</section>

<section class="card" id="edits-card">
  <h2>Active edits</h2>
  <p id="no-edits" class="muted">None: the model has its original weights.</p>
  <table class="plain" id="edits-table" hidden></table>
  <div class="row loadrow"><label>Edit file <input id="edit-file" type="file" accept=".edit,.safetensors"></label>
    <button id="load-edit" type="button">Load and apply</button></div>
  <p class="error" id="edits-error" hidden></p>
</section>
<footer class="muted">Everything runs in this process on this machine. The JSON API behind the page is described at
<a href="openapi.json">openapi.json</a>.</footer>
</main><script src="page.js"></script></body></html>
"""

PAGE_CSS = """
[hidden] { display: none !important; }
main.lab { max-width: 1120px; }
.titlebar { display: flex; align-items: center; gap: 0.7rem; flex-wrap: wrap; }
.pill { font-size: 0.85rem; padding: 0.1rem 0.6rem; border-radius: 10px; background: #eef4fb; color: var(--accent);
        border: 1px solid #cfe0f3; font-weight: 600; }
.status { margin-left: auto; font-size: 0.82rem; padding: 0.1rem 0.6rem; border-radius: 10px; border: 1px solid var(--line); }
.status.idle { color: #2f7d32; background: #eef8ee; border-color: #cde6cd; }
.status.busy { color: #8a5a00; background: #fff6e0; border-color: #f0dca8; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 0.2rem 1.1rem 1rem; margin: 1.1rem 0; background: #fff;
        box-shadow: 0 1px 2px rgba(20, 30, 50, 0.05); }
.card h2 { border-top: none; margin-top: 0.8rem; padding-top: 0; display: flex; align-items: center; gap: 0.5rem; }
.step { display: inline-flex; width: 1.6rem; height: 1.6rem; border-radius: 50%; background: var(--accent); color: #fff;
        font-size: 0.9rem; align-items: center; justify-content: center; }
label { font-size: 0.85rem; color: var(--muted); }
.fields { display: grid; grid-template-columns: repeat(4, minmax(0, 1fr)); gap: 0.5rem 0.8rem; }
.fields label { display: flex; flex-direction: column; gap: 0.15rem; }
.fields label.wide, label.wide { grid-column: span 2; display: flex; flex-direction: column; gap: 0.15rem; }
#predict-form label.wide { grid-column: auto; }
input, select, textarea, button { font: inherit; font-size: 0.92rem; color: var(--ink); }
input, select, textarea { border: 1px solid #c8cfda; border-radius: 5px; padding: 0.3rem 0.45rem; background: #fff; }
input:focus, select:focus, textarea:focus { outline: 2px solid #9cc2ea; border-color: var(--accent); }
textarea { width: 100%; resize: vertical; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.9rem; }
input[type=number] { width: 4.6rem; }
.row { display: flex; align-items: center; gap: 0.9rem; flex-wrap: wrap; margin: 0.6rem 0; }
.row label { display: inline-flex; align-items: center; gap: 0.35rem; }
label.check { color: var(--ink); }
button { border: 1px solid #c8cfda; background: var(--soft); border-radius: 5px; padding: 0.32rem 0.9rem; cursor: pointer; }
button:hover { border-color: var(--accent); }
button.primary { background: var(--accent); color: #fff; border-color: var(--accent); font-weight: 600; }
button.primary:hover { background: #1a5690; }
button.danger { color: #a4262c; }
button:disabled { opacity: 0.55; cursor: progress; }
.error { color: #a4262c; background: #fdecea; border: 1px solid #f3c1bd; border-radius: 5px; padding: 0.4rem 0.7rem; }
.grid2 { display: grid; grid-template-columns: minmax(0, 1fr) minmax(0, 1fr); gap: 1.5rem; }
.tok { display: inline-block; white-space: pre; font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.84rem;
       background: var(--soft); border: 1px solid var(--line); border-radius: 3px; padding: 0 0.2rem; line-height: 1.35; }
.tok.new { background: #fff3cd; border-color: #f0d98a; }
.tok.subject { background: #e8f0fb; border-color: #bcd3ee; }
.tokenline { margin: 0.6rem 0 0.2rem; line-height: 2; }
.tokenline .tok { margin-right: 2px; }
.lenswrap { max-height: 25rem; overflow-y: auto; border-bottom: 1px solid var(--line); }
.lenswrap thead th { position: sticky; top: 0; background: var(--soft); }
table.bars td, table.plain td { white-space: nowrap; vertical-align: middle; }
table.bars td.barcell { width: 45%; }
.bar { height: 0.7rem; background: #d9e6f4; border-radius: 2px; }
.bar > div { height: 100%; background: var(--accent); border-radius: 2px; }
table.plain td.wrap, table.plain td .gen { white-space: normal; }
.continuation { margin-top: 0.6rem; }
.gen { font-family: ui-monospace, Menlo, Consolas, monospace; font-size: 0.84rem; white-space: pre-wrap; }
.arrow { color: var(--muted); padding: 0 0.25rem; }
.up { color: #2f7d32; font-weight: 600; }
.down { color: #a4262c; font-weight: 600; }
.progress { display: flex; align-items: center; gap: 0.7rem; margin: 0.5rem 0; }
.progress .track { flex: 0 0 280px; height: 0.55rem; background: var(--soft); border: 1px solid var(--line); border-radius: 4px; overflow: hidden; }
.progress .fill { height: 100%; width: 0; background: var(--accent); transition: width 0.3s; }
.progress .fill.indeterminate { width: 30%; animation: slide 1.2s infinite ease-in-out; }
@keyframes slide { 0% { margin-left: -30%; } 100% { margin-left: 100%; } }
.progress .label { font-size: 0.84rem; color: var(--muted); }
.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 0.6rem; }
.figures img { width: 100%; border: 1px solid var(--line); border-radius: 4px; }
.loadrow { border-top: 1px solid var(--line); padding-top: 0.7rem; }
footer { margin-top: 1.5rem; font-size: 0.84rem; }
@media (max-width: 760px) { .fields, .grid2 { grid-template-columns: 1fr; } .fields label.wide { grid-column: auto; } }
"""

PAGE_JS = r"""
(function () {
  "use strict";
  // The token, if the server needs one, arrives as #token=... and is kept for this tab only.
  var TOKEN = (function () {
    var m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
    if (m) {
      var t = decodeURIComponent(m[1]);
      try { sessionStorage.setItem("interp-token", t); } catch (e) { /* storage off: keep it in memory */ }
      history.replaceState(null, "", location.pathname + location.search);
      return t;
    }
    try { return sessionStorage.getItem("interp-token"); } catch (e) { return null; }
  })();
  var INFO = null;

  function $(id) { return document.getElementById(id); }
  // every text from the user, the model or a file goes through textContent
  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent) { for (var i = 1; i < arguments.length; i++) if (arguments[i]) parent.appendChild(arguments[i]); return parent; }
  function tok(text, cls) { return el("span", "tok" + (cls ? " " + cls : ""), String(text).replace(/\n/g, "\u21b5")); }
  function pct(p) { return (100 * p).toFixed(p >= 0.1 ? 1 : 2) + "%"; }
  function bar(p) { var b = el("div", "bar"), f = el("div"); f.style.width = Math.max(0, Math.min(100, 100 * p)).toFixed(1) + "%"; b.appendChild(f); return b; }
  function td(content, cls) { var c = el("td", cls); if (content instanceof Node) c.appendChild(content); else if (content !== undefined) c.textContent = String(content); return c; }
  function row(cells) { var r = el("tr"); cells.forEach(function (c) { r.appendChild(c instanceof Node && c.tagName === "TD" ? c : td(c)); }); return r; }
  function head(names) { var r = el("tr"); names.forEach(function (n) { r.appendChild(el("th", null, n)); }); var h = el("thead"); h.appendChild(r); return h; }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }
  function showError(box, message) { box.textContent = message; box.hidden = !message; }

  async function api(method, path, body, wantBlob) {
    var headers = {}, init = {method: method, headers: headers};
    if (TOKEN) headers["Authorization"] = "Bearer " + TOKEN;
    if (body instanceof Blob) { headers["Content-Type"] = "application/octet-stream"; init.body = body; }
    else if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
    var r;
    try { r = await fetch(path, init); }
    catch (e) { throw new Error("The lab server cannot be reached; is interp serve still running?"); }
    if (r.ok && wantBlob) return r;
    var data = null;
    try { data = await r.json(); } catch (e) { data = null; }
    if (!r.ok) throw new Error((data && data.error) || ("The server answered with status " + r.status + "."));
    return data;
  }

  // -- busy status and progress ------------------------------------------------------------------------
  function setStatus(p) {
    var s = $("status");
    s.className = "status " + (p && p.busy ? "busy" : "idle");
    s.textContent = p && p.busy ? "busy: " + p.task + (p.fraction != null ? " " + Math.round(100 * p.fraction) + "%" : "") : "idle";
  }
  function watchProgress(box) {
    var fill = box.querySelector(".fill"), label = box.querySelector(".label");
    box.hidden = false;
    fill.className = "fill indeterminate";
    fill.style.width = "";
    label.textContent = "starting…";
    var stopped = false;
    async function poll() {
      if (stopped) return;
      try {
        var p = await api("GET", "api/progress");
        if (!stopped && p.busy) {
          setStatus(p);
          if (p.fraction != null) { fill.className = "fill"; fill.style.width = (100 * p.fraction).toFixed(1) + "%"; }
          else { fill.className = "fill indeterminate"; fill.style.width = ""; }
          label.textContent = p.stage + (p.total ? " (" + p.done + " of " + p.total + ")" : "") + " · " + Math.round(p.seconds) + " s";
        }
      } catch (e) { /* the request itself reports errors */ }
      if (!stopped) setTimeout(poll, 400);
    }
    setTimeout(poll, 150);
    return function () { stopped = true; box.hidden = true; setStatus(null); };
  }
  async function run(button, errorBox, work) {
    button.disabled = true;
    showError(errorBox, "");
    try { await work(); }
    catch (e) { showError(errorBox, e.message); }
    finally { button.disabled = false; }
  }
  function num(id, what) {
    var v = $(id).value.trim();
    if (!/^-?\d+$/.test(v)) throw new Error(what + " must be a whole number.");
    return parseInt(v, 10);
  }

  // -- 1. predict, logit lens, attention --------------------------------------------------------------
  async function predict() {
    var data = await api("POST", "api/predict", {prompt: $("prompt").value, top_k: num("top-k", "Top"),
                                                  new_tokens: num("new-tokens", "Continue")});
    var line = clear($("prompt-tokens"));
    add(line, el("span", "muted", data.tokens.length + " tokens: "));
    data.tokens.forEach(function (t) { line.appendChild(tok(t)); });
    var top = clear($("topk"));
    data.top_next.forEach(function (t, i) { top.appendChild(row([String(i + 1), tok(t.token, i === 0 ? "new" : ""), td(bar(t.prob), "barcell"), td(pct(t.prob), "num")])); });
    $("continuation").textContent = "";
    add($("continuation"), data.continuation ? el("span", "gen", data.continuation) : el("span", "muted", "(none)"));
    $("lens-answer").textContent = data.answer;
    var lens = clear($("lens"));
    lens.appendChild(head(["layer", "top token", "p(top)", "p(answer)", "", "rank"]));
    var body = el("tbody");
    data.logit_lens.forEach(function (r) {
      body.appendChild(row([td(String(r.layer), "num"), tok(r.top_token), td(pct(r.prob), "num"), td(bar(r.answer_prob), "barcell"),
                            td(pct(r.answer_prob), "num"), td(String(r.answer_rank + 1), "num")]));
    });
    lens.appendChild(body);
    $("lens-wrap").scrollTop = $("lens-wrap").scrollHeight;  // the last layers, where the answer forms, in view
    $("predict-out").hidden = false;
    $("predict-out").setAttribute("data-answer", data.answer);
  }
  async function attention() {
    var data = await api("POST", "api/attention", {prompt: $("prompt").value, layer: parseInt($("att-layer").value, 10)});
    var out = clear($("att-out"));
    var root = add(el("div", "viewer"), el("div", "heads"), el("div", "tokens"));
    var tip = el("div", "tooltip"); tip.hidden = true; tip.setAttribute("role", "tooltip");
    root.appendChild(tip);
    out.appendChild(root);
    window.interpAttentionViewer(root, data);  // the report's viewer, drawn from live data
  }

  // -- 2. causal trace ---------------------------------------------------------------------------------
  var KIND_NAMES = {resid: "residual stream", mlp: "MLP output", attn: "attention output"};
  async function trace() {
    var kinds = ["resid", "mlp", "attn"].filter(function (k) { return $("kind-" + k).checked; });
    if (!kinds.length) throw new Error("Choose at least one kind of state to restore.");
    var body = {prompt: $("trace-prompt").value, subject: $("trace-subject").value, target: $("trace-target").value || null,
                samples: num("trace-samples", "Noise samples"), kinds: kinds};
    var stop = watchProgress($("trace-progress"));
    var data;
    try { data = await api("POST", "api/trace", body); } finally { stop(); }
    var s = clear($("trace-summary"));
    add(s, el("span", null, "Answer "), tok(data.target), el("span", null, ": p = " + data.p_clean.toFixed(3) + " clean, " +
        data.p_corrupted.toFixed(3) + " with noise on "), tok(data.subject, "subject"),
        el("span", "muted", " (" + data.samples + " samples, noise " + data.noise + " σ, window " + data.window + ")."));
    var figs = clear($("trace-figures"));
    kinds.forEach(function (k) {
      if (!data.figures[k]) return;
      var img = el("img"); img.src = data.figures[k]; img.alt = "Causal trace heatmap: restoring the " + KIND_NAMES[k];
      figs.appendChild(img);
    });
    var peaks = clear($("trace-peaks"));
    peaks.appendChild(head(["restored", "strongest token", "layer", "p restored", "indirect effect"]));
    var tb = el("tbody");
    kinds.forEach(function (k) {
      var p = data.peak[k];
      tb.appendChild(row([KIND_NAMES[k], tok(p.token), td(String(p.layer), "num"), td(p.p.toFixed(3), "num"), td((p.ie >= 0 ? "+" : "") + p.ie.toFixed(3), "num")]));
    });
    peaks.appendChild(tb);
    $("trace-out").hidden = false;
  }

  // -- 3. edits ----------------------------------------------------------------------------------------
  function layersField() {
    var v = $("edit-layers").value.trim();
    if (!v) return null;
    var parts = v.split(/[\s,]+/).filter(Boolean);
    if (!parts.every(function (x) { return /^\d+$/.test(x); })) throw new Error("Layers must be whole numbers separated by commas.");
    return parts.map(function (x) { return parseInt(x, 10); });
  }
  function change(before, after) {
    var span = el("span");
    var cls = after > before + 0.005 ? "up" : after < before - 0.005 ? "down" : "";
    add(span, el("span", null, pct(before)), el("span", "arrow", "→"), el("span", cls, pct(after)));
    return span;
  }
  async function applyEdit() {
    var body = {prompt: $("edit-prompt").value, subject: $("edit-subject").value, target: $("edit-target").value,
                method: $("edit-method").value, layers: layersField(), paraphrase: $("edit-paraphrase").value,
                neighbour: $("edit-neighbour").value, new_tokens: 10};
    var stop = watchProgress($("edit-progress"));
    var data;
    try { data = await api("POST", "api/edits", body); } finally { stop(); }
    var t = clear($("edit-probes"));
    t.appendChild(head(["probe", "prompt", "top answer before → after", "p(" + data.target + ")", "greedy continuation before / after"]));
    var tb = el("tbody");
    data.probes.forEach(function (p) {
      var answers = add(el("span"), tok(p.before.top), el("span", "muted", " " + pct(p.before.p_top)), el("span", "arrow", "→"),
                        tok(p.after.top, p.after.top !== p.before.top ? "new" : ""), el("span", "muted", " " + pct(p.after.p_top)));
      var gens = add(el("div"), add(el("div"), el("span", "muted", "before: "), el("span", "gen", p.before.continuation)),
                     add(el("div"), el("span", "muted", "after: "), el("span", "gen", p.after.continuation)));
      tb.appendChild(row([p.kind, td(p.text, "wrap"), answers, change(p.before.p_target, p.after.p_target), td(gens, "wrap")]));
    });
    t.appendChild(tb);
    $("edit-out").hidden = false;
    await edited();
  }
  async function refreshEdits() {
    var edits = await api("GET", "api/edits");
    var t = clear($("edits-table"));
    $("no-edits").hidden = edits.length > 0;
    t.hidden = edits.length === 0;
    if (!edits.length) return;
    t.appendChild(head(["#", "fact", "method", "layers", "from", ""]));
    var tb = el("tbody");
    edits.forEach(function (e) {
      var fact = el("span");
      e.requests.forEach(function (r, i) {
        if (i) fact.appendChild(el("br"));
        add(fact, el("span", null, r.text), el("span", "arrow", "→"), tok(r.target_new, "new"));
      });
      var undo = el("button", "danger", "Undo"), save = el("button", null, "Save file");
      undo.type = save.type = "button";
      undo.setAttribute("data-edit", String(e.id));
      undo.addEventListener("click", function () { run(undo, $("edits-error"), async function () { await api("DELETE", "api/edits/" + e.id); await edited(); }); });
      save.addEventListener("click", function () { run(save, $("edits-error"), function () { return download(e.id); }); });
      var actions = add(el("td"), undo, document.createTextNode(" "), save);
      tb.appendChild(row([td("#" + e.id), td(fact, "wrap"), e.method.toUpperCase(), e.layers.join(", "), e.source === "file" ? "file" : "computed", actions]));
    });
    t.appendChild(tb);
  }
  async function download(id) {
    var r = await api("GET", "api/edits/" + id + "/file", undefined, true);
    var name = (/filename="([^"]+)"/.exec(r.headers.get("Content-Disposition") || "") || [])[1] || ("edit-" + id + ".edit");
    var url = URL.createObjectURL(await r.blob());
    var a = el("a"); a.href = url; a.download = name;
    document.body.appendChild(a); a.click(); a.remove();
    setTimeout(function () { URL.revokeObjectURL(url); }, 1000);
  }
  async function loadEdit() {
    var f = $("edit-file").files[0];
    if (!f) throw new Error("Choose an edit file first.");
    if (INFO && f.size > INFO.limits.max_upload_bytes) throw new Error("The file is " + f.size + " bytes; this server takes edit files of at most " + INFO.limits.max_upload_bytes + " bytes.");
    await api("POST", "api/edits/file", f);
    $("edit-file").value = "";
    await edited();
  }
  async function edited() {  // after an edit, an undo or a load: the list, and the prediction again
    await refreshEdits();
    if (!$("predict-out").hidden) { try { await predict(); } catch (e) { showError($("predict-error"), e.message); } }
  }

  // -- start -------------------------------------------------------------------------------------------
  function methodChanged() {
    if (!INFO) return;
    $("edit-layers").placeholder = "default " + ($("edit-method").value === "rome" ? INFO.rome_layer : INFO.memit_layers.join(","));
  }
  async function start() {
    try { INFO = await api("GET", "api/model"); }
    catch (e) { showError($("global-error"), e.message); $("model-meta").textContent = ""; return; }
    $("model-name").textContent = INFO.model;
    $("model-meta").textContent = INFO.architecture + " · " + INFO.n_layers + " layers · " + INFO.n_heads + " heads (" + INFO.n_kv_heads +
      " key/value) · d_model " + INFO.d_model + " · d_mlp " + INFO.d_mlp + " · vocabulary " + INFO.d_vocab + " · on " + INFO.device + ", " + INFO.dtype;
    var sel = $("att-layer");
    for (var l = 0; l < INFO.n_layers; l++) { var o = el("option", null, String(l)); o.value = String(l); sel.appendChild(o); }
    methodChanged();
    try { await refreshEdits(); } catch (e) { showError($("edits-error"), e.message); }
  }
  $("predict-form").addEventListener("submit", function (ev) { ev.preventDefault(); run($("predict"), $("predict-error"), predict); });
  $("attention").addEventListener("click", function () { run($("attention"), $("attention-error"), attention); });
  $("trace-form").addEventListener("submit", function (ev) { ev.preventDefault(); run($("trace"), $("trace-error"), trace); });
  $("edit-form").addEventListener("submit", function (ev) { ev.preventDefault(); run($("apply-edit"), $("edit-error"), applyEdit); });
  $("edit-method").addEventListener("change", methodChanged);
  $("load-edit").addEventListener("click", function () { run($("load-edit"), $("edits-error"), loadEdit); });
  start();
})();
"""


def style() -> str:
    return REPORT_CSS + PAGE_CSS


def script() -> str:
    return REPORT_JS + PAGE_JS
