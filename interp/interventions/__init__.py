"""Reading and writing the residual stream and attention heads, as composable hook factories.

Each factory returns a list of (hook_name, hook_fn) pairs for `model.hooks(...)` / `run_with_hooks`; the
`intervene` context manager applies any number of them and always removes them, also when the forward
raises. Positions index the sequence axis (negative counts from the end), heads are query heads.
"""

from interp.interventions.core import (
    Hooks,
    ablate_heads,
    add_vector,
    capture,
    head_means,
    intervene,
    patch_from_cache,
    read_resid,
    set_activation,
    stop_at_layer,
)

__all__ = [
    "Hooks",
    "ablate_heads",
    "add_vector",
    "capture",
    "head_means",
    "intervene",
    "patch_from_cache",
    "read_resid",
    "set_activation",
    "stop_at_layer",
]
