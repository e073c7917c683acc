"""Hugging Face checkpoint tensors -> interp's parameter names (GGUF names live in gguf.py).

Traps, each caught only by the parity tests against `transformers`:
- Gemma's RMSNorm computes x * (1 + w). Hugging Face stores w; we keep 1 + w.
- Fused projections: Phi-3 stacks [q; k; v] and [gate; up]; GPT-NeoX interleaves per head
  ([q_h; k_h; v_h] for each head h); GPT-2's Conv1D stores weights (in, out).

A Hugging Face checkpoint is read one tensor at a time (`Reader`), each converted to its final dtype and
device before the next is read, and every tensor must be consumed: `hf_tensors` names the first left over.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from interp.errors import CorruptModelError
from interp.model.config import ModelConfig


def _expected_names(cfg: ModelConfig) -> set[str]:
    from interp.model.transformer import Transformer

    with torch.device("meta"):
        return set(Transformer(cfg).state_dict().keys())


class SafetensorsFile:
    """One .safetensors file read with plain reads, one tensor at a time (no memory map: a map's touched
    pages would count against the process until the file is closed, doubling a load's peak memory)."""

    DTYPES = {"F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
              "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8,
              "BOOL": torch.bool}

    def __init__(self, path):
        import json

        self.path = path
        try:
            with open(path, "rb") as f:
                n = int.from_bytes(f.read(8), "little")
                if not 0 < n < 1 << 30:
                    raise ValueError("header length out of range")
                header = json.loads(f.read(n))
        except (OSError, ValueError) as exc:
            raise CorruptModelError(f"{path} cannot be read as safetensors (truncated or corrupt): {exc}.") from exc
        self.data_start = 8 + n
        header.pop("__metadata__", None)
        self.entries = header

    def keys(self):
        return self.entries.keys()

    def get_tensor(self, name: str) -> torch.Tensor:
        entry = self.entries[name]
        start, stop = entry["data_offsets"]
        dtype = self.DTYPES.get(entry["dtype"])
        if dtype is None:
            raise CorruptModelError(f"{self.path}: tensor {name} has dtype {entry['dtype']}, which interp cannot read.")
        buf = torch.empty(stop - start, dtype=torch.uint8)
        with open(self.path, "rb") as f:
            f.seek(self.data_start + start)
            if f.readinto(memoryview(buf.numpy())) != stop - start:
                raise CorruptModelError(f"{self.path} is truncated: tensor {name} is cut short.")
        return buf.view(dtype).reshape(entry["shape"])


class Reader:
    """Reads named tensors from safetensors files one at a time and remembers which were read.

    The last tensor read is kept, so the three slices of a fused QKV matrix cost one read."""

    # Buffers some checkpoints carry that are recomputed rather than loaded (RoPE tables, causal masks).
    IGNORED_SUFFIXES = (".rotary_emb.inv_freq", ".attn.bias", ".attn.masked_bias", ".attention.bias",
                        ".attention.masked_bias")

    def __init__(self, files: list, prefixes: tuple[str, ...] = ("",)):
        self.where: dict[str, SafetensorsFile] = {}
        for f in files:
            handle = SafetensorsFile(f)
            for name in handle.keys():
                self.where[name] = handle
        self.prefixes = prefixes
        self.used: set[str] = set()
        self._last: tuple[str, torch.Tensor] | None = None

    def find(self, name: str) -> str | None:
        for prefix in self.prefixes:
            for candidate in (prefix + name, prefix + name.removeprefix("model.")):
                if candidate in self.where:
                    return candidate
        return None

    def has(self, name: str) -> bool:
        return self.find(name) is not None

    def __call__(self, name: str) -> torch.Tensor:
        full = self.find(name)
        if full is None:
            raise CorruptModelError(f"The checkpoint lacks the tensor {name}.")
        self.used.add(full)
        if self._last is None or self._last[0] != full:
            self._last = None  # let the previous tensor go before the next is read
            self._last = (full, self.where[full].get_tensor(full))
        return self._last[1]

    def mark_used(self, name: str) -> None:
        if (full := self.find(name)) is not None:
            self.used.add(full)

    def leftover(self, ignore_prefixes: tuple[str, ...] = ()) -> list[str]:
        return sorted(n for n in self.where if n not in self.used and not n.endswith(self.IGNORED_SUFFIXES)
                      and not n.startswith(ignore_prefixes))


Source = Callable[[Reader], torch.Tensor]


def _rows(name: str, start: int, stop: int) -> Source:
    return lambda read: read(name)[start:stop]


def _neox_qkv(name: str, which: int, n_heads: int, d_head: int) -> Source:
    """GPT-NeoX's fused query_key_value: per head h, rows [q_h; k_h; v_h] (3 d_head each head)."""

    def get(read: Reader) -> torch.Tensor:
        t = read(name)
        return t.view(n_heads, 3, d_head, *t.shape[1:])[:, which].reshape(n_heads * d_head, *t.shape[1:])

    return get


def _llama_style(cfg: ModelConfig, layout: str) -> dict[str, Source]:
    """Llama, Mistral, Qwen2/3, Gemma-2/3, OLMo-2 and Phi-3: `model.layers.{l}.self_attn / mlp / *norm`."""
    out: dict[str, Source] = {}
    h, g, d = cfg.n_heads, cfg.n_kv_heads, cfg.d_head
    norms = {
        "llama": {"ln1": "input_layernorm", "ln2": "post_attention_layernorm"},
        "phi3": {"ln1": "input_layernorm", "ln2": "post_attention_layernorm"},
        "gemma": {"ln1": "input_layernorm", "ln1_post": "post_attention_layernorm",
                  "ln2": "pre_feedforward_layernorm", "ln2_post": "post_feedforward_layernorm"},
        "olmo2": {"ln1_post": "post_attention_layernorm", "ln2_post": "post_feedforward_layernorm"},
    }[layout]
    for layer in range(cfg.n_layers):
        ours, theirs = f"blocks.{layer}.", f"model.layers.{layer}."
        for norm, name in norms.items():
            out[ours + norm + ".w"] = _plain(theirs + name + ".weight")
        if layout == "phi3":
            qkv, up = theirs + "self_attn.qkv_proj.weight", theirs + "mlp.gate_up_proj.weight"
            out[ours + "attn.w_q"] = _rows(qkv, 0, h * d)
            out[ours + "attn.w_k"] = _rows(qkv, h * d, (h + g) * d)
            out[ours + "attn.w_v"] = _rows(qkv, (h + g) * d, (h + 2 * g) * d)
            out[ours + "mlp.w_gate"] = _rows(up, 0, cfg.d_mlp)
            out[ours + "mlp.w_in"] = _rows(up, cfg.d_mlp, 2 * cfg.d_mlp)
        else:
            for x in "qkv":
                out[ours + f"attn.w_{x}"] = _plain(theirs + f"self_attn.{x}_proj.weight")
                out[ours + f"attn.b_{x}"] = _plain(theirs + f"self_attn.{x}_proj.bias")
            out[ours + "mlp.w_gate"] = _plain(theirs + "mlp.gate_proj.weight")
            out[ours + "mlp.w_in"] = _plain(theirs + "mlp.up_proj.weight")
            for x, proj in (("gate", "gate_proj"), ("in", "up_proj"), ("out", "down_proj")):
                out[ours + f"mlp.b_{x}"] = _plain(theirs + f"mlp.{proj}.bias")
        out[ours + "attn.w_o"] = _plain(theirs + "self_attn.o_proj.weight")
        out[ours + "attn.b_o"] = _plain(theirs + "self_attn.o_proj.bias")
        out[ours + "attn.q_norm.w"] = _plain(theirs + "self_attn.q_norm.weight")
        out[ours + "attn.k_norm.w"] = _plain(theirs + "self_attn.k_norm.weight")
        out[ours + "mlp.w_out"] = _plain(theirs + "mlp.down_proj.weight")
    out.update({"embed.W_E": _plain("model.embed_tokens.weight"), "ln_final.w": _plain("model.norm.weight"),
                "unembed.W_U_rows": _plain("lm_head.weight")})
    return out


def _gpt_neox(cfg: ModelConfig) -> dict[str, Source]:
    out: dict[str, Source] = {}
    for layer in range(cfg.n_layers):
        ours, theirs = f"blocks.{layer}.", f"gpt_neox.layers.{layer}."
        for norm, name in (("ln1", "input_layernorm"), ("ln2", "post_attention_layernorm")):
            out[ours + norm + ".w"] = _plain(theirs + name + ".weight")
            out[ours + norm + ".b"] = _plain(theirs + name + ".bias")
        for i, x in enumerate("qkv"):
            for kind, suffix in (("w", "weight"), ("b", "bias")):
                out[ours + f"attn.{kind}_{x}"] = _neox_qkv(theirs + f"attention.query_key_value.{suffix}", i,
                                                          cfg.n_heads, cfg.d_head)
        for ours_name, theirs_name in (("attn.{}_o", "attention.dense"), ("mlp.{}_in", "mlp.dense_h_to_4h"),
                                       ("mlp.{}_out", "mlp.dense_4h_to_h")):
            out[ours + ours_name.format("w")] = _plain(theirs + theirs_name + ".weight")
            out[ours + ours_name.format("b")] = _plain(theirs + theirs_name + ".bias")
    out.update({"embed.W_E": _plain("gpt_neox.embed_in.weight"),
                "ln_final.w": _plain("gpt_neox.final_layer_norm.weight"),
                "ln_final.b": _plain("gpt_neox.final_layer_norm.bias"), "unembed.W_U_rows": _plain("embed_out.weight")})
    return out


def _gpt2(cfg: ModelConfig) -> dict[str, Source]:
    """GPT-2's Conv1D weights are stored (in, out): transposed here; c_attn stacks [q | k | v] columns."""
    d = cfg.d_model
    out: dict[str, Source] = {"embed.W_E": _plain("transformer.wte.weight"),
                              "pos_embed.W_pos": _plain("transformer.wpe.weight"),
                              "ln_final.w": _plain("transformer.ln_f.weight"),
                              "ln_final.b": _plain("transformer.ln_f.bias"),
                              "unembed.W_U_rows": _plain("lm_head.weight")}
    for layer in range(cfg.n_layers):
        ours, theirs = f"blocks.{layer}.", f"transformer.h.{layer}."
        for i, x in enumerate("qkv"):
            out[ours + f"attn.w_{x}"] = (lambda read, n=theirs + "attn.c_attn.weight", i=i:
                                         read(n)[:, i * d:(i + 1) * d].T)
            out[ours + f"attn.b_{x}"] = (lambda read, n=theirs + "attn.c_attn.bias", i=i: read(n)[i * d:(i + 1) * d])
        for ours_name, theirs_name in (("attn.{}_o", "attn.c_proj"), ("mlp.{}_in", "mlp.c_fc"),
                                       ("mlp.{}_out", "mlp.c_proj")):
            out[ours + ours_name.format("w")] = (lambda read, n=theirs + theirs_name + ".weight": read(n).T)
            out[ours + ours_name.format("b")] = _plain(theirs + theirs_name + ".bias")
        for norm, name in (("ln1", "ln_1"), ("ln2", "ln_2")):
            out[ours + norm + ".w"] = _plain(theirs + name + ".weight")
            out[ours + norm + ".b"] = _plain(theirs + name + ".bias")
    return out


def _plain(name: str) -> Source:
    return lambda read: read(name)


def tensor_sources(cfg: ModelConfig, layout: str) -> dict[str, Source]:
    """interp parameter name -> how to read it, for one family's layout (a superset of what cfg needs)."""
    if layout == "gpt_neox":
        return _gpt_neox(cfg)
    if layout == "gpt2":
        return _gpt2(cfg)
    return _llama_style(cfg, layout)


def hf_tensors(cfg: ModelConfig, layout: str, read: Reader, norm_plus_one: bool,
               place: Callable[[str, torch.Tensor], torch.Tensor], ignore_prefixes: tuple[str, ...] = ()):
    """Yield (name, tensor) for every parameter cfg needs, each placed (dtype, device) by `place` as soon as
    it is read. Then refuse any checkpoint tensor nobody read."""
    sources = tensor_sources(cfg, layout)
    wanted = _expected_names(cfg)
    if missing := sorted(wanted - sources.keys()):
        raise CorruptModelError(f"interp has no source for {missing[0]} in the {layout} layout.")
    for name in (n for n in sources if n in wanted):  # the map's order: slices of one fused tensor together
        tensor = sources[name](read)
        if norm_plus_one and name.endswith(".w") and is_norm_param(name):
            tensor = tensor.float() + 1
        yield name, place(name, tensor)
    if cfg.tie_embeddings:
        read.mark_used("lm_head.weight")  # tied checkpoints may carry a copy; transformers ignores it too
    leftover = read.leftover(ignore_prefixes)
    if leftover:
        raise CorruptModelError(
            f"The checkpoint holds {len(leftover)} tensors interp would not use, first {leftover[0]}; "
            "the model it describes is not the one interp would build.")


def is_norm_param(name: str) -> bool:
    """Whether an interp parameter belongs to a norm (ln1, ln2, ln1_post, ln_final, q_norm, k_norm, ...)."""
    owner = name.rsplit(".", 2)[-2] if "." in name else ""
    return owner.startswith("ln") or owner in ("q_norm", "k_norm")
