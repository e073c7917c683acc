"""What `run_induction` measures and how much of it: a frozen, validated dataclass."""

from __future__ import annotations

from dataclasses import dataclass

from interp.errors import InvalidInputError

# params field -> the `interp induction` option that sets it (the command each result reproduces)
CLI_FLAGS = {"batch": "--batch", "seq_len": "--seq-len", "top_k": "--top-k", "seeds": "--seeds", "seed": "--seed",
             "text": "--no-text", "text_path": "--text", "text_samples": "--text-samples",
             "text_tokens": "--text-tokens", "text_mode": "--text-mode", "peer": "--no-peer",
             "peer_bridge": "--no-peer-bridge", "peer_texts": "--peer-texts", "peer_seq_len": "--peer-seq-len",
             "threshold": "--threshold",
             "ablation_seed": "--ablation-seed", "prev_threshold": "--prev-threshold", "comp_sources": "--comp-sources",
             "circuit": "--circuit", "path_receivers": "--path-receivers", "path_pairs": "--path-pairs",
             "path_seq_len": "--path-seq-len"}


@dataclass(frozen=True)
class InductionParams:
    batch: int = 16
    seq_len: int = 64
    top_k: int = 5
    seeds: int = 20  # random-head control draws
    seed: int = 0  # the batch the heads are scored (selected) on
    ablation_seed: int | None = None  # the other batch they are ablated on (None: seed + 1); never `seed`
    threshold: float = 0.4  # ARENA's "induction-like" line on this score's scale
    prev_threshold: float = 0.3  # previous-token heads, for the circuit summary
    comp_sources: int = 3  # edges drawn into each induction head
    circuit: str = "weights"  # "weights": K-composition only; "path": also path patching into the heads' keys
    path_receivers: int = 3  # top induction heads whose key inputs receive the path-patched senders
    path_pairs: int = 2  # repeated sequences (with fresh-token corruptions) for path patching
    path_seq_len: int = 12  # length of r in [BOS] + r + r for path patching (every earlier head is a sender)
    text: bool = True  # run the natural-text check
    text_path: str | None = None  # a user's text file instead of generated text
    text_samples: int = 4
    text_tokens: int = 128
    text_mode: str = "mean"
    peer: bool = True  # compare with TransformerLens' head detector
    peer_bridge: bool = True  # build the TransformerBridge (loads the HF model; ~20 s)
    peer_texts: int = 4
    peer_seq_len: int = 32
    model_name: str | None = None  # for the bridge; defaults to model.cfg.name

    @property
    def ablation_batch_seed(self) -> int:
        return self.seed + 1 if self.ablation_seed is None else self.ablation_seed

    def __post_init__(self) -> None:
        minima = {"batch": 1, "seq_len": 4, "top_k": 1, "seeds": 1, "path_receivers": 1, "path_pairs": 1,
                  "path_seq_len": 4}
        for name, least in minima.items():
            if getattr(self, name) < least:
                raise InvalidInputError(
                    f"--{name.replace('_', '-')} must be at least {least}, got {getattr(self, name)}.")
        if self.ablation_seed is not None and self.ablation_seed == self.seed:
            raise InvalidInputError("--ablation-seed must differ from --seed: heads are ablated on another batch "
                                    "than the one they were selected on.")
        if self.circuit not in ("weights", "path"):
            raise InvalidInputError(f"--circuit must be weights or path, got {self.circuit!r}.")
        if self.text_mode not in ("zero", "mean"):
            raise InvalidInputError(f"text_mode must be 'zero' or 'mean', got {self.text_mode!r}.")


# The viewer's text: a sentence from a novel's first page, shown twice
VIEWER_TEXT = ("Mr and Mrs Dursley, of number four, Privet Drive, were proud to say that they were perfectly "
               "normal, thank you very much.")


@dataclass(frozen=True)
class ViewerParams:
    text: str = VIEWER_TEXT  # shown twice: the second copy is where induction heads look back
    n_heads: int = 6  # heads offered in the viewer
    seq_len: int = 40  # random-token sequence length for ranking heads
    batch: int = 8
    seed: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text.strip():
            raise InvalidInputError("The viewer's text is empty; give some text.")
        for name in ("n_heads", "seq_len", "batch"):
            if getattr(self, name) < 1:
                raise InvalidInputError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}.")
