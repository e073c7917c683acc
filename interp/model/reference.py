"""The reference implementations interp is measured against, built offline from the same weights file.

`transformers` reads the same GGUF (dequantizing and un-permuting by its own code), which makes it an
independent check of our loader as well as of our forward pass; TransformerLens' TransformerBridge wraps
that model for activation-level comparison. Used by the parity tests and the benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import torch

from interp.model.registry import resolve


def hf_from_gguf(name_or_path: str, dtype: torch.dtype = torch.float32, attn: str = "eager"):
    """(model, tokenizer) from transformers, eager attention (or `attn`, e.g. "sdpa"), eval mode; no network.

    Takes a registered name, a .gguf file, or a Hugging Face directory (read as it is)."""
    import os

    from transformers import AutoModelForCausalLM, AutoTokenizer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    path = Path(name_or_path)
    if path.is_dir():
        folder, kw = str(path), {}
    else:
        path = path if name_or_path.endswith(".gguf") else resolve(name_or_path)
        folder, kw = str(path.parent), {"gguf_file": path.name}
    from interp.model.gguf import read_once

    with read_once():
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation=attn, **kw)
        tokenizer = AutoTokenizer.from_pretrained(folder, **kw)
    return model.eval(), tokenizer


def bridge_from_hf(hf_model, tokenizer, name: str = "local"):
    """A TransformerLens TransformerBridge around an already-loaded transformers model (no hub access)."""
    from transformer_lens.model_bridge import TransformerBridge

    if not getattr(hf_model.config, "architectures", None):
        # GGUF-built configs leave this empty; the bridge picks its adapter by it (Gemma3ForCausalLM, ...)
        hf_model.config.architectures = [type(hf_model).__name__]
    return TransformerBridge.boot_transformers(name, hf_model=hf_model, tokenizer=tokenizer)
