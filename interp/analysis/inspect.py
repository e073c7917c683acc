"""A first look at a model on one prompt: its config, its next-token distribution, and the logit lens.

The logit lens (nostalgebraist 2020) reads the residual stream after each layer through the final norm
and the unembedding, showing at which depth the eventual answer becomes the top prediction.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import torch

from interp.model import hook_names


@dataclass
class InspectResult:
    model: str
    prompt: str
    config: dict
    tokens: list[str]
    top_next: list[dict]  # [{"token", "id", "prob"}]
    logit_lens: pd.DataFrame  # layer, top_token, prob, answer_prob, answer_rank

    def to_json(self) -> dict:
        return {
            "model": self.model,
            "prompt": self.prompt,
            "config": self.config,
            "tokens": self.tokens,
            "top_next": self.top_next,
            "logit_lens": self.logit_lens.to_dict(orient="records"),
        }

    def render(self) -> str:
        c = self.config
        lines = [
            f"{self.model}: {c['n_layers']} layers, d_model {c['d_model']}, {c['n_heads']} heads "
            f"({c['n_kv_heads']} key/value), d_head {c['d_head']}, d_mlp {c['d_mlp']}, vocab {c['d_vocab']}, "
            f"context {c['n_ctx']}, {c['norm']} norm, {c['positional']} positions, {c['act']} "
            f"{'gated ' if c['gated_mlp'] else ''}MLP",
            f"prompt: {len(self.tokens)} tokens {self.tokens}",
            "",
            "top next tokens:",
        ]
        lines += [f"  {t['prob']:.3f}  {t['token']!r}" for t in self.top_next]
        lines += ["", f"logit lens (top token after each layer; last column: p of the final answer {self.top_next[0]['token']!r}):"]
        for row in self.logit_lens.itertuples():
            lines.append(f"  layer {row.layer:>2}  {row.top_token!r:<16} {row.prob:.3f}   {row.answer_prob:.3f}")
        return "\n".join(lines)


@torch.no_grad()
def inspect_prompt(model, prompt: str, top_k: int = 5) -> InspectResult:
    tokens = model.to_tokens(prompt)
    n = model.cfg.n_layers
    names = [hook_names.resid_post(layer) for layer in range(n)]
    logits, cache = model.run_with_cache(tokens, names_filter=names)
    probs = logits[0, -1].float().softmax(-1)
    top = probs.topk(top_k)
    top_next = [{"token": model.to_string([i]), "id": i, "prob": p} for p, i in zip(top.values.tolist(), top.indices.tolist())]
    answer = top.indices[0]
    resid = torch.stack([cache[name][0, -1] for name in names])  # (layer, d_model)
    lens = model.logits_from_resid(resid).float().softmax(-1)  # (layer, vocab)
    best = lens.max(-1)
    rank = (lens > lens[:, answer : answer + 1]).sum(-1)
    table = pd.DataFrame({
        "layer": range(n),
        "top_token": [model.to_string([i]) for i in best.indices.tolist()],
        "prob": best.values.tolist(),
        "answer_prob": lens[:, answer].tolist(),
        "answer_rank": rank.tolist(),
    })
    cfg = {k: v for k, v in model.cfg.to_dict().items() if k != "extra"}
    return InspectResult(model.cfg.name, prompt, cfg, model.to_str_tokens(prompt), top_next, table)
