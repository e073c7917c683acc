"""Which device a `--device` string names, refused in one sentence when this machine lacks it. Apart from the
loader so that a command checks its --device after importing torch alone."""

from __future__ import annotations

import torch

from interp.errors import InvalidInputError


def resolve_device(device: str | torch.device) -> torch.device:
    """"auto" -> cuda if available, then mps, then cpu; anything else as torch reads it, refused in one
    sentence when this machine lacks it."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    if str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "mps" if mps else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise InvalidInputError(f"Unknown --device {str(device)!r}; use cpu, cuda, cuda:N, mps or auto.") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InvalidInputError(f"--device {device} needs CUDA, which this machine does not have; "
                                "use --device cpu or auto.")
    if dev.type == "cuda" and (dev.index or 0) >= torch.cuda.device_count():
        raise InvalidInputError(f"--device {device} does not exist; "
                                f"this machine has {torch.cuda.device_count()} CUDA device(s).")
    if dev.type == "mps" and not mps:
        raise InvalidInputError(f"--device {device} needs Apple's MPS, which is not available here; "
                                "use --device cpu or auto.")
    if dev.type not in ("cpu", "cuda", "mps", "meta"):
        raise InvalidInputError(f"--device {device} is not supported; use cpu, cuda, cuda:N, mps or auto.")
    return dev
