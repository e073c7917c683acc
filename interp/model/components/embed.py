"""Token embedding, learned absolute positions (GPT-2 family) and the unembedding."""

from __future__ import annotations

import torch
from torch import nn

from interp.model.config import ModelConfig


class Embed(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.W_E = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))  # (vocab, d_model)
        self.scale = cfg.embed_scale  # Gemma multiplies by sqrt(d_model) so embeddings match the stream

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.W_E[tokens]  # (batch, pos, d_model)
        if self.scale != 1.0:
            # the reference casts the scale to the weights' dtype first; so do we (matters in bf16)
            x = x * torch.tensor(self.scale, dtype=x.dtype)
        return x


class PosEmbed(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.W_pos = nn.Parameter(torch.empty(cfg.n_ctx, cfg.d_model))  # (n_ctx, d_model)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        return self.W_pos[positions]  # (batch, pos, d_model)


class Unembed(nn.Module):
    """Logits = x W_U. With tied embeddings W_U is W_E^T, shared storage: an edit to one is an edit to both."""

    def __init__(self, cfg: ModelConfig, embed: Embed):
        super().__init__()
        self.tied = cfg.tie_embeddings
        self._embed = [embed]  # a list hides it from nn.Module so the weight is registered once
        if not self.tied:
            self.W_U_rows = nn.Parameter(torch.empty(cfg.d_vocab, cfg.d_model))  # (vocab, d_model)

    @property
    def weight(self) -> torch.Tensor:
        """(vocab, d_model), the layout F.linear wants."""
        return self._embed[0].W_E if self.tied else self.W_U_rows

    @property
    def W_U(self) -> torch.Tensor:
        return self.weight.T  # (d_model, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.linear(x, self.weight)  # (batch, pos, vocab)
