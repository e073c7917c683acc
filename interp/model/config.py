"""One frozen dataclass describes a model; everything else is derived from it.

Architecture differences (norm kind, positional scheme, MLP activation, sandwich norms, sliding-window
layers) are fields here and select components at construction time, so no component ever branches on a
model's name.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Literal

NormKind = Literal["rms", "layer"]
PosKind = Literal["rope", "learned"]
ActKind = Literal["silu", "gelu", "gelu_tanh", "relu"]
LayerKind = Literal["global", "local"]


@dataclass(frozen=True)
class ModelConfig:
    """Sizes and architectural choices of a decoder-only transformer.

    Glossary: d_model = residual width, n_heads query heads of width d_head, n_kv_heads key/value heads
    (grouped-query attention when fewer than n_heads), d_mlp = FFN hidden width, d_vocab = vocabulary.
    """

    n_layers: int
    d_model: int
    n_heads: int
    d_head: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    n_kv_heads: int | None = None  # None: plain multi-head attention (= n_heads)
    name: str = "custom"
    architecture: str = "custom"  # informational only ("llama", "gemma3", "gpt2"); never branched on
    norm: NormKind = "rms"
    norm_eps: float = 1e-5
    positional: PosKind = "rope"
    rope_base: float = 10_000.0
    rope_base_local: float | None = None  # RoPE base of sliding-window layers (Gemma-3: 1e4)
    act: ActKind = "silu"
    gated_mlp: bool = True  # SwiGLU / GeGLU: W_out (act(x W_gate) * (x W_in))
    qk_norm: bool = False  # RMSNorm over d_head on queries and keys (Gemma-3)
    sandwich_norm: bool = False  # extra norms on each sub-block's output before it joins the residual
    embed_scale: float = 1.0  # multiply embeddings (Gemma: sqrt(d_model))
    attn_scale: float | None = None  # scores are divided by this; None: sqrt(d_head)
    final_logit_softcap: float | None = None  # logits = cap * tanh(logits / cap) (Gemma-2)
    sliding_window: int | None = None
    layer_types: tuple[LayerKind, ...] | None = None  # per layer; None: all global
    bias: bool = False  # biases on Q, K, V, O and the MLP (GPT-2 style)
    tie_embeddings: bool = True
    bos_token_id: int | None = None
    eos_token_id: int | None = None
    pad_token_id: int | None = None
    default_prepend_bos: bool = True
    extra: dict = field(default_factory=dict, compare=False)

    def __post_init__(self) -> None:
        if self.n_kv_heads is None:
            object.__setattr__(self, "n_kv_heads", self.n_heads)
        if self.layer_types is None:
            object.__setattr__(self, "layer_types", ("global",) * self.n_layers)
        else:
            object.__setattr__(self, "layer_types", tuple(self.layer_types))
        for name in ("n_layers", "d_model", "n_heads", "d_head", "d_mlp", "d_vocab", "n_ctx"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} = {getattr(self, name)} must be positive")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_kv_heads = {self.n_kv_heads} must divide n_heads = {self.n_heads}")
        if len(self.layer_types) != self.n_layers:
            raise ValueError(f"layer_types has {len(self.layer_types)} entries for n_layers = {self.n_layers}")
        if "local" in self.layer_types and not self.sliding_window:
            raise ValueError("local (sliding-window) layers need sliding_window to be set")
        if self.positional == "rope" and self.d_head % 2:
            raise ValueError(f"RoPE needs an even d_head, got {self.d_head}")

    # -- derived -------------------------------------------------------------------------------------
    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1 without GQA)."""
        return self.n_heads // self.n_kv_heads

    @property
    def scale(self) -> float:
        return (self.attn_scale if self.attn_scale is not None else self.d_head) ** 0.5

    def is_local(self, layer: int) -> bool:
        return self.layer_types[layer] == "local"

    def rope_base_for(self, layer: int) -> float:
        if self.is_local(layer) and self.rope_base_local is not None:
            return self.rope_base_local
        return self.rope_base

    @property
    def n_params(self) -> int:
        attn = self.d_model * self.d_head * (2 * self.n_heads + 2 * self.n_kv_heads)
        mlp = self.d_model * self.d_mlp * (3 if self.gated_mlp else 2)
        emb = self.d_vocab * self.d_model * (1 if self.tie_embeddings else 2)
        return self.n_layers * (attn + mlp) + emb

    # -- (de)serialisation ------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def replace(self, **changes) -> ModelConfig:
        return dataclasses.replace(self, **changes)
