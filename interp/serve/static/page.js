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
    else if (method !== "GET") {  // every state-changing call says JSON, a DELETE too: the server requires it
      headers["Content-Type"] = "application/json";
      if (body !== undefined) init.body = JSON.stringify(body);
    }
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
      e.requests.slice(0, 3).forEach(function (r, i) {
        if (i) fact.appendChild(el("br"));
        add(fact, el("span", null, r.text), el("span", "arrow", "→"), tok(r.target_new, "new"));
      });
      if (e.requests.length > 3) add(fact, el("br"), el("span", "muted", "and " + (e.requests.length - 3) + " more facts"));
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
  async function applyFacts() {
    var f = $("facts-file").files[0];
    if (!f) throw new Error("Choose a fact file first.");
    if (INFO && f.size > INFO.limits.max_upload_bytes) throw new Error("The file is " + f.size + " bytes; this server takes fact files of at most " + INFO.limits.max_upload_bytes + " bytes.");
    var query = "?method=" + encodeURIComponent($("facts-method").value) + "&batch_size=" + num("facts-batch", "The batch size");
    if ($("facts-limit").value.trim()) query += "&limit=" + num("facts-limit", "The number of facts");
    $("facts-out").hidden = true;
    var stop = watchProgress($("facts-progress"));
    var data;
    try { data = await api("POST", "api/edits/facts" + query, f); } finally { stop(); }
    var text = data.facts + " facts written with " + data.edit.method.toUpperCase() + " in " + data.steps + " steps (edit #" + data.edit.id +
      "); the rewrite prompt now prefers the new answer for " + data.rewritten + " of them; held-out perplexity " +
      data.perplexity_before.toFixed(2) + " → " + data.perplexity_after.toFixed(2) + ".";
    if (data.flagged_steps.length) text += " Update norm far outside the earlier ones at steps " + data.flagged_steps.join(", ") + ".";
    $("facts-out").textContent = text;
    $("facts-out").hidden = false;
    $("facts-file").value = "";
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
  $("apply-facts").addEventListener("click", function () { run($("apply-facts"), $("facts-error"), applyFacts); });
  start();
})();
