"""Knowledge neurons: FFN hidden units whose activation carries a fact (Dai et al., ACL 2022).

Dai, Dong, Hao, Sui, Chang, Wei, "Knowledge Neurons in Pretrained Transformers". A neuron is one FFN
hidden unit at the last prompt token (the position that predicts the answer): ``hook_post``, the input
of the down projection; for gated MLPs that is act(gate) * up, not the activation alone. Its attribution
is integrated gradients of p(answer) along the straight line from 0 to its clean activation a, with the
other units of its layer scaled along with it (the paper scales the whole layer's activation vector):

    attr_i = a_i * (1/m) * sum_{k=1..m} d p(answer) / d x_i  at x = (k/m) a        (m = 20 steps)

Refinement: per prompt keep the units scoring above 0.2 x that prompt's largest attribution; across the
fact's prompts (its rewrite prompt and paraphrases) keep units present in at least a fraction p of them,
p starting at 0.7 and moved by 0.05 until 2-5 units remain (capped at the top 5 by mean attribution when
no p lands there). Controls (in `neuron_controls`): suppress (x0) and amplify (x2) the units and compare
with as many random units from the same layers.

Speed: the attribution for layer l changes only the last token from layer l on, and every earlier token
is the clean run's, so the 20 scaled copies run one token each from layer l, reading the clean prompt's
keys and values from a KV cache filled once per prompt.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from interp.analysis.facts.params import DEFAULT_UNRELATED, NeuronParams  # noqa: F401 (re-exported)
from interp.interventions import capture, intervene
from interp.model import hook_names
from interp.model.transformer import KVCache
from interp.progress import track

def _expand_cache(prefix: KVCache, rows: int, from_layer: int) -> KVCache:
    """A fresh cache holding the prefix's keys/values repeated for `rows` rows (forward extends its copy)."""
    cache = KVCache(len(prefix.layers))
    for layer in range(from_layer, len(prefix.layers)):
        src, dst = prefix.layers[layer], cache.layers[layer]
        dst.k = src.k.expand(rows, *src.k.shape[1:])  # (rows, p-1, g, d)
        dst.v = src.v.expand(rows, *src.v.shape[1:])
    cache.positions = prefix.positions.expand(rows, -1)  # (rows, p-1)
    cache.mask = prefix.mask.expand(rows, -1)
    return cache


def integrated_gradients(model, tokens: torch.Tensor, answer_id: int, steps: int = 20,
                         layers: Sequence[int] | None = None) -> np.ndarray:
    """IG attribution of p(answer) to every FFN unit at the last token: (n_layers, d_mlp), 0 where not run."""
    n, p = model.cfg.n_layers, tokens.shape[1]
    layers = range(n) if layers is None else layers
    names = [hook_names.resid_pre(l) for l in range(n)] + [hook_names.mlp_post(l) for l in range(n)]
    store: dict = {}
    with torch.no_grad():
        with intervene(model, capture(names, store)):
            model(tokens, return_type=None)
        prefix = None
        if p > 1:
            prefix = KVCache(n)
            model(tokens[:, :-1], past_kv=prefix, return_type=None)  # keys/values of every earlier token
    alphas = torch.arange(1, steps + 1, dtype=model.dtype, device=model.device) / steps  # (m,)
    out = np.zeros((n, model.cfg.d_mlp))
    for layer in layers:
        a = store[hook_names.mlp_post(layer)][0, -1]  # (d_mlp,)
        scaled = (alphas[:, None] * a[None]).requires_grad_(True)  # (m, d_mlp)

        def hook(act: torch.Tensor, hook, scaled=scaled) -> torch.Tensor:
            act = act.clone()  # (m, 1, d_mlp): only the last token runs
            act[:, -1] = scaled
            return act

        x = store[hook_names.resid_pre(layer)][:, -1:].expand(steps, -1, -1)  # (m, 1, d_model)
        past = _expand_cache(prefix, steps, layer) if prefix is not None else None
        with torch.enable_grad(), intervene(model, [(hook_names.mlp_post(layer), hook)]):
            final = model(x, start_at_layer=layer, past_kv=past, return_type="resid")  # (m, 1, d_model)
            logits = model.logits_from_resid(final[:, -1])  # (m, vocab)
            prob = torch.softmax(logits.float(), -1)[:, answer_id]
            (grad,) = torch.autograd.grad(prob.sum(), scaled)
        out[layer] = (a * grad.mean(0)).detach().double().cpu().numpy()
    return out


def threshold_units(attr: np.ndarray, fraction: float) -> set[tuple[int, int]]:
    """Units (layer, neuron) scoring above `fraction` x the largest attribution of this prompt."""
    top = attr.max()
    if top <= 0:
        return set()
    layers, units = np.nonzero(attr > fraction * top)
    return {(int(l), int(u)) for l, u in zip(layers, units)}


def refine(kept_per_prompt: list[set], mean_attr: np.ndarray, params: NeuronParams) -> tuple[list, list[dict]]:
    """Cross-prompt refinement: units present in >= p of the prompts, p moved by p_step until the count lands
    in [min_neurons, max_neurons]. Returns (units sorted by mean attribution, history of (p, count))."""
    n = len(kept_per_prompt)
    counts: dict[tuple[int, int], int] = {}
    for kept in kept_per_prompt:
        for unit in kept:
            counts[unit] = counts.get(unit, 0) + 1
    p, history, direction = params.p_start, [], 0
    while True:
        units = [u for u, c in counts.items() if c >= math.ceil(p * n - 1e-9)]
        history.append({"p": round(p, 4), "count": len(units)})
        if params.min_neurons <= len(units) <= params.max_neurons:
            break
        step = 1 if len(units) > params.max_neurons else -1
        if direction and step != direction:  # crossed over the range: no p lands in it
            break
        direction = step
        p += step * params.p_step
        if p > 1 + 1e-9 or p < params.p_step / 2:
            break
    units.sort(key=lambda u: -mean_attr[u])
    if len(units) > params.max_neurons:  # no p gave few enough: keep the strongest
        units = units[: params.max_neurons]
        history.append({"p": None, "count": len(units), "note": f"capped at top {params.max_neurons}"})
    if not units:  # nothing shared: the single strongest unit on average
        best = np.unravel_index(np.argmax(mean_attr), mean_attr.shape)
        units = [(int(best[0]), int(best[1]))]
        history.append({"p": None, "count": 1, "note": "fallback: strongest mean attribution"})
    return units, history


@dataclass
class FactNeurons:
    """What the search found for one fact."""

    case_id: object
    prompts: list[str]
    target: str
    answer_id: int
    neurons: list[tuple[int, int, float]]  # (layer, neuron, mean attribution)
    per_prompt_counts: list[int]  # units above threshold in each prompt
    history: list[dict]  # refinement steps


def find_neurons(model, prompts: Sequence[str], answer_id: int, params: NeuronParams, case_id: object = None,
                 target: str = "", progress=None) -> FactNeurons:
    """Attribute, threshold per prompt, refine across prompts."""
    attrs, kept = [], []
    for text in track(progress, prompts, "attribution"):
        tokens = torch.tensor([model.encode(text)], device=model.device)  # (1, p)
        attr = integrated_gradients(model, tokens, answer_id, params.steps)
        attrs.append(attr)
        kept.append(threshold_units(attr, params.threshold))
    mean_attr = np.mean(attrs, 0)  # (n_layers, d_mlp)
    units, history = refine(kept, mean_attr, params)
    neurons = [(l, u, float(mean_attr[l, u])) for l, u in units]
    return FactNeurons(case_id, list(prompts), target, answer_id, neurons, [len(k) for k in kept], history)
