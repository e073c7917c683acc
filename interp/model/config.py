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
    architecture: str = "custom"  # informational only ("llama", "qwen2", "gpt_neox", ...); never branched on
    # -- normalisation --------------------------------------------------------------------------------------
    norm: NormKind = "rms"
    norm_eps: float = 1e-5
    norm_cast_first: bool = False  # RMSNorm: round x/rms to the model dtype before the weight (LLaMA) or not (Gemma)
    pre_norm: bool = True  # a norm on each sub-block's input (False: OLMo-2, which norms only the outputs)
    sandwich_norm: bool = False  # a norm on each sub-block's output before it joins the residual (Gemma, OLMo-2)
    qk_norm: bool = False  # RMSNorm on queries and keys before RoPE (Gemma-3, Qwen3, OLMo-2)
    qk_norm_per_head: bool = True  # over each head's d_head (Gemma-3, Qwen3), or over all heads at once (OLMo-2)
    # -- positions ----------------------------------------------------------------------------------------
    positional: PosKind = "rope"
    rope_base: float = 10_000.0
    rope_base_local: float | None = None  # RoPE base of sliding-window layers (Gemma-3: 1e4)
    # transformers' rope_parameters beyond the base ({"rope_type": "llama3", "factor": 8.0, ...}); None: plain
    rope_scaling: dict | None = field(default=None, hash=False)
    rope_scaling_local: dict | None = field(default=None, hash=False)  # the same for sliding-window layers
    # generation drops its KV cache and re-reads the whole sequence once it reaches this length (Phi-3 in
    # transformers does so when LongRoPE switches to its long factors, so no key keeps its short rotation)
    reencode_at: int | None = None
    rotary_dim: int | None = None  # rotate only the first rotary_dim dims of each head (GPT-NeoX); None: all
    # -- blocks -------------------------------------------------------------------------------------------
    act: ActKind = "silu"
    gated_mlp: bool = True  # SwiGLU / GeGLU: W_out (act(x W_gate) * (x W_in))
    parallel_residual: bool = False  # attention and MLP both read resid_pre (GPT-NeoX / Pythia)
    embed_scale: float = 1.0  # multiply embeddings (Gemma: sqrt(d_model))
    attn_scale: float | None = None  # scores are multiplied by attn_scale ** -0.5; None: d_head
    attn_softcap: float | None = None  # scores = cap * tanh(scores / cap) before the mask (Gemma-2)
    final_logit_softcap: float | None = None  # logits = cap * tanh(logits / cap) (Gemma-2)
    sliding_window: int | None = None
    layer_types: tuple[LayerKind, ...] | None = None  # per layer; None: all global
    qkv_bias: bool = False  # biases on Q, K, V (GPT-2, Qwen2, GPT-NeoX)
    out_bias: bool = False  # bias on the attention output projection (GPT-2, GPT-NeoX)
    mlp_bias: bool = False  # biases on the MLP projections (GPT-2, GPT-NeoX)
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
        if self.positional == "rope" and self.rot_dim % 2:
            raise ValueError(f"RoPE needs an even number of rotated dimensions, got {self.rot_dim}")
        if self.rotary_dim is not None and not 0 < self.rotary_dim <= self.d_head:
            raise ValueError(f"rotary_dim = {self.rotary_dim} must lie in 1..d_head = {self.d_head}")

    # -- derived -------------------------------------------------------------------------------------
    @property
    def group_size(self) -> int:
        """Query heads per key/value head (1 without GQA)."""
        return self.n_heads // self.n_kv_heads

    @property
    def scale(self) -> float:
        """Scores are divided by this (sqrt(d_head) unless the family says otherwise)."""
        return (self.attn_scale if self.attn_scale is not None else self.d_head) ** 0.5

    @property
    def scaling(self) -> float:
        """1 / scale, the factor the references multiply scores by (multiplying rounds as they do)."""
        return (self.attn_scale if self.attn_scale is not None else self.d_head) ** -0.5

    @property
    def rot_dim(self) -> int:
        """How many leading dimensions of each head RoPE rotates."""
        return self.rotary_dim if self.rotary_dim is not None else self.d_head

    def rope_scaling_for(self, layer: int) -> dict | None:
        if self.is_local(layer) and self.rope_base_local is not None:
            return self.rope_scaling_local
        return self.rope_scaling

    def is_local(self, layer: int) -> bool:
        return self.layer_types[layer] == "local"

    def rope_base_for(self, layer: int) -> float:
        if self.is_local(layer) and self.rope_base_local is not None:
            return self.rope_base_local
        return self.rope_base

    @property
    def n_params(self) -> int:
        attn = self.d_model * self.d_head * (2 * self.n_heads + 2 * self.n_kv_heads)  # biases and norms left out
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
