"""Experiment specs: one TOML file per experiment, kept as data in ``experiments/``.

A spec names the analysis function and its parameter dataclass by import path, gives the parameters and
the seed, and says which command reproduces it. Example (``experiments/induction.toml``)::

    name = "induction"
    title = "Induction heads"
    order = 20
    analysis = "interp.analysis.induction:run_induction"
    params_class = "interp.analysis.induction:InductionParams"
    seed = 0
    command = "interp induction --model {model} --seed 0"
    description = "One paragraph a reader sees above the results."

    [params]                    # keyword arguments of params_class; tune the run-time budget here
    seq_len = 40

    [overrides."gemma3-270m"]   # optional per-model changes to [params]
    seq_len = 30

    findings = ["ablation_top_loss_increase"]  # optional: keys of the result's findings() shown as key
                                               # findings (default: all of them)

    [captions]                  # optional: figure file stem -> one sentence under the figure
    induction_scores = "Induction score of every head."

    [inputs.facts]              # optional: data loaded from a file (path relative to the spec)
    loader = "interp.analysis.facts.records:load_facts"
    path = "data/facts.json"
    limit = 10                  # first N items
    to = "params"               # "params": becomes params.facts (a tuple); "kwarg": analysis(..., facts=...)
    optional = false            # true: run without it when the file is missing

``enabled = false`` with ``disabled_reason = "..."`` keeps a spec listed but not run.

``seconds`` is the experiment's measured compute time (SmolLM2, one thread): only the progress line's
estimate of the time left reads it. The optional ``[demo]`` table is the demo profile (`make demo`,
``interp report --demo``): smaller samples so the whole report runs in minutes::

    [demo]
    seconds = 40                # the estimate at demo size
    note = "8 facts (the full protocol: 59), so every interval is about 2.7x wider."
    [demo.params]               # changed over [params] (and over any model's overrides)
    sample = 8

A spec without ``[demo.params]`` runs at full size in the demo too. The report names every changed
parameter beside each affected finding, with the note and the command of the full protocol.

A spec names code to run, so it is checked as such: ``analysis``, ``params_class`` and every input's
``loader`` must be callables of interp itself (``interp.…:name``); other modules are refused unless their
top-level package is listed in the environment variable ``INTERP_SPEC_MODULES`` (comma-separated), which
says "I trust specs to run this code". A spec's ``name`` (also its folder in the report and the cache)
must match ``^[A-Za-z0-9_-]+$``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp.errors import DataFormatError, InvalidInputError
from interp.fingerprint import file_sha256

REQUIRED = ("name", "title", "analysis")
KNOWN = {"name", "title", "order", "analysis", "params_class", "seed", "command", "description", "params",
         "overrides", "captions", "enabled", "disabled_reason", "inputs", "findings", "seconds", "demo"}
INPUT_KEYS = {"loader", "path", "limit", "to", "name", "optional"}
DEMO_KEYS = {"params", "note", "seconds"}
PROFILES = ("full", "demo")
FULL_COMMAND = "make report"  # what runs the full protocol, as reports/ holds it
NAME = re.compile(r"^[A-Za-z0-9_-]+$")
TRUSTED_ENV = "INTERP_SPEC_MODULES"


def trusted_packages() -> tuple[str, ...]:
    """Top-level packages a spec may name code from: interp, and those listed in INTERP_SPEC_MODULES."""
    extra = [p.strip() for p in os.environ.get(TRUSTED_ENV, "").split(",") if p.strip()]
    return ("interp", *extra)


def check_target(target: object, where: object, field_name: str) -> str:
    """A 'package.module:attr' naming code of a trusted package (see `trusted_packages`)."""
    if not isinstance(target, str) or not re.fullmatch(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*", target):
        raise DataFormatError(where, None, field_name, "must look like 'package.module:function'")
    top = target.split(":")[0].split(".")[0]
    if top not in trusted_packages():
        raise DataFormatError(where, None, field_name, f"names {target!r}, which is not part of interp; specs may only "
                              f"name interp's own code (set {TRUSTED_ENV}={top} to trust that package)")
    return target


@dataclass(frozen=True)
class ExperimentSpec:
    name: str
    title: str
    analysis: str  # "module:function" with the signature run_x(model, params, progress=None)
    params_class: str | None = None  # "module:Class", a (frozen) dataclass built from `params`
    params: dict = field(default_factory=dict)
    overrides: dict = field(default_factory=dict)  # model name -> params changed for that model
    seed: int = 0
    order: int = 100
    command: str = ""  # the analysis' own CLI equivalent; "{model}" is replaced by the model name
    description: str = ""
    captions: dict = field(default_factory=dict)
    inputs: dict = field(default_factory=dict)  # name -> {"loader", "path", "limit", "to", "name"}
    findings: tuple[str, ...] = ()  # keys of the result's findings() shown as key findings (default: all)
    enabled: bool = True
    disabled_reason: str = ""
    path: Path | None = None
    seconds: float | None = None  # measured compute time at this size (the progress line's estimate)
    demo: dict = field(default_factory=dict)  # the [demo] table: params, note, seconds
    profile: str = "full"  # "demo": `for_profile("demo")` applied [demo.params]
    full: ExperimentSpec | None = None  # the demo profile's record of the spec at the full protocol

    def params_for(self, model_name: str) -> dict:
        """[params] with this model's overrides applied."""
        return {**self.params, **self.overrides.get(model_name, {})}

    def for_profile(self, profile: str) -> ExperimentSpec:
        """This spec as the profile runs it: "full" as written, "demo" with [demo.params] over [params] (they
        win over a model's overrides too); other parameters and the seed stay."""
        if profile not in PROFILES:
            raise InvalidInputError(f"Unknown profile {profile!r}; known: {', '.join(PROFILES)}.")
        small = self.demo.get("params", {})
        if profile == "full" or self.profile == "demo":
            return self
        if not small:  # no smaller sizes: the demo runs (and reuses) the full protocol's experiment,
            if "seconds" in self.demo:  # with the estimate measured in a demo run where the spec gives one
                return dataclasses.replace(self, seconds=self.demo["seconds"])
            return self
        overrides = {m: {k: v for k, v in o.items() if k not in small} for m, o in self.overrides.items()}
        return dataclasses.replace(self, params={**self.params, **small}, overrides=overrides, profile="demo",
                                   seconds=self.demo.get("seconds", self.seconds), full=self)

    def demo_changes(self, model_name: str) -> dict[str, tuple[Any, Any]]:
        """Each parameter the demo profile changed for this model: name -> (demo value, full value)."""
        if self.full is None:
            return {}
        full, mine = dict(_flat(self.full.params_for(model_name))), dict(_flat(self.params_for(model_name)))
        out = {}
        for key, _ in _flat(self.demo.get("params", {})):
            was = full[key] if key in full else self._default(key)
            if mine[key] != was:
                out[key] = (mine[key], was)
        return out

    def _default(self, dotted: str) -> Any:
        """The params class' default of a (dotted) parameter the spec leaves unset."""
        value: Any = import_object(self.params_class, self) if self.params_class else None
        for part in dotted.split("."):
            if isinstance(value, type) and dataclasses.is_dataclass(value):
                f = {f.name: f for f in dataclasses.fields(value)}.get(part)
                if f is None:
                    return None
                value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
            else:
                value = getattr(value, part, None)
        return value

    def run_command(self, model_name: str) -> str:
        """The exact command that reproduces this experiment's numbers (same spec, same cache key)."""
        return f"interp run {self.name} --model {model_name}" + (" --demo" if self.profile == "demo" else "")

    def cli_command(self, model_name: str) -> str:
        """The analysis' own CLI command (the full protocol's sizes: none at the demo's)."""
        if self.profile == "demo":
            return ""
        return self.command.replace("{model}", model_name) if self.command else ""


def _flat(params: dict, prefix: str = ""):
    """(dotted name, value) of every leaf of nested parameter tables: rome.stats.n_tokens."""
    for key, value in params.items():
        if isinstance(value, dict):
            yield from _flat(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def default_dir() -> Path:
    """The repository's experiments/ folder (next to the interp package in a source checkout)."""
    return Path(__file__).resolve().parents[2] / "experiments"


def _from_registry(data: dict) -> None:
    """A spec may name its analysis by its registered name (``analysis = "induction"``, see
    `interp.analysis.registry`): the entry point and, unless the spec gives one, the params class come from there."""
    from interp.analysis.registry import ANALYSES

    entry = ANALYSES.get(data["analysis"])
    if entry is not None:
        data["analysis"] = entry.run
        data.setdefault("params_class", entry.params)


def parse_spec(path: Path) -> ExperimentSpec:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, None, None, f"is not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise DataFormatError(path, None, None, f"cannot be read ({exc.strerror or exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise DataFormatError(path, None, None, f"not valid TOML ({exc})") from None
    for key in REQUIRED:
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise DataFormatError(path, None, key, "is required and must be a non-empty string")
    unknown = sorted(set(data) - KNOWN)
    if unknown:
        raise DataFormatError(path, None, unknown[0], f"is not a spec field (known: {', '.join(sorted(KNOWN))})")
    if data["name"] != path.stem:
        raise DataFormatError(path, None, "name", f"must match the file name ({path.stem!r})")
    if not NAME.fullmatch(data["name"]):
        raise DataFormatError(path, None, "name", "may hold only letters, digits, '_' and '-'")
    _from_registry(data)
    check_target(data["analysis"], path, "analysis")
    if data.get("params_class") is not None:
        check_target(data["params_class"], path, "params_class")
    for key, kind in (("seed", int), ("order", int), ("command", str), ("description", str), ("enabled", bool),
                      ("disabled_reason", str), ("findings", list)):
        if key in data and (not isinstance(data[key], kind) or (kind is int and isinstance(data[key], bool))):
            what = {list: "a list", int: "an integer", str: "a string", bool: "true or false"}[kind]
            raise DataFormatError(path, None, key, f"must be {what}")
    for key in ("params", "overrides", "captions", "inputs"):
        if not isinstance(data.get(key, {}), dict):
            raise DataFormatError(path, None, key, "must be a table")
    for name, inp in data.get("inputs", {}).items():
        if not isinstance(inp, dict) or not {"loader", "path"} <= set(inp) or set(inp) - INPUT_KEYS:
            raise DataFormatError(path, None, f"inputs.{name}", "needs 'loader' and 'path' (and optionally 'limit', "
                                  "'to' = params|kwarg, 'name')")
        check_target(inp["loader"], path, f"inputs.{name}.loader")
        limit = inp.get("limit")
        if limit is not None and (not isinstance(limit, int) or isinstance(limit, bool) or limit < 1):
            raise DataFormatError(path, None, f"inputs.{name}.limit", "must be a whole number of at least 1")
    _check_budget(path, data)
    return ExperimentSpec(
        name=data["name"], title=data["title"], analysis=data["analysis"],
        params_class=data.get("params_class"), params=dict(data.get("params", {})),
        overrides={k: dict(v) for k, v in data.get("overrides", {}).items()}, seed=int(data.get("seed", 0)),
        order=int(data.get("order", 100)), command=data.get("command", ""),
        description=data.get("description", "").strip(), captions=dict(data.get("captions", {})),
        inputs={k: dict(v) for k, v in data.get("inputs", {}).items()},
        findings=tuple(str(f) for f in data.get("findings", [])),
        enabled=bool(data.get("enabled", True)), disabled_reason=data.get("disabled_reason", ""), path=path,
        seconds=data.get("seconds"), demo={k: dict(v) if k == "params" else v for k, v in data.get("demo", {}).items()},
    )


def _check_budget(path: Path, data: dict) -> None:
    """`seconds` and the [demo] table: a non-negative number, a table of params, a string note."""
    def seconds_ok(value: object) -> bool:
        return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0

    if "seconds" in data and not seconds_ok(data["seconds"]):
        raise DataFormatError(path, None, "seconds", "must be a number of seconds (0 or more)")
    demo = data.get("demo", {})
    if not isinstance(demo, dict) or set(demo) - DEMO_KEYS:
        raise DataFormatError(path, None, "demo", f"must be a table of {', '.join(sorted(DEMO_KEYS))}")
    if not isinstance(demo.get("params", {}), dict):
        raise DataFormatError(path, None, "demo.params", "must be a table")
    if not isinstance(demo.get("note", ""), str):
        raise DataFormatError(path, None, "demo.note", "must be a string")
    if "seconds" in demo and not seconds_ok(demo["seconds"]):
        raise DataFormatError(path, None, "demo.seconds", "must be a number of seconds (0 or more)")


def load_specs(directory: Path | None = None, profile: str = "full") -> list[ExperimentSpec]:
    """Every ``*.toml`` spec in the folder, in report order, as `profile` ("full" or "demo") runs it."""
    directory = Path(directory) if directory is not None else default_dir()
    if not directory.is_dir():
        raise InvalidInputError(f"No experiments folder at {directory}.")
    specs = [parse_spec(p).for_profile(profile) for p in sorted(directory.glob("*.toml"))]
    return sorted(specs, key=lambda s: (s.order, s.name))


def select(specs: list[ExperimentSpec], names: list[str] | None) -> list[ExperimentSpec]:
    """The named specs (in report order); an unknown name lists the known ones."""
    if not names:
        return specs
    known = {s.name: s for s in specs}
    missing = [n for n in names if n not in known]
    if missing:
        raise InvalidInputError(f"Unknown experiment {missing[0]!r}; known: {', '.join(known)}.")
    return [s for s in specs if s.name in set(names)]


def load_inputs(spec: ExperimentSpec) -> tuple[dict, dict, dict]:
    """(into params, into the call as keyword arguments, a fingerprint of each input for the cache key)."""
    to_params, kwargs, digest = {}, {}, {}
    for name, inp in spec.inputs.items():
        path = Path(inp["path"])
        if not path.is_absolute() and spec.path is not None:
            path = spec.path.parent / path
        if not path.exists():
            if inp.get("optional"):
                digest[name] = {"missing": str(inp["path"])}  # run without it (and key it so)
                continue
            raise InvalidInputError(f"Experiment {spec.name}: input file {path} does not exist.")
        items = import_object(inp["loader"], spec)(path)
        limit = inp.get("limit")
        items = tuple(items)[:limit] if limit else tuple(items)
        (kwargs if inp.get("to", "params") == "kwarg" else to_params)[inp.get("name", name)] = items
        digest[name] = {"sha256": file_sha256(path), "limit": limit,
                        "loader": inp["loader"], "to": inp.get("to", "params")}
    return to_params, kwargs, digest


def build_params(spec: ExperimentSpec, model_name: str, extra: dict | None = None) -> Any:
    """The params object the analysis takes: params_class(**params), lists turned into tuples, tables into
    nested dataclasses where the field's default is one; `extra` (loaded inputs) added."""
    values = {**spec.params_for(model_name), **(extra or {})}
    if spec.params_class is None:
        return dict(values)
    cls = import_object(spec.params_class, spec)
    if dataclasses.is_dataclass(cls) and "seed" in {f.name for f in dataclasses.fields(cls)}:
        values.setdefault("seed", spec.seed)  # the spec's seed reaches analyses that take one
    try:
        return _build(cls, values)
    except TypeError as exc:
        raise DataFormatError(spec.path or spec.name, None, "params",
                              f"does not fit {spec.params_class}: {exc}") from exc


def _build(cls: type, values: dict) -> Any:
    fields = {f.name: f for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else {}
    clean = {}
    for key, value in values.items():
        f = fields.get(key)
        default = None
        if f is not None and f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        elif f is not None and f.default is not dataclasses.MISSING:
            default = f.default
        if isinstance(value, dict) and dataclasses.is_dataclass(default):
            value = _build(type(default), {**value})
        elif isinstance(value, list):
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        clean[key] = value
    return cls(**clean)


def import_object(target: str, spec: ExperimentSpec | None = None) -> Any:
    """'package.module:attr' -> the object; a missing one is a clear error naming the spec."""
    import importlib

    where = spec.path if spec is not None and spec.path is not None else (spec.name if spec else target)
    try:
        check_target(target, where, "analysis")  # also for specs built in code, not parsed from a file
    except DataFormatError as exc:
        raise InvalidInputError(str(exc)) from None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise InvalidInputError(f"Experiment {where}: module {module_name!r} is not available ({exc}).") from exc
    if not hasattr(module, attr):
        raise InvalidInputError(f"Experiment {where}: {module_name} has no {attr!r}.")
    return getattr(module, attr)
