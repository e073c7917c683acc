"""The lab's fixtures (a Lab over the tiny random llama) for the fuzzer, shared with tests/serve."""

from tests.serve.conftest import _threads, lab, tiny_cache  # noqa: F401 - pytest fixtures by name
