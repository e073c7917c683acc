"""The activation cache: TransformerLens' own `ActivationCache`, so its helpers give TL's numbers on interp.

Everything comes from `transformer_lens.ActivationCache`: shorthand keys (`cache["resid_post", -1]`,
`cache["embed"]`, `cache["scale", 3, "ln1"]`, `cache["pattern", 0, "attn"]`), `accumulated_resid(layer,
incl_mid, apply_ln, pos_slice, mlp_input, return_labels)`, `decompose_resid`, `stack_head_results` (built
from `hook_z` and `W_O` when `hook_result` was not cached), `apply_ln_to_stack`, `logit_attrs`,
`remove_batch_dim()`, `logit_lens(...)`. The subclass only adds what interp's callers relied on before.

TL's `apply_ln_to_stack` divides by the cached `hook_scale` and does not multiply by the norm's weight: on the
unprocessed weights interp loads by default, `apply_ln_to_stack(x) @ W_U` is therefore not the logit; load
with TL's weight processing (the guide says how) for the attribution recipes that assume folded norms.
"""

from __future__ import annotations

from transformer_lens.ActivationCache import ActivationCache as _TLActivationCache


class ActivationCache(_TLActivationCache):
    """TL's cache over interp's hook names (the same names). `cache.model` is the interp model."""

    def __contains__(self, key: str) -> bool:
        return key in self.cache_dict

    def to(self, device, move_model: bool = False) -> ActivationCache:
        """A new cache on `device` (TL moves this one in place and returns it; both read the same)."""
        moved = ActivationCache({k: v.to(device) for k, v in self.cache_dict.items()}, self.model,
                                has_batch_dim=self.has_batch_dim)
        if move_model:
            self.model.to(device)
        return moved
