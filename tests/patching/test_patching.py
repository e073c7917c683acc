"""The circuit tools against slow, obviously right references on tiny random models of every family."""

from __future__ import annotations

import pytest
import torch

from interp.model import hook_names as hn
from interp.patching import activation_patch, attribution_patch, direct_logit_attribution, logit_diff, path_patch
from interp.patching.activation import KINDS, _write
from tests.tiny import TINY, tiny_model

P = 7


def _pair(seed=0, n=2):
    g = torch.Generator().manual_seed(seed)
    clean = torch.randint(0, 64, (n, P), generator=g)
    corrupted = clean.clone()
    corrupted[:, 2] = torch.randint(0, 64, (n,), generator=g)  # one token differs, as in a subject swap
    return clean, corrupted


def _metric():
    return logit_diff(torch.tensor([5, 9]), torch.tensor([11, 3]))


@pytest.mark.parametrize("family", sorted(TINY))
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_activation_patching_equals_one_hook_at_a_time(family, kind):
    model = tiny_model(family)
    clean, corrupted = _pair()
    metric = _metric()
    got = activation_patch(model, clean, corrupted, metric, kind=kind, rows_per_forward=6)
    name_of = KINDS[kind][0]
    _, source = model.run_with_cache(clean, names_filter=[name_of(l) for l in range(model.cfg.n_layers)])
    grid = got.scores
    for layer in range(model.cfg.n_layers):
        for idx in torch.cartesian_prod(*(torch.arange(s) for s in grid.shape[1:-1])).reshape(-1, grid.dim() - 2):
            cell = tuple(int(i) for i in idx)

            def patch(act, hook, cell=cell, layer=layer):
                act = act.clone()
                _write(act, slice(None), source[name_of(layer)], kind, cell)
                return act

            with torch.no_grad(), model.hooks(fwd_hooks=[(name_of(layer), patch)]):
                expected = metric(model(corrupted))
            torch.testing.assert_close(grid[(layer,) + cell], expected, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        torch.testing.assert_close(got.clean, metric(model(clean)))
        torch.testing.assert_close(got.corrupted, metric(model(corrupted)))


def test_noising_restores_nothing_where_the_runs_agree():
    model = tiny_model("llama")
    clean, corrupted = _pair()
    res = activation_patch(model, clean, corrupted, _metric(), kind="resid", direction="noise")
    # before the differing token (pos 2), clean and corrupted streams are equal: patching changes nothing
    torch.testing.assert_close(res.scores[:, :2], res.clean.expand(model.cfg.n_layers, 2, -1), atol=1e-5, rtol=1e-5)
    assert (res.scores[0, 2] - res.clean).abs().max() > 1e-3
    frame = res.to_frame()
    assert set(frame.columns) >= {"layer", "pos", "pair", "score", "normalized"}
    assert len(frame) == res.scores.numel()


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_attribution_is_the_directional_derivative_of_patching(kind):
    """(a' - a) . grad equals d/dt metric(a + t (a' - a)) at t = 0, measured by a small finite step."""
    model = tiny_model("llama").double()
    clean, corrupted = _pair(n=1)
    metric = logit_diff(5, 11)
    attr = attribution_patch(model, clean, corrupted, metric, kind=kind)
    with torch.no_grad():
        base = metric(model(corrupted))  # in double: the finite step needs its precision
        torch.testing.assert_close(attr.clean.double(), metric(model(clean)))
        torch.testing.assert_close(attr.corrupted.double(), base)
    name_of, layer, t = KINDS[kind][0], 1, 1e-6
    _, source = model.run_with_cache(clean, names_filter=[name_of(layer)])
    _, target = model.run_with_cache(corrupted, names_filter=[name_of(layer)])
    cell = (3,) if kind != "heads_pos" else (3, 1)
    if kind == "heads":
        cell = (1,)

    def step(act, hook):
        act = act.clone()
        moved = target[name_of(layer)] + t * (source[name_of(layer)] - target[name_of(layer)])
        _write(act, slice(None), moved, kind, cell)
        return act

    with torch.no_grad(), model.hooks(fwd_hooks=[(name_of(layer), step)]):
        slope = (metric(model(corrupted)) - base) / t
    torch.testing.assert_close(attr.scores[(layer,) + cell] - attr.corrupted, slope.float(), atol=1e-3, rtol=1e-3)


def _path_reference(model, clean, corrupted, metric, sender, receiver):
    """Path patching written out for one sender and one head receiver, full forwards, no batching."""
    n_layers = model.cfg.n_layers
    _, c = model.run_with_cache(clean, names_filter=[hn.z(l) for l in range(n_layers)])
    _, x = model.run_with_cache(corrupted, names_filter=[hn.z(l) for l in range(n_layers)])
    layer, head, which = receiver

    def freeze(act, hook):
        z = c[hook.name].clone()
        if hook.name == hn.z(sender[0]):
            z[:, :, sender[1]] = x[hook.name][:, :, sender[1]]
        return z

    seen = {}
    with torch.no_grad(), model.hooks(fwd_hooks=[(hn.z(l), freeze) for l in range(n_layers)] +
                                      [(hn.qkv_input(layer, which), lambda a, hook: seen.update(v=a.clone()))]):
        model(clean)
    index = head if which == "q" else head // model.cfg.group_size

    def put(act, hook):
        act = act.clone()
        act[:, :, index] = seen["v"][:, :, index]
        return act

    with torch.no_grad(), model.hooks(fwd_hooks=[(hn.qkv_input(layer, which), put)]):
        return metric(model(clean))


@pytest.mark.parametrize("family", sorted(TINY))
@pytest.mark.parametrize("which", ["q", "k", "v"])
def test_path_patching_equals_the_written_out_algorithm(family, which):
    model = tiny_model(family, n_layers=3)
    clean, corrupted = _pair()
    metric = _metric()
    senders = [(0, h) for h in range(model.cfg.n_heads)] + [(2, 0)]
    got = path_patch(model, clean, corrupted, metric, senders, receivers=[(2, 1, which)], rows_per_forward=4)
    for i, sender in enumerate(senders[:-1]):
        expected = _path_reference(model, clean, corrupted, metric, sender, (2, 1, which))
        torch.testing.assert_close(got.scores[i], expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(got.scores[-1], got.clean, atol=1e-5, rtol=1e-5)  # a later head cannot send
    assert got.labels["sender"][0] == "L0H0"


def test_path_to_logits_with_everything_frozen_is_the_direct_effect():
    model = tiny_model("llama", n_layers=3)
    clean, corrupted = _pair()
    metric = _metric()
    got = path_patch(model, clean, corrupted, metric, [(1, 2), ("mlp", 0)], "logits", freeze_mlps=True)
    names = [hn.z(1), hn.mlp_out(0), hn.resid_post(2)]
    _, c = model.run_with_cache(clean, names_filter=names)
    _, x = model.run_with_cache(corrupted, names_filter=names)
    delta_head = (x[hn.z(1)][:, :, 2] - c[hn.z(1)][:, :, 2]) @ model.blocks[1].attn.W_O[2]
    delta_mlp = x[hn.mlp_out(0)] - c[hn.mlp_out(0)]
    with torch.no_grad():
        for i, delta in enumerate((delta_head, delta_mlp)):
            expected = metric(model.logits_from_resid(c[hn.resid_post(2)] + delta))
            torch.testing.assert_close(got.scores[i], expected, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("family", sorted(TINY))
def test_direct_logit_attribution_adds_up(family):
    model = tiny_model(family)
    tokens = _pair()[0][0]
    frame, total = direct_logit_attribution(model, tokens, 5, 11)
    by_pos = frame.groupby("pos")["contribution"].sum()
    torch.testing.assert_close(torch.tensor(by_pos.values, dtype=torch.float32), total, atol=1e-4, rtol=1e-4)
    assert set(frame.component) >= {"embed", "head", "mlp"}
    assert len(frame[frame.component == "head"]) == model.cfg.n_layers * model.cfg.n_heads * P


def test_bad_senders_and_receivers_are_refused():
    model = tiny_model("llama")
    clean, corrupted = _pair()
    with pytest.raises(ValueError, match="sender"):
        path_patch(model, clean, corrupted, _metric(), [(9, 0)])
    with pytest.raises(ValueError, match="receiver"):
        path_patch(model, clean, corrupted, _metric(), [(0, 0)], [(1, 0, "x")])
    with pytest.raises(ValueError, match="one shape"):
        activation_patch(model, clean, corrupted[:, :5], _metric())
