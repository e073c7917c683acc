"""Second-moment statistics C = E[k k^T] of FFN keys, cached on disk under a key of every input.

ROME solves for the rank-one update that changes W_out k* while disturbing W_out k as little as
possible for "typical" keys k, measured by C (Meng et al. 2022, eq. 2). The reference estimates C over
~44M Wikipedia tokens; offline we have no Wikipedia, so by default the corpus is text **sampled from the
model itself** (seeded, top-p 0.95, documents of 128 tokens, each opened by one of a few common words); a
user may give a text file or a folder of .txt files instead. Every token's key (the MLP hook_post, the
input of W_out) enters C except the first of each document, whose attention-sink activations are
outliers. The cache key hashes the model fingerprint, layer, corpus (its token ids) and token count:
``cache_dir()/stats/<model>/<key>.pt``.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Callable

import torch

from interp.analysis.rome.hparams import StatsParams
from interp.errors import InvalidInputError
from interp.interventions import capture, intervene
from interp.model import hook_names
from interp.model.registry import cache_dir

OPENERS = ("The", "In", "A", "I", "It", "This", "We", "He", "She", "When", "There", "One")


def model_fingerprint(model) -> str:
    """sha256 of the config and every weight except the MLP output matrices (which edits change), so
    statistics of the unedited model stay valid and cached while edits are applied (the reference also
    uses the unedited model's statistics). Memoised on the model; in-place changes to other weights
    are not detected."""
    ptrs = tuple(p.data_ptr() for p in model.parameters())
    memo = getattr(model, "_interp_fingerprint", None)
    if memo is not None and memo[0] == ptrs:
        return memo[1]
    h = hashlib.sha256(json.dumps(model.cfg.to_dict(), sort_keys=True, default=str).encode())
    for name, p in model.named_parameters():
        if name.endswith("mlp.w_out"):
            continue
        h.update(name.encode())
        h.update(p.detach().float().cpu().contiguous().numpy().tobytes())
    fp = h.hexdigest()[:16]
    model._interp_fingerprint = (ptrs, fp)
    return fp


def _atomic_save(obj, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="tmp-", suffix=".pt.partial")
    os.close(fd)
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except OSError:
        Path(tmp).unlink(missing_ok=True)  # an unwritable cache is only slower


def _stats_dir(model) -> Path:
    return cache_dir() / "stats" / f"{model.cfg.name.replace('/', '_')}-{model_fingerprint(model)}"


@torch.no_grad()
def sample_corpus(model, params: StatsParams, progress: Callable | None = None) -> list[list[int]]:
    """Documents of token ids sampled from the model (batched, seeded), cached on disk."""
    n_docs = -(-params.n_tokens // (params.sample_len - 1))
    path = _stats_dir(model) / f"corpus-s{params.seed}-n{n_docs}x{params.sample_len}.pt"
    if path.exists():
        try:
            return torch.load(path)
        except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt
            path.unlink(missing_ok=True)
    docs: list[list[int]] = []
    batches = range(0, n_docs, params.batch_size)
    for i, start in enumerate(progress(batches, desc="sampling corpus") if progress else batches):
        b = min(params.batch_size, n_docs - start)
        openers = [OPENERS[(start + j) % len(OPENERS)] for j in range(b)]
        tokens, mask = model.to_batch(openers)
        new = model.generate(tokens, attention_mask=mask, max_new_tokens=params.sample_len - tokens.shape[1],
                             temperature=1.0, top_p=0.95, seed=params.seed * 100_003 + i, stop_at_eos=False)
        for row in range(b):
            ids = tokens[row][mask[row]].tolist() + new[row].tolist()
            docs.append(ids)
    _atomic_save(docs, path)
    return docs


def read_corpus(model, path: str | Path, n_tokens: int, sample_len: int) -> list[list[int]]:
    """A text file or a folder of .txt files, cut into documents of sample_len tokens, up to n_tokens."""
    path = Path(path)
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files or not all(f.exists() for f in files):
        raise InvalidInputError(f"No text found at {path}; give a .txt file or a folder of .txt files.")
    docs: list[list[int]] = []
    total = 0
    for f in files:
        ids = model.encode(f.read_text(encoding="utf-8", errors="replace") or " ")
        for start in range(0, len(ids), sample_len):
            chunk = ids[start : start + sample_len]
            if len(chunk) > 1:
                docs.append(chunk)
                total += len(chunk) - 1
            if total >= n_tokens:
                return docs
    return docs


def corpus_hash(docs: list[list[int]]) -> str:
    h = hashlib.sha256()
    for d in docs:
        h.update(torch.tensor(d, dtype=torch.int64).numpy().tobytes())
        h.update(b"|")
    return h.hexdigest()[:16]


@torch.no_grad()
def second_moment(model, layer: int, params: StatsParams = StatsParams(),
                  progress: Callable | None = None) -> torch.Tensor:
    """C = mean of k k^T over the corpus keys at `layer`: (d_mlp, d_mlp), float32, cached on disk."""
    if params.corpus is None:
        docs = sample_corpus(model, params, progress)
    else:
        docs = read_corpus(model, params.corpus, params.n_tokens, params.sample_len)
    key = hashlib.sha256(
        f"{model_fingerprint(model)}|{layer}|{corpus_hash(docs)}|{params.n_tokens}".encode()).hexdigest()[:16]
    path = _stats_dir(model) / f"mom2-L{layer}-{key}.pt"
    memo = getattr(model, "_interp_mom2", {})
    if path in memo:
        return memo[path]
    if path.exists():
        try:
            c = torch.load(path)
            memo[path] = c
            model._interp_mom2 = memo
            return c
        except Exception:  # noqa: BLE001
            path.unlink(missing_ok=True)
    name = hook_names.mlp_post(layer)
    d = model.cfg.d_mlp
    total = torch.zeros(d, d, dtype=torch.float64)
    count = 0
    bs = 16
    batches = range(0, len(docs), bs)
    for start in progress(batches, desc=f"keys at layer {layer}") if progress else batches:
        chunk = docs[start : start + bs]
        tokens, mask = model.pad_left(chunk)
        counted = mask.clone()
        counted[torch.arange(len(chunk)), mask.int().argmax(1)] = False  # skip each document's first token (attention sink)
        store: dict = {}
        with intervene(model, capture([name], store)):
            model(tokens, attention_mask=mask, stop_at_layer=layer + 1)
        keys = store[name][counted].double().cpu()  # (tokens, d_mlp)
        total += keys.T @ keys
        count += keys.shape[0]
    c = (total / max(count, 1)).float()
    _atomic_save(c, path)
    memo[path] = c
    model._interp_mom2 = memo
    return c

