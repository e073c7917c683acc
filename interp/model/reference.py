"""The reference implementations interp is measured against, built offline from the same weights file.

`transformers` reads the same GGUF (dequantizing and un-permuting by its own code), which makes it an
independent check of our loader as well as of our forward pass; TransformerLens' TransformerBridge wraps
that model for activation-level comparison. Used by the parity tests and the benchmarks.
"""

from __future__ import annotations

from pathlib import Path

import torch

from interp.model.registry import resolve


def hf_from_gguf(name_or_path: str, dtype: torch.dtype = torch.float32):
    """(model, tokenizer) from transformers, eager attention, eval mode; no network."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(name_or_path) if name_or_path.endswith(".gguf") else resolve(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=dtype,
                                                 attn_implementation="eager")
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    return model.eval(), tokenizer


def bridge_from_hf(hf_model, tokenizer, name: str = "local"):
    """A TransformerLens TransformerBridge around an already-loaded transformers model (no hub access)."""
    from transformer_lens.model_bridge import TransformerBridge

    return TransformerBridge.boot_transformers(name, hf_model=hf_model, tokenizer=tokenizer)
