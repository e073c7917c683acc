"""Direct logit attribution: each component's direct share of a logit difference, through the final norm.

The final norm divides the residual stream by its root-mean-square (after centring, for LayerNorm); with
that scale frozen at its value in this run, the logit difference is a sum over everything written into
the stream: the embeddings, each head's output (hook_result), each MLP's output, and the biases. Sandwich
norms (Gemma) are linearised the same way: a head's share of attn_out is its result divided by ln1_post's
frozen scale times its weight. Final-logit soft-capping (Gemma-2) is not linear: the shares add up to the
difference before the cap. Returns a DataFrame (component, layer, head, pos, contribution) and the total.
"""

from __future__ import annotations

import torch

from interp.model import hook_names


@torch.no_grad()
def direct_logit_attribution(model, tokens: torch.Tensor, answer: int, wrong: int):
    """(DataFrame of per-component contributions at every position, (pos,) logit difference before any cap)."""
    import pandas as pd

    cfg = model.cfg
    tokens = torch.atleast_2d(tokens)[:1]
    names = ([hook_names.HOOK_EMBED, "ln_final.hook_scale"] + [hook_names.result(l) for l in range(cfg.n_layers)]
             + [hook_names.mlp_out(l) for l in range(cfg.n_layers)])
    if cfg.positional == "learned":
        names.append(hook_names.HOOK_POS_EMBED)
    if cfg.sandwich_norm:
        names += [f"blocks.{l}.ln1_post.hook_scale" for l in range(cfg.n_layers)]
    logits, cache = model.run_with_cache(tokens, names_filter=names)
    direction = (model.W_U[:, answer] - model.W_U[:, wrong]).float() * model.ln_final.w.float()  # (d_model,)
    scale = cache["ln_final.hook_scale"][0].float()  # (p, 1)

    def to_logits(x: torch.Tensor) -> torch.Tensor:  # (p, ..., d_model) written into the stream -> (p, ...)
        x = x.float()
        if cfg.norm == "layer":
            x = x - x.mean(-1, keepdim=True)
        return (x @ direction) / scale.view(-1, *([1] * (x.dim() - 2)))

    rows = []
    def add(component, layer, head, values):
        rows.extend(dict(component=component, layer=layer, head=head, pos=p, contribution=float(v))
                    for p, v in enumerate(values))

    add("embed", -1, -1, to_logits(cache[hook_names.HOOK_EMBED][0]))
    if cfg.positional == "learned":
        add("pos_embed", -1, -1, to_logits(cache[hook_names.HOOK_POS_EMBED][0]))
    for layer in range(cfg.n_layers):
        block = model.blocks[layer]
        result = cache[hook_names.result(layer)][0].float()  # (p, h, d_model)
        bias = block.attn.b_o
        if cfg.sandwich_norm:  # attn_out = ln1_post(sum of heads + bias), linearised at its frozen scale
            post = block.ln1_post.w.float() / cache[f"blocks.{layer}.ln1_post.hook_scale"][0].float()[:, None]
            result = result * post
            bias = None if bias is None else bias.float() * post[:, 0]
        per_head = to_logits(result)  # (p, h)
        for head in range(cfg.n_heads):
            add("head", layer, head, per_head[:, head])
        if bias is not None:
            add("attn_bias", layer, -1, to_logits(bias.expand(tokens.shape[1], -1)))
        add("mlp", layer, -1, to_logits(cache[hook_names.mlp_out(layer)][0]))
    frame = pd.DataFrame(rows)
    cap = cfg.final_logit_softcap
    raw = logits[0].float()
    if cap:
        raw = torch.atanh((raw / cap).clamp(-1 + 1e-7, 1 - 1e-7)) * cap  # undo the cap for the comparison
    total = raw[:, answer] - raw[:, wrong]
    if getattr(model.ln_final, "b", None) is not None:
        total = total - float(model.ln_final.b.float() @ (model.W_U[:, answer] - model.W_U[:, wrong]).float())
    return frame, total.cpu()
