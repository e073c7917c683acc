"""Knowledge neurons: FFN hidden units whose activation carries a fact (Dai et al., ACL 2022).

Dai, Dong, Hao, Sui, Chang, Wei, "Knowledge Neurons in Pretrained Transformers"; reference code
github.com/Hunter-DDM/knowledge-neurons (``1_analyze_mlm.py``, ``2_get_kn.py``). A neuron is one FFN hidden
unit at the last prompt token (the position that predicts the answer): ``hook_post``, the input of the down
projection; for gated MLPs that is act(gate) * up, not the activation alone. Its attribution is integrated
gradients of p(answer) along the straight line from 0 to its clean activation a, with the other units of its
layer scaled along with it (the reference scales the whole layer's activation vector), as the reference's
left Riemann sum over m points:

    attr_i = a_i * (1/m) * sum_{k=0..m-1} d p(answer) / d x_i  at x = (k/m) a        (m = 20)

so the attributions of a layer sum to p(answer | a) - p(answer | 0) up to the Riemann error.

Refinement, as the reference does it: per prompt keep the units scoring >= 0.2 x that prompt's largest
attribution; per fact keep the units kept in at least max(p * n, 3) of its n prompts. p is tuned per
*relation*, not per fact: it starts at 0.7 and, for at most 6 rounds, moves by 0.05 until the relation's
facts hold 2-5 neurons on average. A fact where no unit is consistent keeps no neurons, and says so.
Prompts: a fact's own prompt and paraphrases, then (as the paper fills each relation's templates with the
subject) the other templates of its relation found in the fact set, up to ``max_prompts``.
Controls (in `neuron_controls`): suppress (x0) and amplify (x2) the units and compare with as many random
units from the same layers.

Speed: the attribution for layer l changes only the last token from layer l on, and every earlier token
is the clean run's, so the m scaled copies run one token each from layer l, reading the clean prompt's
keys and values from a KV cache filled once per prompt. :func:`integrated_gradients_batch` does the same
for several prompts at once (left-padded, so each keeps its own positions and mask): one pass per layer
for all their m-step rows, which is what makes dozens of facts affordable on a CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from interp.analysis.facts.params import NeuronParams
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


def _repeat_cache(prefix: KVCache, repeats: int, from_layer: int) -> KVCache:
    """A fresh cache holding each prefix row's keys/values `repeats` times in a row (row i -> rows i*r..)."""
    cache = KVCache(len(prefix.layers))
    for layer in range(from_layer, len(prefix.layers)):
        src, dst = prefix.layers[layer], cache.layers[layer]
        dst.k = src.k.repeat_interleave(repeats, 0)  # (P * r, p-1, g, d)
        dst.v = src.v.repeat_interleave(repeats, 0)
    cache.positions = prefix.positions.repeat_interleave(repeats, 0)  # (P * r, p-1)
    cache.mask = prefix.mask.repeat_interleave(repeats, 0)
    return cache


def integrated_gradients_batch(model, token_lists: Sequence[Sequence[int]], answer_ids: Sequence[int],
                               steps: int = 20) -> list[np.ndarray]:
    """`integrated_gradients` of several prompts (token id lists, each with its own answer) in one batch:
    one (n_layers, d_mlp) array per prompt, equal to the one-prompt computation up to float error."""
    n, d_mlp = model.cfg.n_layers, model.cfg.d_mlp
    tokens, mask = model.pad_left(token_lists)  # (P, T), left-padded: every last token at -1
    n_prompts, length = tokens.shape
    names = [hook_names.resid_pre(l) for l in range(n)] + [hook_names.mlp_post(l) for l in range(n)]
    store: dict = {}
    with torch.no_grad():
        with intervene(model, capture(names, store)):
            model(tokens, attention_mask=mask, return_type=None)
        prefix = None
        if length > 1:
            prefix = KVCache(n)
            model(tokens[:, :-1], attention_mask=mask[:, :-1], past_kv=prefix, return_type=None)
    alphas = torch.arange(steps, dtype=model.dtype, device=model.device) / steps  # (m,): 0, 1/m, .., (m-1)/m
    answers = torch.tensor(list(answer_ids), device=model.device).repeat_interleave(steps)  # (P * m,)
    out = np.zeros((n_prompts, n, d_mlp))
    for layer in range(n):
        a = store[hook_names.mlp_post(layer)][:, -1]  # (P, d_mlp)
        scaled = (alphas[None, :, None] * a[:, None, :]).reshape(n_prompts * steps, d_mlp).requires_grad_(True)

        def hook(act: torch.Tensor, hook, scaled=scaled) -> torch.Tensor:
            act = act.clone()  # (P * m, 1, d_mlp): only the last token runs
            act[:, -1] = scaled
            return act

        x = store[hook_names.resid_pre(layer)][:, -1:].repeat_interleave(steps, 0)  # (P * m, 1, d_model)
        past = _repeat_cache(prefix, steps, layer) if prefix is not None else None
        with torch.enable_grad(), intervene(model, [(hook_names.mlp_post(layer), hook)]):
            final = model(x, start_at_layer=layer, past_kv=past, return_type="resid")  # (P * m, 1, d_model)
            logits = model.logits_from_resid(final[:, -1])  # (P * m, vocab)
            prob = torch.softmax(logits.float(), -1).gather(1, answers[:, None])[:, 0]
            (grad,) = torch.autograd.grad(prob.sum(), scaled)
        mean_grad = grad.reshape(n_prompts, steps, d_mlp).mean(1)  # (P, d_mlp)
        out[:, layer] = (a * mean_grad).detach().double().cpu().numpy()
    return list(out)


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
    alphas = torch.arange(steps, dtype=model.dtype, device=model.device) / steps  # (m,): 0, 1/m, .., (m-1)/m
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
    """Units (layer, neuron) scoring at least `fraction` x the largest attribution of this prompt."""
    top = attr.max()
    if top <= 0:
        return set()
    layers, units = np.nonzero(attr >= fraction * top)
    return {(int(l), int(u)) for l, u in zip(layers, units)}


@dataclass
class Attribution:
    """One fact's integrated gradients over its prompts."""

    prompts: list[str]
    kept: list[set]  # per prompt: units at or above the threshold
    mean_attr: np.ndarray  # (n_layers, d_mlp), averaged over the prompts


def attribute(model, prompts: Sequence[str], answer_id: int, params: NeuronParams, progress=None) -> Attribution:
    """Attribute p(answer) in every prompt and threshold each prompt's units."""
    return attribute_many(model, [(prompts, answer_id)], params, progress)[0]


def attribute_many(model, facts: Sequence[tuple[Sequence[str], int]], params: NeuronParams,
                   progress=None) -> list[Attribution]:
    """`attribute` for many (prompts, answer id) facts, each fact's prompts batched params.batch_rows // steps
    at a time (rows = prompts x steps). A batch never mixes facts, so a fact's attributions are the same bits
    whichever facts it is computed with (a sweep's shards write what the serial run writes)."""
    per_batch = max(1, params.batch_rows // params.steps)
    chunks = []
    for i, (prompts, answer) in enumerate(facts):
        rows = [(i, text, answer) for text in prompts]
        chunks += [rows[k:k + per_batch] for k in range(0, len(rows), per_batch)]
    attrs: list[list[np.ndarray]] = [[] for _ in facts]
    for chunk in track(progress, chunks, "attribution"):
        found = integrated_gradients_batch(model, [model.encode(t) for _, t, _ in chunk], [a for _, _, a in chunk],
                                           params.steps)
        for (i, _, _), attr in zip(chunk, found):
            attrs[i].append(attr)
    return [Attribution(list(prompts), [threshold_units(a, params.threshold) for a in attrs[i]],
                        np.mean(attrs[i], 0)) for i, (prompts, _) in enumerate(facts)]


def consistent_units(kept: list[set], p: float, min_prompts: int) -> list[tuple[int, int]]:
    """Units kept in at least max(p * n, min_prompts) of the n prompts (the reference's count, not rounded)."""
    need = max(p * len(kept), min_prompts)
    counts: dict[tuple[int, int], int] = {}
    for units in kept:
        for unit in units:
            counts[unit] = counts.get(unit, 0) + 1
    return [u for u, c in counts.items() if c >= need - 1e-9]


def refine_relation(facts: list[Attribution], params: NeuronParams) -> tuple[list[list], list[dict]]:
    """One p for all the facts of a relation: from p_start, moved by p_step for at most max_rounds rounds until
    the facts hold min_neurons..max_neurons units on average. Returns (each fact's units sorted by mean
    attribution, the history of (p, mean count)). A fact may end with no units: nothing was consistent."""
    p, history = params.p_start, []
    for _ in range(params.max_rounds):
        units = [consistent_units(f.kept, p, params.min_prompts) for f in facts]
        mean = float(np.mean([len(u) for u in units]))
        history.append({"p": round(p, 4), "mean_count": round(mean, 4)})
        if params.min_neurons <= mean <= params.max_neurons:
            break
        p += params.p_step if mean > params.max_neurons else -params.p_step
    units = [sorted(u, key=lambda x, f=f: -f.mean_attr[x]) for u, f in zip(units, facts)]
    return units, history


def refine_fixed(facts: list[Attribution], p: float, params: NeuronParams) -> tuple[list[list], list[dict]]:
    """The units of each fact at a p chosen elsewhere (on the tuning part): no tuning on these facts."""
    units = [consistent_units(f.kept, p, params.min_prompts) for f in facts]
    mean = float(np.mean([len(u) for u in units])) if units else 0.0
    units = [sorted(u, key=lambda x, f=f: -f.mean_attr[x]) for u, f in zip(units, facts)]
    return units, [{"p": round(p, 4), "mean_count": round(mean, 4)}]


def relation_templates(facts: Sequence) -> dict:
    """Each relation's prompt templates found in a fact set: every fact's rewrite prompt, and each paraphrase
    that names its subject exactly once with the subject replaced by "{}" (first seen first)."""
    out: dict = {}
    for fact in facts:
        found = out.setdefault(fact.relation_id, [])
        for text in (fact.text, *fact.paraphrase_prompts):
            if "{}" in text or text.count(fact.subject) != 1:
                continue
            template = text.replace(fact.subject, "{}")
            if template not in found:
                found.append(template)
    return out


def fact_prompts(fact, templates: Sequence[str], max_prompts: int) -> list[str]:
    """The fact's own prompt and paraphrases, then its relation's other templates filled with its subject."""
    prompts = [fact.text, *fact.paraphrase_prompts][:max_prompts]
    for template in templates:
        if len(prompts) >= max_prompts:
            break
        text = template.replace("{}", fact.subject)
        if text not in prompts:
            prompts.append(text)
    return prompts


@dataclass
class FactNeurons:
    """What the search found for one fact."""

    case_id: object
    prompts: list[str]
    target: str
    answer_id: int
    neurons: list[tuple[int, int, float]]  # (layer, neuron, mean attribution); empty: none consistent
    per_prompt_counts: list[int]  # units at or above the threshold in each prompt
    history: list[dict]  # its relation's refinement rounds (on the tuning part when p was tuned there)
    relation: object = None
    heldout: list[str] = field(default_factory=list)  # prompts kept out of the search (controls only)
    p: float | None = None  # the refinement p these neurons were kept at
    tuned_on: str = "facts"  # "tune" (p chosen on the tuning part) or "facts" (on these facts themselves)


def find_neurons(model, prompts: Sequence[str], answer_id: int, params: NeuronParams, case_id: object = None,
                 target: str = "", progress=None) -> FactNeurons:
    """One fact on its own (a relation of one): attribute, threshold per prompt, refine across prompts."""
    attr = attribute(model, prompts, answer_id, params, progress)
    (units,), history = refine_relation([attr], params)
    return neurons_of(attr, units, history, case_id, target, answer_id)


def neurons_of(attr: Attribution, units: list, history: list[dict], case_id, target: str, answer_id: int,
               relation=None, heldout: Sequence[str] = (), tuned_on: str = "facts") -> FactNeurons:
    """The FactNeurons record of one fact's attribution and refined units."""
    neurons = [(l, u, float(attr.mean_attr[l, u])) for l, u in units]
    p = history[-1]["p"] if history else None
    return FactNeurons(case_id, attr.prompts, target, answer_id, neurons, [len(k) for k in attr.kept], history,
                       relation, list(heldout), p, tuned_on)
