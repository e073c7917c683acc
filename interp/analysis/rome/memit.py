"""MEMIT: many facts in one update spread over several layers (Meng et al. 2023, "Mass-Editing Memory
in a Transformer", Algorithm 1).

1. For each request optimise z_i: the residual stream after the last edited layer L at the subject's
   last token, made to say the new target (the same loss as ROME's v*, with delta added to the output
   of ``blocks[L]``): z_i = h_L(average over contexts) + delta_i.
2. For each layer l in the range, in order: recompute the keys K_l (n, d_mlp; each request's key averaged
   over the contexts, as ROME's k*) and the current h_L, so earlier layers' updates count; spread the
   remaining residual R = (Z - h_L) / (layers left) and solve the least-squares update

       delta W_l = R^T K_l (lambda C_l + K_l^T K_l)^-1        (our storage: w_out += left @ right)

   which keeps W_l k ~ unchanged for typical keys (weighted by lambda C_l) while adding R to the
   new keys. Apply it before moving to the next layer.
With ``fit_bare_key`` (ours, MEMIT's default; see edit.py) each request adds a second row, the bare
prompt's own key with its own target residual (h_0 + delta_i), so a prompt that opens with the subject
is edited too. The result is one :class:`Edit` of rank n (2n with the bare rows) per layer.

``MEMITParams.update == "original"`` (``--reference``, ``MEMITParams.reference()``) is the original MEMIT, our
re-implementation of what the authors' memit_main.py / compute_z.py compute (not checked against their code):
z_i = h_L(bare prompt) + delta_i (compute_z's target_init), with MEMIT's own contexts (the bare prompt and 5 of
10 tokens), clamp 0.75 ||h|| and 25 steps; each layer's key averaged per context *type* (the bare
prompt's key weighs 1/2, the mean of the prefixed ones 1/2: compute_ks); the residual measured at the bare
prompt (memit_main's cur_zs).

Where a norm follows the MLP (Gemma's post-FFN norm, ``ln2_post``) W_out's output is normalised before it
joins the stream, so adding a layer's share of R to that output does not add it to the stream: on Gemma-3-270M
the norm's gain |g| / rms(m) (the Eiffel Tower prompt's subject token) is about 7 at layer 2 and 47 at layer 4,
and it saturates. With ``post_norm = "invert"`` (ours, the default) each row's target for W_out's output is
the change dm that makes norm(m + dm) = norm(m) + R_l, or the nearest output the norm can reach
(:func:`through_norm`); ``"linear"`` (the original's, whose models have no such norm) uses dm = R_l. Without
a post-MLP norm the two are the same.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from interp.analysis.rome.covariance import StatsCache, second_moment
from interp.analysis.rome.edit import Edit, LayerDelta, weight_hash
from interp.analysis.rome.hparams import MEMITParams, ROMEParams, default_memit_layers
from interp.analysis.rome.key import EditRequest, context_templates, prefixed, subject_states
from interp.analysis.rome.value import optimise_delta
from interp.errors import EditError
from interp.model import hook_names
from interp.progress import Progress


def _states(model, requests: Sequence[EditRequest], contexts: Sequence[str], layer: int, last: int,
            rows: str):
    """Per request, the key at `layer` and h at `last`: rows "mean" (the mean over contexts: (n, ...)),
    "mean+bare" (then the bare prompt's own rows: (2n, ...)) or "original" (MEMIT's compute_ks: the key averaged
    per context type, the bare prompt's one key weighing 1/2 against the prefixed ones' mean; h at the bare
    prompt, as memit_main's cur_zs)."""
    templates, subjects = [], []
    for r in requests:
        templates += prefixed(contexts, r.prompt)
        subjects += [r.subject] * len(contexts)
    names = [hook_names.mlp_post(layer), hook_names.resid_post(last)]
    out = subject_states(model, templates, subjects, names, last + 1)
    n, c = len(requests), len(contexts)
    keys, h = out[names[0]].reshape(n, c, -1), out[names[1]].reshape(n, c, -1)
    if rows == "original":  # contexts[0] is the bare "{}"
        return (keys[:, 0] + keys[:, 1:].mean(1)) / 2 if c > 1 else keys[:, 0], h[:, 0]
    if rows == "mean":
        return keys.mean(1), h.mean(1)
    return torch.cat([keys.mean(1), keys[:, 0]]), torch.cat([h.mean(1), h[:, 0]])


def through_norm(norm, m: torch.Tensor, resid: torch.Tensor) -> torch.Tensor:
    """The change dm of each row of m (rows, d) with norm(m + dm) = norm(m) + resid as nearly as the norm
    allows, in float64. An identity gives resid. An RMS norm g * x / sqrt(mean(x^2) + eps) only outputs g * u
    with |u| fixed (rho^2 = d ms / (ms + eps) when x keeps m's mean square ms), so u is the point of that sphere
    whose image is nearest the target y: u = g y / (g^2 + lam), lam found by bisection so |u| = rho (the
    trust-region solution). Dimensions where g = 0 reach nothing; they take what is left of |u|, along m."""
    from interp.model.components.norm import RMSNorm

    if isinstance(norm, torch.nn.Identity):
        return resid
    if not isinstance(norm, RMSNorm):
        raise EditError(f"MEMIT's post_norm='invert' handles RMS norms only, not {type(norm).__name__}; "
                        "use post_norm='linear'.")
    m, resid = m.double(), resid.double()
    g = norm.w.detach().double().to(m.device)  # (d,)
    with torch.no_grad():
        y = norm(m).double() + resid  # (rows, d): the outputs wanted
    ms = m.pow(2).mean(-1, keepdim=True)  # (rows, 1)
    rho2 = m.shape[-1] * ms / (ms + norm.eps)
    gy, g2 = g * y, g * g

    def size2(lam):  # |u(lam)|^2, decreasing in lam above -min(g^2)
        return (gy / (g2 + lam)).pow(2).sum(-1, keepdim=True)

    zero = g2 == 0
    # g^2 + lam must stay positive, where g = 0 too
    lo = torch.full_like(ms, 1e-300 if zero.any() else -float(g2.min()))
    hi = gy.norm(dim=-1, keepdim=True) / rho2.sqrt() + 1.0
    for _ in range(200):
        mid = (lo + hi) / 2
        big = size2(mid) > rho2
        lo, hi = torch.where(big, mid, lo), torch.where(big, hi, mid)
    u = gy / (g2 + hi)
    if zero.any():  # what |u| lacks goes to the dimensions the norm ignores, along m there
        lack = (rho2 - u.pow(2).sum(-1, keepdim=True)).clamp_min(0)
        fill = torch.where(zero, m, torch.zeros_like(m))
        fill = torch.where(fill.norm(dim=-1, keepdim=True) > 0, fill, zero.to(m).expand_as(m))
        u = u + fill / fill.norm(dim=-1, keepdim=True) * lack.sqrt()
    return u * (ms + norm.eps).sqrt() - m  # x = u * sqrt(ms + eps) has mean square ms: norm(x) = g u


def layer_update(keys: torch.Tensor, resid: torch.Tensor, c: torch.Tensor,
                 lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """MEMIT's least-squares update of one layer, in float64 on the CPU: left (d_model, n) = R^T and right
    (n, d_mlp) = K (lambda C + K^T K)^-1, so delta W = left @ right moves each key k_i by about R_i (exactly as
    lambda -> 0 when the keys are independent) and typical keys little. keys (n, d_mlp), resid (n, d_model)."""
    k = keys.double().cpu()
    a = lam * c.double() + k.T @ k  # (d_mlp, d_mlp)
    right = torch.linalg.solve(a, k.T).T  # (n, d_mlp); A is symmetric
    return resid.double().cpu().T, right


def memit_edit(model, requests: Sequence[EditRequest], params: MEMITParams = MEMITParams(), apply: bool = True,
               progress: Progress | None = None, stats: StatsCache | None = None, solve=None) -> Edit:
    """Compute (and by default apply) one MEMIT edit for all `requests`. `solve(layer, keys, resid, c)` ->
    (left, right) replaces MEMIT's least-squares layer update (AlphaEdit's projected one: alphaedit.py)."""
    requests = list(requests)
    if not requests:
        raise EditError("MEMIT needs at least one request.")
    layers = _edit_layers(model, params)
    rp = params.rome
    stats = stats or StatsCache()
    covs = {l: second_moment(model, l, rp.stats, progress, stats) for l in layers}
    contexts = context_templates(model, rp.context_lengths, rp.context_seed, stats)
    rows = "original" if params.update == "original" else ("mean+bare" if rp.fit_bare_key else "mean")
    z, infos = _target_residuals(model, requests, contexts, layers, rows, rp)
    deltas = _spread(model, requests, contexts, layers, rows, z, covs, params, solve)
    info = {"layers": layers, "lambda": params.lam, "update": params.update, "z": infos}
    edit = Edit(model.cfg.name, "memit", deltas, requests, info)
    return edit.apply(model, check=False) if apply else edit


def _edit_layers(model, params: MEMITParams) -> list[int]:
    """The layers to edit, in order: params.layers, or the model's default range."""
    layers = sorted(params.layers or default_memit_layers(model.cfg.name, model.cfg.n_layers))
    if layers[0] < 0 or layers[-1] >= model.cfg.n_layers:
        raise EditError(f"Layers {layers} do not all exist in {model.cfg.name} (0-{model.cfg.n_layers - 1}).")
    return layers


def _target_residuals(model, requests: list[EditRequest], contexts: Sequence[str], layers: list[int], rows: str,
                      rp: ROMEParams) -> tuple[torch.Tensor, list[dict]]:
    """Step 1: the target residual z at the last layer of every row (rows, d_model), and each request's
    optimisation record."""
    last = layers[-1]
    original = rows == "original"
    h0 = None if original else _states(model, requests, contexts, layers[0], last, rows)[1]
    deltas_z, infos, base = [], [], []
    for i, r in enumerate(requests):
        # the original: z = h_L at the bare prompt + delta (compute_z's target_init); ours: from the mean h_L
        val = optimise_delta(model, r, contexts, last, model.blocks[last], None if original else h0[i], rp)
        deltas_z.append(val.delta)
        base.append(val.v0)
        infos.append({"steps": val.steps, "nll_before": val.nll_before, "nll_after": val.nll_after})
    d = torch.stack(deltas_z)  # (n, d_model)
    if original:
        z = torch.stack(base).to(d) + d
    else:
        z = h0 + (torch.cat([d, d]) if rows == "mean+bare" else d)  # the target residual of every row
    return z, infos


def _spread(model, requests: list[EditRequest], contexts: Sequence[str], layers: list[int], rows: str,
            z: torch.Tensor, covs: dict, params: MEMITParams, solve) -> list[LayerDelta]:
    """Step 2: spread the change over the layers, in order, recomputing keys after each update. Each layer's
    update is applied while the later layers are computed; every edited matrix is put back at the end."""
    last = layers[-1]
    deltas: list[LayerDelta] = []
    originals = {l: model.blocks[l].mlp.w_out.detach().clone() for l in layers}
    try:
        for j, layer in enumerate(layers):
            keys, h = _states(model, requests, contexts, layer, last, rows)  # (rows, d_mlp), (rows, d_model)
            resid = (z - h) / (len(layers) - j)  # (rows, d_model)
            ld = _layer_delta(model, layer, keys, resid, covs[layer], params, solve)
            w = model.blocks[layer].mlp.w_out
            with torch.no_grad():
                w.add_(ld.matrix.to(w.dtype))
            deltas.append(ld)
    finally:
        with torch.no_grad():
            for l, o in originals.items():
                model.blocks[l].mlp.w_out.copy_(o)
    return deltas


def _layer_delta(model, layer: int, keys: torch.Tensor, resid: torch.Tensor, c: torch.Tensor,
                 params: MEMITParams, solve) -> LayerDelta:
    """One layer's update moving its keys' outputs by resid (through a post-MLP norm with post_norm="invert")."""
    w = model.blocks[layer].mlp.w_out
    norm = model.blocks[layer].ln2_post
    if params.post_norm == "invert" and not isinstance(norm, torch.nn.Identity):
        mlp = model.blocks[layer].mlp  # W_out's output for these keys, then the change the norm needs
        m = keys.to(w) @ w.detach().T + (0 if mlp.b_out is None else mlp.b_out.detach())
        resid = through_norm(norm, m, resid.to(m))
    if solve is None:
        left, right = layer_update(keys, resid, c, params.lam)
    else:
        left, right = solve(layer, keys, resid, c)
    return LayerDelta(layer, left.float().to(w.device), right.float().to(w.device), weight_hash(w))
