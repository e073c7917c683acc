"""Hyper-parameters of ROME and MEMIT as data, with the reference defaults and our per-model layers.

The default editors, each the one that wins on the test part of known_edits (the original where they tie;
benchmarks/rome-eval-<model>-known_edits-test.md): ROME is the original (`ROMEParams()`, the same as
`ROMEParams.reference()`; ours, `ROMEParams.ours()`, tied with it on both models: SmolLM2 +0.01 [-0.06, +0.07],
Gemma-3 -0.03 [-0.13, +0.08]); MEMIT is ours (`MEMITParams()`; over the original +0.05 [+0.00, +0.15] on SmolLM2,
+0.45 [+0.19, +0.71] on Gemma-3), whose z optimisation uses our v* objective (`MEMITParams().rome` is
`ROMEParams.ours()`).

Reference values (Meng et al. 2022, rome/hparams/ROME/gpt2-xl.json; Meng et al. 2023, MEMIT/hparams):
Adam lr 0.5, at most 20 steps, early stop when the target NLL < 0.05, KL weight 0.0625, weight decay 0.5,
||delta|| <= 4 ||v0||, 10 contexts of 5 tokens + 10 of 10 tokens sampled from the model with top-k 5,
MEMIT lambda (mom2_update_weight) 15,000.

Default layers, each chosen on a tuning part only (evidence in benchmarks/rome-eval-<model>*.md): ROME's is the
layer of highest S (the harmonic mean of ES, PS, NS) in the layer sweep re-scored on the facts that fall in the
tune part of facts.json's split (20 facts per model; the reports' edit-eval draws from the test part): SmolLM2
layer 2 (S 0.87 [0.79, 0.96]; 0.82 at layer 6, the earlier default), Gemma-3 layer 1 (0.90 [0.82, 0.99]; 0.52-0.86
at 2-9). MEMIT's is the window of highest S on the tune part of known_edits (20 facts; windows 1-4, 3-6, 5-8):
SmolLM2 layers 1-4 (0.93 [0.85, 0.99], +0.01 [+0.00, +0.03] over 3-6, the earlier default); Gemma-3 layers 2-4
(0.94 [0.89, 0.98] against 0.93 for 0-2 and 0.79 for 4-6; also ahead of 0-2 on facts.json's tune part, 0.92
against 0.82). On known_edits' tune part ROME ours would pick SmolLM2's layer
6 (0.96, +0.02 [-0.01, +0.05] over layer 2): a tie, so the default stays where facts.json's tune part put it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

# model name -> ROME layer (0-based) and MEMIT layer range; evidence (layer sweeps) in benchmarks/rome-eval-<model>.md
DEFAULT_LAYERS: dict[str, int] = {"smollm2-135m": 2, "gemma3-270m": 1}
DEFAULT_MEMIT_LAYERS: dict[str, tuple[int, ...]] = {"smollm2-135m": (1, 2, 3, 4), "gemma3-270m": (2, 3, 4)}
DEPTH_FRACTION = 0.2  # fallback for other models: ROME's GPT-2 XL / GPT-J layers sit at 0.2-0.35 of depth


@dataclass(frozen=True)
class StatsParams:
    """Where the key second moment C comes from. corpus=None samples text from the model itself."""

    corpus: str | None = None  # a text file or a folder of .txt files; None: sample from the model
    n_tokens: int = 4_000  # tokens whose keys enter C (the reference: ~44M; d_mlp here is 1536 / 2048)
    seed: int = 0
    sample_len: int = 128  # tokens per sampled document
    batch_size: int = 32


UPDATES = ("ours", "original", "r-rome")  # ROMEParams.update; see edit.py
MEMIT_UPDATES = ("ours", "original")  # MEMITParams.update; see memit.py
# MEMITParams.post_norm: how a layer's share of the residual becomes a target for W_out's output where a norm
# follows the MLP (Gemma's post-FFN norm); see memit.py. Without such a norm both are the same.
MEMIT_POST_NORMS = ("invert", "linear")


@dataclass(frozen=True)
class ROMEParams:
    """ROME's settings. The defaults are the original ROME (the authors' update and v* objective, our
    re-implementation) at our per-model layer; `ROMEParams.ours()` is our variant, `ROMEParams.reference()` the
    original spelled out."""

    layer: int | None = None  # None: DEFAULT_LAYERS[model], else DEPTH_FRACTION of depth
    lr: float = 0.5
    steps: int = 20  # forward passes of the v* loop at most
    early_stop_nll: float = 0.05  # the threshold of the early stop (on the NLL, or the total loss: `early_stop`)
    kl_weight: float = 0.0625
    weight_decay: float = 0.5
    clamp_norm_factor: float = 4.0
    context_lengths: tuple[tuple[int, int], ...] = ((5, 10), (10, 10))  # (tokens, how many)
    context_seed: int = 0
    kl_prompt: str = "{} is a"
    ridge: float = 1e-3  # C + ridge * mean(diag C) * I, so a C from few tokens is invertible
    # Which rank-one update (edit.py): "original" (the default: our re-implementation of the authors': v* from
    # the bare prompt's value, right vector scaled so the bare prompt's key maps exactly to v*), "ours", "r-rome"
    # (the paper's equation: delta placed at the mean key k*, Gupta et al. 2024).
    update: str = "original"
    # Two departures of "ours", read only with update="ours" (both off: "r-rome"); see edit.py:
    # the update also adds all of delta at the bare prompt's own key, not only at the mean key k*
    fit_bare_key: bool = True
    # optimise v* through the rank-one map: each prompt gets the share k_i . u of delta the edit gives it
    value_through_update: bool = True
    # The v* objective (value.py). The reference's choices, the defaults, are "norm", "subject", "edited",
    # "loss"; ours (`ours()`), each named: weight decay ||delta||^2 / ||v0||^2 ("squared") instead of
    # ||delta|| / ||v0||^2; the KL term at the KL prompt's last token ("last") instead of the subject's last
    # token; KL(p_orig || p_delta) ("orig") instead of KL(p_delta || p_orig); the early stop on the NLL ("nll",
    # and an update on the last step) instead of the total loss ("loss", the last step only evaluated).
    decay: str = "norm"
    kl_at: str = "subject"
    kl_direction: str = "edited"
    early_stop: str = "loss"
    # Speed only (the same numbers to float rounding): run only the columns from the first subject token on
    # in each step, the earlier ones' keys and values cached once (value.py)
    reuse_prefix: bool = True
    stats: StatsParams = field(default_factory=StatsParams)

    def __post_init__(self) -> None:
        from interp.errors import InvalidInputError

        choices = {"update": UPDATES, "decay": ("squared", "norm"), "kl_at": ("last", "subject"),
                   "kl_direction": ("orig", "edited"), "early_stop": ("nll", "loss")}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise InvalidInputError(
                    f"ROME {name} must be one of {', '.join(allowed)}, not {getattr(self, name)!r}.")

    @classmethod
    def reference(cls, **changes) -> ROMEParams:
        """The original ROME (Meng et al. 2022, rome/hparams/ROME/gpt2-xl.json and compute_v.py), the default:
        its update and its v* objective; `changes` override single fields (an ablation row)."""
        return cls(**{**REFERENCE_ROME, **changes})

    @classmethod
    def ours(cls, **changes) -> ROMEParams:
        """Our ROME (edit.py, value.py): our update and our v* objective; `changes` override single fields."""
        return cls(**{**OURS_ROME, **changes})


# the fields in which the original ROME and ours differ (besides the two switches read only by update="ours")
REFERENCE_ROME = dict(update="original", decay="norm", kl_at="subject", kl_direction="edited", early_stop="loss")
OURS_ROME = dict(update="ours", decay="squared", kl_at="last", kl_direction="orig", early_stop="nll")


@dataclass(frozen=True)
class MEMITParams:
    """MEMIT's settings. The defaults are our MEMIT (our key rows, post-norm targets and z objective) at our
    per-model layers; `MEMITParams.reference()` is the original MEMIT (our re-implementation)."""

    layers: tuple[int, ...] | None = None  # None: DEFAULT_MEMIT_LAYERS[model]
    lam: float = 15_000.0  # lambda: weight of C against the new keys (MEMIT's mom2_update_weight)
    rome: ROMEParams = field(default_factory=ROMEParams.ours)  # z optimisation and contexts: ROME's settings
    # "ours" or "original" (memit.py): keys per context type, the bare prompt weighing 1/2, z and the residual
    # measured at the bare prompt
    update: str = "ours"
    # "invert" (ours): solve for the W_out output change whose post-MLP norm output moves by the layer's share;
    # "linear" (the original, whose models have no such norm): add the share to W_out's output as it is
    post_norm: str = "invert"

    def __post_init__(self) -> None:
        from interp.errors import InvalidInputError

        if self.update not in MEMIT_UPDATES:
            raise InvalidInputError(f"MEMIT update must be one of {', '.join(MEMIT_UPDATES)}, not {self.update!r}.")
        if self.post_norm not in MEMIT_POST_NORMS:
            raise InvalidInputError(f"MEMIT post_norm must be one of {', '.join(MEMIT_POST_NORMS)}, "
                                    f"not {self.post_norm!r}.")

    def with_rome(self, **changes) -> MEMITParams:
        """These settings with the z optimisation's ROME settings changed (e.g. `stats=`, `context_seed=`)."""
        return replace(self, rome=replace(self.rome, **changes))

    @classmethod
    def reference(cls, **changes) -> MEMITParams:
        """The original MEMIT (Meng et al. 2023, memit_main.py, compute_z.py, hparams/MEMIT/gpt-j.json): 5
        contexts of 10 tokens beside the bare prompt, z clamped at 0.75 ||h||, 25 steps, ROME's loss otherwise."""
        rome = changes.pop("rome", None) or ROMEParams.reference(clamp_norm_factor=0.75, steps=25,
                                                                 context_lengths=((10, 5),))
        return cls(**{"update": "original", "post_norm": "linear", "rome": rome, **changes})


def default_layer(model_name: str, n_layers: int) -> int:
    if model_name in DEFAULT_LAYERS:
        return DEFAULT_LAYERS[model_name]
    return max(1, round(DEPTH_FRACTION * n_layers))


def default_memit_layers(model_name: str, n_layers: int) -> tuple[int, ...]:
    if model_name in DEFAULT_MEMIT_LAYERS:
        return DEFAULT_MEMIT_LAYERS[model_name]
    last = default_layer(model_name, n_layers)
    return tuple(range(max(0, last - 3), last + 1))
