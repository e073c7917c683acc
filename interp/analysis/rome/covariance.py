"""Second-moment statistics C = E[k k^T] of FFN keys, cached on disk under a key of every input.

ROME solves for the rank-one update that changes W_out k* while disturbing W_out k as little as
possible for "typical" keys k, measured by C (Meng et al. 2022, eq. 2). The reference estimates C over
~44M Wikipedia tokens; offline we have no Wikipedia, so by default the corpus is text **sampled from the
model itself** (seeded, top-p 0.95, documents of 128 tokens, each opened by one of a few common words); a
user may give a text file or a folder of .txt files instead. Every token's key (the MLP hook_post, the
input of W_out) enters C except the first of each document, whose attention-sink activations are
outliers. The cache key hashes the model fingerprint, layer, corpus (its token ids) and token count:
``cache_dir()/stats/<model>-<fingerprint>/mom2-L<layer>-<key>.pt``; a `StatsCache` object says where that is
and keeps what was read.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch

from interp.analysis.rome.hparams import StatsParams
from interp.diskcache import one_writer
from interp.errors import InvalidInputError
from interp.fingerprint import ids_hash, text_hash, weights_hash
from interp.interventions import capture, intervene
from interp.model import hook_names
from interp.model.generate import generate
from interp.model.registry import cache_dir
from interp.progress import Progress, track

OPENERS = ("The", "In", "A", "I", "It", "This", "We", "He", "She", "When", "There", "One")


class StatsCache:
    """Where ROME's statistics live: ``<root>/<model>-<fingerprint>/`` on disk, and, for this object's
    lifetime, the second moments already read and the fingerprints already computed. Pass one object to
    every edit of a session (`run_edit_eval` does) so the statistics are read and the weights hashed once;
    without one, each call reads from disk again. Nothing is kept on the model or in a module global.

    The fingerprint hashes the config and every weight except the MLP output matrices (which edits change),
    so statistics of the unedited model stay valid while edits are applied (the reference also uses the
    unedited model's statistics); in-place changes to other weights are not noticed within one StatsCache.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_dir() / "stats"
        self._moments: dict[Path, torch.Tensor] = {}
        self._fingerprints: dict[tuple, str] = {}

    def fingerprint(self, model) -> str:
        key = (id(model), tuple(p.data_ptr() for p in model.parameters()))
        if key not in self._fingerprints:
            self._fingerprints[key] = weights_hash(model, skip=("mlp.w_out",))[:16]
        return self._fingerprints[key]

    def folder(self, model) -> Path:
        return self.root / f"{model.cfg.name.replace('/', '_')}-{self.fingerprint(model)}"

    def moment(self, path: Path) -> torch.Tensor | None:
        """A second moment read before, or from its file; None when neither (a damaged file is removed)."""
        if path not in self._moments and path.exists():
            try:
                self._moments[path] = torch.load(path)
            except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt
                path.unlink(missing_ok=True)
        return self._moments.get(path)

    def keep(self, path: Path, c: torch.Tensor) -> None:
        _atomic_save(c, path)
        self._moments[path] = c


def model_fingerprint(model) -> str:
    """The statistics' key for `model` (see `StatsCache`), computed afresh."""
    return StatsCache().fingerprint(model)


def _atomic_save(obj, path: Path) -> None:
    from interp.diskcache import sweep_stale, warn_once

    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        sweep_stale(path.parent, ("tmp-*.pt.partial",))  # left by killed runs
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix="tmp-", suffix=".pt.partial")
        os.close(fd)
        torch.save(obj, tmp)
        os.replace(tmp, path)
    except OSError as exc:  # an unwritable cache is only slower
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        warn_once("stats-cache", f"the statistics cache {path.parent} cannot be written ({exc.strerror or exc}); "
                  "statistics are computed again next time.")


@torch.no_grad()
def sample_corpus(model, params: StatsParams, progress: Progress | None = None,
                  cache: StatsCache | None = None) -> list[list[int]]:
    """Documents of token ids sampled from the model (batched, seeded), cached on disk."""
    n_docs = -(-params.n_tokens // (params.sample_len - 1))
    path = (cache or StatsCache()).folder(model) / f"corpus-s{params.seed}-n{n_docs}x{params.sample_len}.pt"
    docs = _cached_corpus(path)
    if docs is None:
        with one_writer(path):  # another process sampling the same corpus finishes first; this one reads it
            docs = _cached_corpus(path)
            if docs is None:
                docs = _sample(model, params, n_docs, progress)
                _atomic_save(docs, path)
    return docs


def _cached_corpus(path: Path) -> list[list[int]] | None:
    if path.exists():
        try:
            return torch.load(path)
        except Exception:  # noqa: BLE001 - a damaged cache entry is rebuilt
            path.unlink(missing_ok=True)
    return None


def _sample(model, params: StatsParams, n_docs: int, progress: Progress | None) -> list[list[int]]:
    docs: list[list[int]] = []
    batches = range(0, n_docs, params.batch_size)
    for i, start in enumerate(track(progress, batches, "sampling corpus")):
        b = min(params.batch_size, n_docs - start)
        openers = [OPENERS[(start + j) % len(OPENERS)] for j in range(b)]
        tokens, mask = model.to_batch(openers)
        new = generate(model, tokens, attention_mask=mask, max_new_tokens=params.sample_len - tokens.shape[1],
                             temperature=1.0, top_p=0.95, seed=params.seed * 100_003 + i, stop_at_eos=False)
        for row in range(b):
            ids = tokens[row][mask[row]].tolist() + new[row].tolist()
            docs.append(ids)
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


@torch.no_grad()
def second_moment(model, layer: int, params: StatsParams = StatsParams(), progress: Progress | None = None,
                  cache: StatsCache | None = None) -> torch.Tensor:
    """C = mean of k k^T over the corpus keys at `layer`: (d_mlp, d_mlp), float32, cached on disk."""
    cache = cache or StatsCache()
    if params.corpus is None:
        docs = sample_corpus(model, params, progress, cache)
    else:
        docs = read_corpus(model, params.corpus, params.n_tokens, params.sample_len)
    key = text_hash(f"{cache.fingerprint(model)}|{layer}|{ids_hash(docs)}|{params.n_tokens}")
    path = cache.folder(model) / f"mom2-L{layer}-{key[:16]}.pt"
    c = cache.moment(path)
    if c is None:
        with one_writer(path):  # computed by another process meanwhile: read, not recomputed
            c = cache.moment(path)
            if c is None:
                c = _keys_moment(model, layer, docs, progress)
                cache.keep(path, c)
    return c


def _keys_moment(model, layer: int, docs: list[list[int]], progress: Progress | None) -> torch.Tensor:
    """The mean of k k^T over every token's key but each document's first (its attention-sink outlier)."""
    name = hook_names.mlp_post(layer)
    d = model.cfg.d_mlp
    total = torch.zeros(d, d, dtype=torch.float64)
    count = 0
    bs = 16
    for start in track(progress, range(0, len(docs), bs), f"keys at layer {layer}"):
        chunk = docs[start : start + bs]
        tokens, mask = model.pad_left(chunk)
        counted = mask.clone()
        counted[torch.arange(len(chunk)), mask.int().argmax(1)] = False  # skip each document's first token
        store: dict = {}
        with intervene(model, capture([name], store)):
            model(tokens, attention_mask=mask, stop_at_layer=layer + 1)
        keys = store[name][counted].double().cpu()  # (tokens, d_mlp)
        total += keys.T @ keys
        count += keys.shape[0]
    return (total / max(count, 1)).float()
