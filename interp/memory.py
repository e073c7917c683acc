"""Memory checked before it is spent: an estimate of what a forward pass needs, and a refusal in one sentence.

The estimates are deliberately simple upper bounds from the model's config (no allocation is made to
find out): per forward, the residual-stream and MLP activations of one layer at a time, the attention
scores and pattern of one layer (batch x heads x queries x keys, materialised when hooked or on the CPU),
the logits, and, for commands that keep activations of every layer (a cache, a backward pass), those
too. `check` compares the estimate with the memory available on the device (``MemAvailable`` on the CPU,
free memory on a GPU; ``INTERP_MEMORY_LIMIT``, e.g. ``24G``, overrides it) and refuses, naming the option
to change, when the estimate exceeds 80% of it. Commands call it before the model runs, never inside it.
"""

from __future__ import annotations

import os
import re

from interp.errors import InvalidInputError

HEADROOM = 0.8  # refuse above this fraction of the available memory


def parse_size(text: str) -> int:
    """'24G', '512M', '1.5T' or a number of bytes."""
    m = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([kKmMgGtT]?)[iI]?[bB]?\s*", text)
    if m is None:
        raise InvalidInputError(f"INTERP_MEMORY_LIMIT must be a size such as 24G or 512M, got {text!r}.")
    scale = {"": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}[m.group(2).lower()]
    return int(float(m.group(1)) * scale)


def available_bytes(device=None) -> int:
    """Memory a command may use on `device` (a torch.device or string; None: the CPU)."""
    limit = os.environ.get("INTERP_MEMORY_LIMIT")
    if limit:
        return parse_size(limit)
    dev = str(device or "cpu")
    if dev.startswith("cuda"):
        import torch

        free, _total = torch.cuda.mem_get_info(torch.device(dev))
        return int(free)
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 1 << 62  # unknown: do not refuse


def _element_bytes(model) -> int:
    dtype = getattr(model, "dtype", None)
    return getattr(dtype, "itemsize", 4) or 4


def forward_bytes(model, batch: int, tokens: int, keep_layers: bool = False, patterns: bool = True,
                  logits: bool = True) -> int:
    """Peak bytes of one forward pass over (batch, tokens): one layer's activations and attention scores at
    a time, plus the logits; `keep_layers`: every layer's activations stay (a cache or a backward pass)."""
    cfg, b = model.cfg, _element_bytes(model)
    rows = batch * tokens
    # d_model-wide: residual in/mid/out, normed inputs, attention and MLP outputs (Gemma's extra norms too);
    # head-wide (q, k, v, their rotated copies, z; k and v counted at the query heads' width): measured against
    # the allocator's peak in tests/reliability/test_memory_estimates.py
    per_layer = rows * (8 * cfg.d_model + 3 * cfg.d_mlp + 6 * cfg.n_heads * cfg.d_head) * b
    scores = batch * cfg.n_heads * tokens * tokens * 4 * (3 if patterns else 1)  # scores, softmax, pattern (fp32)
    layers = cfg.n_layers if keep_layers else 1
    out = rows * cfg.d_vocab * 4 * 2 if logits else 0
    return per_layer * layers + scores * (layers if keep_layers and patterns else 1) + out


def gib(n: float) -> str:
    return f"{n / 2**30:.1f} GB"


def check(need: int, what: str, fix: str, device=None) -> None:
    """Refuse in one sentence when `need` bytes exceed the headroom of the available memory."""
    have = available_bytes(device)
    if need > HEADROOM * have:
        raise InvalidInputError(f"{what} needs about {gib(need)} of memory, more than the {gib(have)} available here; "
                                f"{fix}.")


def max_tokens_that_fit(model, batch: int = 1, device=None, keep_layers: bool = False) -> int:
    """The longest input (tokens) whose forward fits the available memory (a hint for the refusal)."""
    have = HEADROOM * available_bytes(device)
    lo, hi = 1, max(1, model.cfg.n_ctx)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if forward_bytes(model, batch, mid, keep_layers) <= have:
            lo = mid
        else:
            hi = mid - 1
    return lo
