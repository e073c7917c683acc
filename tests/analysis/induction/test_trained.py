"""A tiny attention-only transformer trained here on repeated random tokens grows induction heads that the
detector finds (with a previous-token head feeding it through K-composition); its untrained twin has none.

Attention-only: our blocks always have an MLP, so its weights are zeroed and frozen (the MLP then adds 0).
The repeat length varies per batch so a purely positional "attend L-1 back" head cannot solve the task;
only prefix matching can. Training stops as soon as a head crosses the threshold (a few hundred Adam steps).
"""

from __future__ import annotations

import pytest
import torch

from interp.analysis.induction.circuit import k_composition
from interp.analysis.induction.scores import pattern_scores
from interp.analysis.induction.sequences import repeated_random_tokens
from interp.model.config import ModelConfig
from interp.model.transformer import Transformer

THRESHOLD = 0.4  # ARENA's induction-like line; diffuse attention over ~16-32 keys scores ~0.05
CFG = ModelConfig(name="tiny-attn-only", n_layers=2, d_model=64, n_heads=4, n_kv_heads=2, d_head=16, d_mlp=4,
                  d_vocab=64, n_ctx=64, bos_token_id=0)


def attention_only(seed: int) -> Transformer:
    model = Transformer(CFG).init_weights(seed, std=0.05)
    for block in model.blocks:
        for p in block.mlp.parameters():
            p.data.zero_()
            p.requires_grad_(False)
    return model


def batch(n: int, L: int, gen: torch.Generator) -> torch.Tensor:
    r = torch.stack([torch.randperm(CFG.d_vocab - 1, generator=gen)[:L] + 1 for _ in range(n)])
    return torch.cat([torch.zeros(n, 1, dtype=torch.long), r, r], 1)  # (n, 1 + 2L)


def train(model: Transformer, max_steps: int = 900) -> int:
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=5e-3)
    gen = torch.Generator().manual_seed(0)
    probe = repeated_random_tokens(model, 8, 16, seed=99)
    for step in range(1, max_steps + 1):
        L = int(torch.randint(6, 20, (1,), generator=gen))
        nll = model(batch(32, L, gen), return_type="loss", loss_per_token=True)  # (b, 2L)
        loss = nll[:, L + 1 :].mean()  # the second repeat: only copying helps
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 50 == 0:
            with torch.no_grad():
                if pattern_scores(model, probe, 16, keep_example=False).induction.max() > THRESHOLD + 0.2:
                    return step
    return max_steps


@pytest.mark.slow
def test_trained_attention_only_model_grows_induction_heads():
    torch.manual_seed(0)
    untrained = attention_only(seed=0).eval()
    model = attention_only(seed=0)
    train(model)
    model.eval()
    probe = repeated_random_tokens(model, 8, 16, seed=123)
    with torch.no_grad():
        before = pattern_scores(untrained, probe, 16, keep_example=False)
        after = pattern_scores(model, probe, 16, keep_example=False)
    assert before.induction.max() < THRESHOLD  # the untrained twin has no induction head
    assert after.induction.max() > THRESHOLD
    assert after.loss_second < before.loss_second - 1.0
    # the induction head sits in layer 1 (it needs a layer-0 previous-token head to compose with)
    top = int(after.induction.flatten().argmax())
    layer, head = divmod(top, CFG.n_heads)
    assert layer == 1
    assert after.prev_token[0].max() > THRESHOLD
    # and K-composition picks out that previous-token head among the layer-0 heads
    kc = k_composition(model, [(layer, head)])[0, 0]  # (n_heads,)
    assert int(kc.argmax()) == int(after.prev_token[0].argmax())
