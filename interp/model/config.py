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


# -- TransformerLens' view ----------------------------------------------------------------------------------
_TL_ACT = {"silu": "silu", "gelu": "gelu", "gelu_tanh": "gelu_new", "relu": "relu"}
# TL's runtime switches: interp computes hook_result / the per-head inputs whenever they are hooked or named in
# run_with_cache's names_filter, so these stay False, and setting one says so instead of silently doing nothing
_TL_SWITCHES = ("use_attn_result", "use_split_qkv_input", "use_attn_in", "use_hook_mlp_in")


def _tl_config_base():
    from transformer_lens.config import TransformerLensConfig

    return TransformerLensConfig


class TLConfig(_tl_config_base()):
    """`model.cfg`: a real `transformer_lens.config.TransformerLensConfig` derived from a `ModelConfig`.

    TL's names carry TL's meanings (`n_key_value_heads`, `normalization_type` "RMS"/"LN",
    `positional_embedding_type` "rotary"/"standard", `act_fn`, `eps`, `attn_scale` = the divisor of the
    scores, `device`/`dtype` = where the model's weights are now), so TL's model-agnostic tools run on interp's
    model. Every other name reads through to the `ModelConfig` (`cfg.n_kv_heads`, `cfg.norm`, `cfg.replace`,
    ...), which `to_dict`, `==` and `hash` also use, so fingerprints and caches keyed on it do not move. Like
    the `ModelConfig` it is read-only (build a new model from `cfg.replace(...)`), except TL's idiom
    `cfg.default_prepend_bos = True`, which switches the model to TL's BOS rule.
    """

    def __init__(self, config: ModelConfig, model=None):
        import weakref

        if isinstance(config, TLConfig):
            config = config.config
        d = self.__dict__
        d["config"], d["_model"], d["_frozen"] = config, weakref.ref(model) if model is not None else None, False
        local = "local" in config.layer_types
        # interp.model.processing records TL's weight processing here (fold_ln: the norms are weightless)
        folded = bool((config.extra or {}).get("weight_processing", {}).get("fold_ln", False))
        super().__init__(
            d_model=config.d_model, d_head=config.d_head, n_layers=config.n_layers, n_ctx=config.n_ctx,
            n_heads=config.n_heads, d_mlp=config.d_mlp, d_vocab=config.d_vocab,
            default_prepend_bos=config.default_prepend_bos,
            positional_embedding_type="rotary" if config.positional == "rope" else "standard",
            n_key_value_heads=config.n_kv_heads if config.n_kv_heads != config.n_heads else None,
            gated_mlp=config.gated_mlp, uses_rms_norm=config.norm == "rms", eps=config.norm_eps,
            act_fn=_TL_ACT[config.act], final_rms=config.norm == "rms", layer_norm_folding=folded,
            # HookedTransformer's names for norms whose weights were folded into their readers
            normalization_type=("RMS" if config.norm == "rms" else "LN") + ("Pre" if folded else ""),
        )
        # HookedTransformerConfig's names that notebooks and TL's tools read (TransformerBridgeConfig has them too)
        self.model_name = config.name
        self.d_vocab_out = config.d_vocab
        self.n_params = config.n_params
        self.rotary_dim = config.rot_dim if config.positional == "rope" else None
        self.rotary_base = config.rope_base
        self.parallel_attn_mlp = config.parallel_residual
        self.use_attn_scale, self.attn_scale = True, config.scale
        self.use_qk_norm = config.qk_norm
        self.use_local_attn, self.window_size = local, config.sliding_window if local else None
        self.attn_types = list(config.layer_types) if local else None
        self.use_normalization_before_and_after = config.sandwich_norm
        self.attn_scores_soft_cap = config.attn_softcap or -1.0
        self.output_logits_soft_cap = config.final_logit_softcap or -1.0
        self.tie_word_embeddings = config.tie_embeddings
        self.rmsnorm_uses_offset = False  # interp stores Gemma's effective scale 1 + w in the norm weight
        self.use_hook_tokens, self.post_embedding_ln, self.attention_dir = False, False, "causal"
        self.use_attn_in = self.use_hook_mlp_in = False
        d["_frozen"] = True

    # -- live values: where the model's weights are now --------------------------------------------------------
    def _live(self, attr: str):
        """The model's `attr` now, or None before its weights exist (or without a model)."""
        ref = self.__dict__.get("_model")
        model = ref() if ref is not None else None
        try:
            return getattr(model, attr) if model is not None else None
        except AttributeError:  # nn.Module's error while the model is still being built
            return None

    @property
    def device(self) -> str:
        device = self._live("device")
        return str(device) if device is not None else self.__dict__.get("_device", "cpu")

    @device.setter
    def device(self, value) -> None:
        self.__dict__["_device"] = str(value) if value is not None else "cpu"

    @property
    def dtype(self):
        dtype = self._live("dtype")
        return dtype if dtype is not None else self.__dict__.get("_dtype")

    @dtype.setter
    def dtype(self, value) -> None:
        self.__dict__["_dtype"] = value

    @property
    def tokenizer_prepends_bos(self) -> bool:
        """Whether the model's tokenizer puts BOS in front by itself (TL's name; SmolLM2's does not)."""
        tokenizer = self._live("tokenizer")
        if tokenizer is None or self.config.bos_token_id is None:
            return False
        ids = tokenizer("a")["input_ids"]
        return bool(ids) and ids[0] == self.config.bos_token_id

    # -- read-only, the ModelConfig behind it ---------------------------------------------------------------
    def __setattr__(self, name: str, value) -> None:
        if not self.__dict__.get("_frozen") or (name in _TL_SWITCHES and value is False):
            return object.__setattr__(self, name, value)
        if name == "default_prepend_bos":  # TL's idiom for choosing the BOS rule; the ModelConfig follows
            self.__dict__["config"] = self.config.replace(default_prepend_bos=bool(value))
            return object.__setattr__(self, name, bool(value))
        if name in _TL_SWITCHES:
            raise dataclasses.FrozenInstanceError(
                f"cfg.{name} stays False: interp computes that hook whenever it is hooked or named in "
                f"run_with_cache's names_filter, and cache.stack_head_results builds head results from hook_z."
            )
        raise dataclasses.FrozenInstanceError(
            f"cfg.{name} cannot be set: the config is read-only; build a model from cfg.replace({name}=...)."
        )

    def __getattr__(self, name: str):
        config = self.__dict__.get("config")  # absent while copy/pickle rebuild the object
        if config is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(config, name)

    def __eq__(self, other) -> bool:
        other = other.config if isinstance(other, TLConfig) else other
        return self.config == other

    def __hash__(self) -> int:
        return hash(self.config)

    def __reduce__(self):
        return TLConfig, (self.config,)

    def to_dict(self) -> dict:
        """interp's config as plain data (what fingerprints and saved models record), not TL's fields."""
        return self.config.to_dict()

    def tl_dict(self) -> dict:
        """TL's fields and names, as `TransformerLensConfig.to_dict` would give them."""
        names = [f.name for f in dataclasses.fields(_tl_config_base())] + [
            k for k in self.__dict__ if not k.startswith("_") and k != "config"]
        return {name: getattr(self, name) for name in dict.fromkeys(names)}

    def __repr__(self) -> str:
        return f"TLConfig({self.config!r})"
