"""Agreement with the peer: TransformerLens' head detector on a TransformerBridge of the same model.

`transformer_lens.head_detector.detect_head(model, texts, "induction_head", error_measure="mul")` scores each
head by the share of its attention (over all rows) that lands on "the token after an earlier copy of the
query token". We build the Hugging Face model offline from the same GGUF file (transformers dequantizes it),
wrap the already-loaded module with TransformerLens' `build_bridge_from_module` (no hub access), and run the
detector on repeated random whole-word sequences that survive a tokenizer round trip (the detector takes
strings). We also apply TransformerLens' own scoring functions to *our* model's patterns on the same tokens,
which separates "do the two implementations compute the same attention" from "do the two scores rank the
same heads". The overlap of the top-10 head sets is reported for each pair.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from interp.model import hook_names

Head = tuple[int, int]


@dataclass
class PeerComparison:
    tl_on_ours: torch.Tensor  # (n_layers, n_heads) TL's detector logic on our patterns
    bridge: torch.Tensor | None  # (n_layers, n_heads) detect_head on the TransformerBridge, or None
    bridge_error: str | None  # why the bridge could not be built
    n_texts: int
    notes: list[str] = field(default_factory=list)


def top_heads(scores: torch.Tensor, k: int) -> list[Head]:
    n_heads = scores.shape[1]
    flat = torch.nan_to_num(scores.flatten(), nan=-1.0).topk(min(k, scores.numel())).indices.tolist()
    return [(i // n_heads, i % n_heads) for i in flat]


def overlap(a: torch.Tensor, b: torch.Tensor, k: int = 10) -> int:
    return len(set(top_heads(a, k)) & set(top_heads(b, k)))


def build_bridge(model_name: str):
    """A TransformerBridge around the Hugging Face model read offline from the same weights file."""
    from interp.model.reference import bridge_from_hf, hf_from_gguf

    return bridge_from_hf(*hf_from_gguf(model_name), name=model_name)


@torch.no_grad()
def tl_logic_on_ours(model, rows: list[torch.Tensor]) -> torch.Tensor:
    """TransformerLens' detection pattern and "mul" similarity applied to our patterns, averaged over rows."""
    from transformer_lens.head_detector import (
        compute_head_attention_similarity_score,
        get_induction_head_detection_pattern,
    )

    cfg = model.cfg
    total = torch.zeros(cfg.n_layers, cfg.n_heads)
    names = [hook_names.pattern(layer) for layer in range(cfg.n_layers)]
    for row in rows:
        det = get_induction_head_detection_pattern(row[None].cpu())  # (p, p)
        _, cache = model.run_with_cache(row[None].to(model.device), names_filter=names)
        for layer in range(cfg.n_layers):
            pat = cache[names[layer]][0].float().cpu()  # (h, q, k)
            for head in range(cfg.n_heads):
                total[layer, head] += compute_head_attention_similarity_score(
                    pat[head], det, exclude_bos=False, exclude_current_token=False, error_measure="mul")
    return total / len(rows)


def compare_with_peer(model, model_name: str, n_texts: int, seq_len: int, seed: int,
                      use_bridge: bool = True) -> PeerComparison:
    """Run TL's detector on the bridge (when it can be built) and TL's logic on our patterns."""
    from interp.analysis.induction.sequences import round_trip_word_sequences
    from interp.model.tokenize import sink_token

    texts, toks = round_trip_word_sequences(model, n_texts, seq_len, seed)
    bridge_scores, error, notes = None, None, []
    rows = [torch.cat([torch.tensor([sink_token(model)]), t]) for t in toks]  # fallback: BOS + r + r
    if use_bridge:
        try:
            bridge = build_bridge(model_name)
            rows = [bridge.to_tokens(t)[0].cpu() for t in texts]  # exactly what the detector sees
            from transformer_lens.head_detector import detect_head

            with torch.no_grad():
                bridge_scores = detect_head(bridge, texts, "induction_head", error_measure="mul").float().cpu()
            del bridge
        except Exception as exc:  # noqa: BLE001 - the peer is optional; say exactly why it failed
            error = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
            notes.append("TransformerBridge unavailable; compared with TL's detector logic on our patterns only.")
    return PeerComparison(tl_logic_on_ours(model, rows), bridge_scores, error, len(texts), notes)
