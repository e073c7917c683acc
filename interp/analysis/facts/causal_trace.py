"""Causal tracing: which hidden states, at which token and layer, carry a fact to the answer.

Meng et al. 2022, "Locating and Editing Factual Associations in GPT" (ROME, section 2). Three runs of
the model on a factual prompt ("The Eiffel Tower is located in the city of" -> " Paris"):

1. clean: the prompt as it is; p_clean = p(answer) at the last token;
2. corrupted: Gaussian noise of std ``noise x sigma`` is added to the embeddings of the subject tokens
   (at ``hook_embed``, so after Gemma's sqrt(d_model) scale), which usually destroys the recall;
3. corrupted with one clean state restored: at one (token t, layer l) the hidden state is set back to
   its clean value. If p(answer) recovers, that state carries the fact. Three kinds of state: the
   residual stream (block output, ``hook_resid_post``), and the MLP or attention output
   (``hook_mlp_out`` / ``hook_attn_out``) restored over a window of layers l-w/2 .. l+w/2-1 at token t.

Scores are p(answer) averaged over ``samples`` noise draws; the indirect effect of a state is
IE = p_restored - p_corrupted and the total effect TE = p_clean - p_corrupted. The noise is drawn once
per fact from ``seed`` and reused for every restoration (the reference's pairing: lower variance).
sigma is one scalar: the standard deviation of the embedding outputs (embedding rows x embed scale) of
the tokens of ``" " + subject`` over a fixed list of well-known subjects (``NOISE_SUBJECTS``).

Speed (the reference runs one forward per cell, over every position and layer): restoring a state at
(token t, layer l) leaves every position before t, and every layer below the first restored one, equal to
the corrupted run. So one batched corrupted run over the samples caches the residual stream entering each
layer and each layer's keys and values; a restored run then starts at its first restored layer, runs only
positions t.. (attending to the corrupted keys and values of positions < t, as a KV cache), and unembeds
the last position only. A restored residual at (t, l) is the corrupted stream entering l+1 with row t
replaced, so it needs no hook; MLP / attention restorations set row t of hook_mlp_out / hook_attn_out.
Every run restoring one token shares a forward (up to ``batch_size`` rows): rows are sorted by their start
layer and join the batch there. Cells at tokens before the subject equal the corrupted run (nothing
differs there yet), so they are not run. ``trace_bruteforce`` is the one-forward-per-cell reference.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from interp.analysis.facts.params import NOISE_SUBJECTS, TraceParams
from interp.errors import InvalidInputError
from interp.interventions import capture, intervene, set_activation
from interp.model import hook_names
from interp.model.components.attention import AttentionInputs, LayerCache
from interp.model.tokenize import answer_ids, subject_tokens
from interp.model.transformer import KVCache
from interp.progress import Progress, track


@dataclass
class FactCase:
    """A prompt ready to trace: token ids, where the subject is, which token answers."""

    prompt: str
    subject: str
    target: str
    tokens: torch.Tensor  # (1, p)
    str_tokens: list[str]
    subject_start: int  # first subject token
    subject_end: int  # one past the last subject token
    answer_id: int
    case_id: object = None

    def category_positions(self) -> dict[str, list[int]]:
        s, e, p = self.subject_start, self.subject_end, self.tokens.shape[1]
        return {
            "first_subject": [s],
            "middle_subject": list(range(s + 1, e - 1)),
            "last_subject": [e - 1],
            "first_subsequent": [e] if e < p else [],
            "further": list(range(e + 1, p - 1)),
            "last": [p - 1],
        }


@dataclass
class FactTrace:
    """One fact's trace: ``scores[kind]`` is (len(positions), n_layers) mean p(answer) after restoring."""

    case: FactCase
    p_clean: float
    p_corrupted: float
    positions: list[int]
    scores: dict[str, np.ndarray] = field(default_factory=dict)

    def effects(self, kind: str) -> np.ndarray:
        """Indirect effects IE = p_restored - p_corrupted, (len(positions), n_layers)."""
        return self.scores[kind] - self.p_corrupted

    def category_effects(self, kind: str) -> dict[str, np.ndarray]:
        """IE per layer averaged over each category's positions (NaN where a category is empty)."""
        row = {pos: i for i, pos in enumerate(self.positions)}
        ie = self.effects(kind)
        n_layers = ie.shape[1]
        out = {}
        for cat, poss in self.case.category_positions().items():
            out[cat] = ie[[row[q] for q in poss]].mean(0) if poss else np.full(n_layers, np.nan)
        return out


# --- setting up a prompt -----------------------------------------------------------------------------
def prepare_case(model, prompt: str, subject: str, target: str | None = None, case_id: object = None) -> FactCase:
    """Tokenize ``prompt`` with ``subject`` filled in, find the subject's tokens and the answer token.

    The prompt holds "{}" where the subject goes (CounterFact's form) or the subject itself. The answer
    is the first token of ``" " + target`` (CounterFact targets carry no leading space), or the model's
    greedy next token when ``target`` is None.
    """
    if not subject or not subject.strip():
        raise InvalidInputError("The subject is empty; give the words of the prompt to corrupt.")
    if not prompt or not prompt.strip():
        raise InvalidInputError("The prompt is empty; give some text.")
    if "{}" not in prompt:
        if subject not in prompt:
            raise InvalidInputError(f"The subject {subject!r} is not in the prompt {prompt!r}.")
        prompt = prompt.replace(subject, "{}", 1)
    span = subject_tokens(model, prompt, subject)
    tokens = torch.tensor([span.ids], device=model.device)  # (1, p)
    if target is None:
        with torch.no_grad():
            answer_id = int(_answer_probs(model, model(tokens, return_type="resid")[:, -1]).argmax())
        target = model.to_string([answer_id]).strip()
    else:
        answer_id = answer_token(model, target)
    return FactCase(prompt, subject, target, tokens, model.to_str_tokens(tokens[0]), span.start, span.end,
                    answer_id, case_id)


@torch.no_grad()
def greedy_token(model, case: FactCase) -> int:
    """The model's greedy next token after the case's prompt."""
    return int(_answer_probs(model, model(case.tokens, return_type="resid")[:, -1])[0].argmax())


def answer_token(model, target: str) -> int:
    """The first token of the answer as it follows the prompt: ``" " + target``."""
    return answer_ids(model, target)[0]


def embedding_std(model, subjects: Sequence[str] = NOISE_SUBJECTS) -> float:
    """sigma: std of the embedding outputs (what ``hook_embed`` sees) of the subjects' tokens."""
    ids = [i for s in subjects for i in model.encode(" " + s.strip(), prepend_bos=False)]
    with torch.no_grad():
        emb = model.embed(torch.tensor(ids, device=model.device))  # (n_tokens, d_model)
    return float(emb.float().std())


def make_noise(samples: int, n_tokens: int, d_model: int, scale: float, seed: int) -> torch.Tensor:
    """The corruption: (samples, n_tokens, d_model) Gaussian noise of std ``scale``, from ``seed`` alone."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(samples, n_tokens, d_model, generator=gen) * scale


def noise_hook(noise: torch.Tensor, start: int) -> list:
    """Add noise (rows, n_subject_tokens, d) to the embeddings at positions start .. start+n-1, row by row."""
    end = start + noise.shape[1]

    def hook(emb: torch.Tensor, hook) -> torch.Tensor:
        emb = emb.clone()
        emb[:, start:end] = emb[:, start:end] + noise.to(emb.device, emb.dtype)
        return emb

    return [(hook_names.HOOK_EMBED, hook)]


def _answer_probs(model, final_resid: torch.Tensor) -> torch.Tensor:
    """Softmax over the vocabulary from the final residual at the read position: (rows, d) -> (rows, vocab)."""
    return torch.softmax(model.logits_from_resid(final_resid).float(), dim=-1)  # (rows, vocab)


def _window(layer: int, window: int, n_layers: int) -> range:
    """The reference's window: l - w//2 .. l + ceil(w/2) - 1, clipped (w = 10: l-5 .. l+4)."""
    return range(max(0, layer - window // 2), min(n_layers, layer - (-window // 2)))


def _hook_name(kind: str, layer: int) -> str:
    return {"resid": hook_names.resid_post, "mlp": hook_names.mlp_out, "attn": hook_names.attn_out}[kind](layer)


# --- the batched trace -------------------------------------------------------------------------------
@torch.no_grad()
def clean_and_corrupted(model, case: FactCase, noise: torch.Tensor, kinds: Sequence[str]):
    """One clean run (caching the states to restore) and one corrupted run over the noise samples, caching
    the residual stream entering every layer and every layer's keys and values (as attention reads them:
    after norms and RoPE). Returns (p_clean, p_corrupted, clean, entering, kv)."""
    n = model.cfg.n_layers
    clean: dict = {}
    names = [_hook_name(k, l) for k in kinds for l in range(n)]
    with intervene(model, capture(names, clean)):
        final = model(case.tokens, return_type="resid")  # (1, p, d)
    p_clean = float(_answer_probs(model, final[:, -1])[0, case.answer_id])
    corrupted: dict = {}
    rows = case.tokens.expand(noise.shape[0], -1)  # (samples, p)
    entering_names = [hook_names.resid_pre(l) for l in range(n)]
    kv = KVCache(n)
    with intervene(model, noise_hook(noise, case.subject_start), capture(entering_names, corrupted)):
        final_c = model(rows, return_type="resid", past_kv=kv)  # (samples, p, d)
    p_corrupted = float(_answer_probs(model, final_c[:, -1])[:, case.answer_id].mean())
    entering = [corrupted[name] for name in entering_names] + [final_c]  # [l]: stream entering layer l
    return p_clean, p_corrupted, clean, entering, kv.layers


@dataclass
class _Row:
    """One restored run of one noise sample: from layer ``start`` on, with ``kind``'s restorations in
    layers ``span`` (resid: the stream entering ``start`` is restored, no restoration inside)."""

    kind: str
    layer: int  # the cell's layer (the window's centre for mlp / attn)
    sample: int
    start: int
    span: range


def _rows(kinds: Sequence[str], n: int, samples: int, window: int) -> list[_Row]:
    rows = []
    for kind in kinds:
        for layer in range(n):
            span = range(layer + 1, layer + 1) if kind == "resid" else _window(layer, window, n)
            start = layer + 1 if kind == "resid" else span.start
            rows += [_Row(kind, layer, s, start, span) for s in range(samples)]
    return sorted(rows, key=lambda r: r.start)  # stable: a batch's rows join the run in this order


@torch.no_grad()
def _run_restored(model, case: FactCase, t: int, group: list[_Row], clean: dict, entering: list,
                  kv: list) -> torch.Tensor:
    """p(answer) of each row of ``group`` (sorted by start), all restoring token t: only positions t.. are
    run, from each row's start layer on, attending to the corrupted run's keys and values of positions
    < t; rows join the batch at their start layer. Returns (len(group),)."""
    n, p = model.cfg.n_layers, case.tokens.shape[1]
    device = entering[0].device
    samples = torch.tensor([r.sample for r in group], device=device)
    starts = [r.start for r in group]
    # every row shares the positions t..p-1 and the keys 0..p-1: one row of positions broadcasts
    inputs = AttentionInputs(torch.arange(t, p, device=device)[None], torch.arange(p, device=device)[None], None)
    # restorations inside the run (mlp / attn): at layer L, rows i (in group order) get the clean state at t
    restore: dict[str, torch.Tensor] = {}
    for L in range(n):
        for kind in ("mlp", "attn"):
            idx = [i for i, r in enumerate(group) if r.kind == kind and L in r.span]
            if idx:
                restore[_hook_name(kind, L)] = torch.tensor(idx, device=device)

    def hook(act: torch.Tensor, hook) -> torch.Tensor:
        act = act.clone()
        act[restore[hook.name], 0] = clean[hook.name][0, t].to(act.dtype)
        return act

    on_device = {device: inputs}
    x = None
    joined = 0
    with intervene(model, [(name, hook) for name in restore]):
        for L in range(starts[0], n + 1):
            new = joined
            while new < len(group) and starts[new] == L:
                new += 1
            if new > joined:  # rows starting here: the corrupted stream entering L, at positions t..
                fresh = entering[L][samples[joined:new], t:]  # (rows, p - t, d)
                for i in range(joined, new):
                    if group[i].kind == "resid":  # the restored block output is the stream entering L
                        fresh[i - joined, 0] = clean[_hook_name("resid", L - 1)][0, t]
                x = fresh if x is None else torch.cat([x, fresh.to(x.device)])
                joined = new
            if L == n:
                break
            block = model.blocks[L]
            x = x.to(block.attn.w_q.device)
            cache = LayerCache()
            if t > 0:
                rows = samples[:joined].to(x.device)
                cache.k, cache.v = kv[L].k[rows, :t], kv[L].v[rows, :t]
            if x.device not in on_device:
                on_device[x.device] = inputs.to(x.device)
            x = block(x, on_device[x.device], cache)
    return _answer_probs(model, x[:, -1])[:, case.answer_id].float().cpu()


@torch.no_grad()
def trace_case(model, case: FactCase, noise: torch.Tensor, params: TraceParams,
               positions: Sequence[int] | None = None, progress: Progress | None = None) -> FactTrace:
    """Trace one prompt at ``positions`` (default: every token). Restoring (t, l) leaves positions before
    t and every layer below the restoration equal to the corrupted run, so each restored run starts at its
    layer, runs only positions t.., attends to the corrupted keys and values of positions < t, and reads
    logits at the last position only; up to ``batch_size`` runs of one token share a forward."""
    n, p = model.cfg.n_layers, case.tokens.shape[1]
    positions = list(range(p)) if positions is None else sorted(set(positions))
    p_clean, p_corr, clean, entering, kv = clean_and_corrupted(model, case, noise, params.kinds)
    samples = noise.shape[0]
    scores = {kind: np.full((len(positions), n), p_corr) for kind in params.kinds}
    rows = _rows(params.kinds, n, samples, params.window)
    # Tokens before the subject are identical in clean and corrupted runs: restoring them changes nothing.
    live = [q for q in positions if q >= case.subject_start]
    jobs = [(q, rows[i:i + params.batch_size]) for q in live for i in range(0, len(rows), params.batch_size)]
    sums = {kind: np.zeros((len(positions), n)) for kind in params.kinds}
    for q, group in track(progress, jobs, "tracing"):
        probs = _run_restored(model, case, q, group, clean, entering, kv).double().numpy()
        i = positions.index(q)
        for r, prob in zip(group, probs):
            sums[r.kind][i, r.layer] += prob
    index = [positions.index(q) for q in live]
    for kind in params.kinds:
        scores[kind][index] = sums[kind][index] / samples
    return FactTrace(case, p_clean, p_corr, positions, scores)


@torch.no_grad()
def trace_bruteforce(model, case: FactCase, noise: torch.Tensor, params: TraceParams,
                     positions: Sequence[int] | None = None, progress: Progress | None = None) -> FactTrace:
    """The reference algorithm: one full forward (over the noise samples) per (kind, token, layer) cell,
    restoring with `set_activation` hooks and unembedding every position. Slow; for tests and benchmarks."""
    n, p = model.cfg.n_layers, case.tokens.shape[1]
    positions = list(range(p)) if positions is None else sorted(set(positions))
    clean: dict = {}
    names = [_hook_name(k, l) for k in params.kinds for l in range(n)]
    with intervene(model, capture(names, clean)):
        p_clean = float(torch.softmax(model(case.tokens)[0, -1].float(), -1)[case.answer_id])
    rows = case.tokens.expand(noise.shape[0], -1)  # (samples, p)
    corrupt = noise_hook(noise, case.subject_start)

    def p_answer(*hooks) -> float:
        with intervene(model, corrupt, *hooks):
            logits = model(rows)  # (samples, p, vocab)
        return float(torch.softmax(logits[:, -1].float(), -1)[:, case.answer_id].mean())

    p_corr = p_answer()
    scores = {kind: np.zeros((len(positions), n)) for kind in params.kinds}
    cells = [(k, i, l) for k in params.kinds for i in range(len(positions)) for l in range(n)]
    for kind, i, layer in track(progress, cells, "brute force"):
        q = positions[i]
        span = [layer] if kind == "resid" else _window(layer, params.window, n)
        hooks = [set_activation(_hook_name(kind, L), clean[_hook_name(kind, L)][0, q], pos=q) for L in span]
        scores[kind][i, layer] = p_answer(*hooks)
    return FactTrace(case, p_clean, p_corr, positions, scores)


def case_noise(model, case: FactCase, params: TraceParams, sigma: float) -> torch.Tensor:
    """The fact's noise: the same draw (from params.seed) for every restoration of this fact."""
    n_subject = case.subject_end - case.subject_start
    return make_noise(params.samples, n_subject, model.cfg.d_model, params.noise * sigma, params.seed)
