"""Key statistics C = E[k k^T]: batched and padded, they equal the per-document computation; they are cached
under a key of their inputs; a user's text file is read into documents."""

from __future__ import annotations

import pytest
import torch

from interp.analysis.rome import covariance
from interp.analysis.rome.covariance import read_corpus, second_moment
from interp.analysis.rome.hparams import StatsParams
from interp.errors import InvalidInputError
from interp.model import hook_names
from tests.tiny import tiny_model


def _docs(seed: int, n: int = 20) -> list[list[int]]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, 64, (int(torch.randint(2, 12, (1,), generator=g)),), generator=g).tolist()
            for _ in range(n)]  # ragged lengths, so batches are padded


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_CACHE", str(tmp_path))
    return tmp_path


def _expected(model, docs, layer):
    """Each document alone, no padding, every key but the first token's."""
    keys = []
    for ids in docs:
        _, cache = model.run_with_cache(torch.tensor([ids]), names_filter=[hook_names.mlp_post(layer)])
        keys.append(cache[hook_names.mlp_post(layer)][0, 1:].double())
    k = torch.cat(keys)
    return (k.T @ k / k.shape[0]).float()


@pytest.mark.parametrize("family", ["llama", "gemma3"])
def test_second_moment_equals_the_unbatched_keys_and_is_cached(family, private_cache, monkeypatch):
    model = tiny_model(family)
    docs = _docs(0)
    monkeypatch.setattr(covariance, "sample_corpus", lambda m, p, progress=None, cache=None: docs)
    c = second_moment(model, 1, StatsParams(n_tokens=100))
    torch.testing.assert_close(c, _expected(model, docs, 1), rtol=1e-4, atol=1e-6)
    files = list(private_cache.rglob("mom2-L1-*.pt"))
    assert len(files) == 1
    # each call without a StatsCache starts empty: this one reads the file
    assert torch.equal(second_moment(model, 1, StatsParams(n_tokens=100)), c)
    other = _docs(1)
    monkeypatch.setattr(covariance, "sample_corpus", lambda m, p, progress=None, cache=None: other)
    assert not torch.equal(second_moment(model, 1, StatsParams(n_tokens=100)), c)  # another corpus, another entry
    assert len(list(private_cache.rglob("mom2-L1-*.pt"))) == 2


@pytest.mark.slow  # the real tokenizer, through the session's SmolLM2
def test_read_corpus_cuts_a_text_file_into_documents(smollm2, tmp_path):
    text = tmp_path / "wiki.txt"
    text.write_text("The Eiffel Tower is a wrought-iron lattice tower in Paris. " * 40)
    docs = read_corpus(smollm2, text, n_tokens=100, sample_len=32)
    assert all(len(d) <= 32 for d in docs)
    assert sum(len(d) - 1 for d in docs) >= 100 > sum(len(d) - 1 for d in docs[:-1])
    assert docs[0] == smollm2.encode(text.read_text())[:32]
    folder = tmp_path / "texts"
    folder.mkdir()
    with pytest.raises(InvalidInputError, match="No text found"):
        read_corpus(smollm2, folder, n_tokens=100, sample_len=32)
