"""Property-based tests (hypothesis) of interp's parsers (issue 33): whatever a fact file, an experiment spec,
an edit file or a command-line value holds, the parser gives a value or the project's one-sentence error (an
InterpError), never another exception. Inputs are both arbitrary (any bytes, any JSON) and near-valid (a good
record or file with one field replaced by anything), so the checks past the first one are reached too.

Bounded: a fixed number of examples each, no deadline (CPU time varies with the machine's load),
derandomized so a failure reproduces.
"""

from __future__ import annotations

import gzip
import json
import math
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st

from interp.errors import InterpError

# 150 generated inputs per parser: make test's slow tier, not the one-minute fast one
pytestmark = pytest.mark.slow

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# any text, lone surrogates included (JSON's "\ud800" decodes to one)
TEXT = st.text(st.characters(codec=None), max_size=40)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT
JSON_VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12)


def one_sentence(exc: InterpError) -> None:
    message = str(exc)
    assert message.strip() and "Traceback" not in message, message


def replace_at(value, path: list, new):
    """`value` with the item at `path` (keys or indices, the last one may be new) replaced by `new`, or removed
    when `new` is the REMOVE marker."""
    if not path:
        return {} if new is REMOVE else new
    head, rest = path[0], path[1:]
    if isinstance(value, dict):
        copy = dict(value)
        if rest and head in copy:
            copy[head] = replace_at(copy[head], rest, new)
        elif new is REMOVE:
            copy.pop(head, None)
        else:
            copy[head] = new
        return copy
    if isinstance(value, list) and value:
        copy = list(value)
        i = head % len(copy) if isinstance(head, int) else 0
        copy[i] = replace_at(copy[i], rest, new) if rest else new
        return [x for x in copy if x is not REMOVE]
    return value


REMOVE = object()


def paths_of(value, prefix=()) -> list[tuple]:
    """Every key path into a JSON value (the places a mutation can hit)."""
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += paths_of(v, prefix + (k,))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += paths_of(v, prefix + (i,))
    return out


@st.composite
def mutated(draw, valid):
    """`valid` with one place replaced by any JSON value (or removed), or a new key added."""
    places = paths_of(valid)
    path = list(draw(st.sampled_from(places)))
    if draw(st.booleans()) and isinstance(valid, dict):
        path = path + [draw(TEXT)]
    return replace_at(valid, path, draw(JSON_VALUES | st.just(REMOVE)))


# -- fact files (interp/analysis/facts/records.py) ------------------------------------------------------------
FACT = {"case_id": 7, "requested_rewrite": {"prompt": "The {} is in", "subject": "Louvre", "relation_id": "P1",
                                            "target_true": {"str": "Paris", "id": "Q1"},
                                            "target_new": {"str": "Rome", "id": "Q2"}},
        "paraphrase_prompts": ["Where is the Louvre?"], "neighborhood_prompts": ["The Eiffel Tower is in"]}


def load_facts_text(content: bytes, suffix: str):
    from interp.analysis.facts.records import load_facts

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"facts{suffix}"
        path.write_bytes(gzip.compress(content) if suffix.endswith(".gz") else content)
        try:
            return load_facts(path)
        except InterpError as exc:
            one_sentence(exc)
            return None


@FUZZ
@given(st.binary(max_size=300), st.sampled_from([".json", ".jsonl", ".json.gz"]))
def test_fact_files_of_any_bytes(content, suffix):
    load_facts_text(content, suffix)


@FUZZ
@given(st.lists(mutated(FACT), min_size=1, max_size=3), st.booleans())
def test_fact_files_with_a_field_replaced(records, as_array):
    text = json.dumps(records) if as_array else "\n".join(json.dumps(r) for r in records)
    loaded = load_facts_text(text.encode(), ".json" if as_array else ".jsonl")
    if loaded is not None:
        assert len(loaded) == len(records)
        assert all(r.prompt.count("{}") == 1 and r.subject.strip() for r in loaded)


# -- experiment specs (interp/report/specs.py) ----------------------------------------------------------------
def toml_value(value) -> str | None:
    """A TOML literal for a JSON value (None where TOML has none)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if not isinstance(value, float) or math.isfinite(value) else None
    if isinstance(value, str):
        return json.dumps(value)  # a JSON string is a TOML basic string
    if isinstance(value, list):
        items = [toml_value(v) for v in value]
        return None if None in items else "[" + ", ".join(items) + "]"
    items = [(json.dumps(k), toml_value(v)) for k, v in value.items()]
    return None if any(v is None for _, v in items) else "{" + ", ".join(f"{k} = {v}" for k, v in items) + "}"


SPEC = {"name": "alpha", "title": "Alpha", "analysis": "interp.analysis.induction:run_induction", "order": 10,
        "seed": 0, "description": "A spec.", "params": {"batch": 2}, "findings": ["score"], "enabled": True,
        "inputs": {"facts": {"loader": "interp.analysis.facts.records:load_facts", "path": "data/facts.json"}},
        "demo": {"params": {"batch": 1}, "note": "smaller"}}


def parse_spec_text(text: bytes):
    from interp.report.specs import parse_spec

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alpha.toml"
        path.write_bytes(text)
        try:
            return parse_spec(path)
        except InterpError as exc:
            one_sentence(exc)
            return None


@FUZZ
@given(st.binary(max_size=300) | TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_specs_of_any_bytes(content):
    parse_spec_text(content)


@FUZZ
@given(mutated(SPEC))
def test_specs_with_a_field_replaced(data):
    if not isinstance(data, dict):
        return
    lines = [f"{json.dumps(k)} = {v}" for k, v in ((k, toml_value(v)) for k, v in data.items()) if v is not None]
    spec = parse_spec_text("\n".join(lines).encode("utf-8", "surrogatepass"))
    if spec is not None:
        assert spec.name == "alpha" and isinstance(spec.title, str) and isinstance(spec.params, dict)


# -- edit files (interp/analysis/rome/editfile.py) -------------------------------------------------------------
META = {"format": None, "model": "tiny", "method": "rome", "created": "2026-01-01T00:00:00",
        "layers": [{"layer": 1, "rank": 1, "base_weights_sha256": "0" * 64}],
        "requests": [{"prompt": "The {} is in", "subject": "Louvre", "target_new": "Rome", "target_true": "Paris",
                      "case_id": 1}], "info": {}}
SHAPES = st.lists(st.integers(0, 5), min_size=0, max_size=3)
DTYPES = st.sampled_from([torch.float32, torch.float16, torch.int64, torch.bool])


def load_edit_bytes(data: bytes):
    from interp.analysis.rome import Edit

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.edit"
        path.write_bytes(data)
        try:
            return Edit.load(path)
        except InterpError as exc:
            one_sentence(exc)
            return None


@st.composite
def factors(draw):
    """The tensors of a one-layer edit: usually well formed, sometimes any shape, dtype or value."""
    if draw(st.booleans()):
        left, right = torch.randn(8, 1), torch.randn(1, 6)
        if draw(st.booleans()):
            left[0, 0] = draw(st.sampled_from([math.nan, math.inf, 1e30]))
        return {"0.left": left, "0.right": right}
    out = {}
    for name in draw(st.lists(st.sampled_from(["0.left", "0.right", "1.left", "x"]), max_size=3, unique=True)):
        out[name] = torch.zeros(draw(SHAPES), dtype=draw(DTYPES))
    return out


@FUZZ
@given(st.binary(max_size=200))
def test_edit_files_of_any_bytes(data):
    load_edit_bytes(data)


@FUZZ
@given(meta=mutated(META), tensors=factors(), hashed=st.booleans(), metadata_is_json=st.booleans())
def test_edit_files_with_a_field_replaced(meta, tensors, hashed, metadata_is_json):
    from safetensors.torch import save

    from interp.analysis.rome.editfile import FORMAT, factors_hash

    if isinstance(meta, dict) and meta.get("format", 0) is None:  # the format field was not the one replaced
        if hashed:  # the current format: the factors' hash in the metadata, as Edit.save writes it
            meta = meta | {"format": FORMAT, "factors_sha256": factors_hash(tensors)}
        else:
            meta = meta | {"format": "interp-edit/1"}
    text = json.dumps(meta) if metadata_is_json else str(meta)
    edit = load_edit_bytes(save({k: v.contiguous() for k, v in tensors.items()}, metadata={"interp_edit": text}))
    if edit is not None:
        assert edit.deltas and edit.requests
        assert all(torch.isfinite(d.left).all() and torch.isfinite(d.right).all() for d in edit.deltas)


def test_the_near_valid_inputs_are_valid_before_a_field_is_replaced():
    """So a replaced field is what each parser refuses, and every check after the first is reached."""
    from safetensors.torch import save

    from interp.analysis.rome.editfile import FORMAT, factors_hash

    tensors = {"0.left": torch.randn(8, 1), "0.right": torch.randn(1, 6)}
    hashed = META | {"format": FORMAT, "factors_sha256": factors_hash(tensors)}
    for meta in (META | {"format": "interp-edit/1"}, hashed):
        assert load_edit_bytes(save(tensors, metadata={"interp_edit": json.dumps(meta)})) is not None
    assert len(load_facts_text(json.dumps([FACT, FACT]).encode(), ".json")) == 2
    spec = "\n".join(f"{json.dumps(k)} = {toml_value(v)}" for k, v in SPEC.items())
    assert parse_spec_text(spec.encode()).params == {"batch": 2}


# -- the command line's option parsers (cli/checks.py, cli/common.py, interp/memory.py) ---------------------
@FUZZ
@given(st.none() | st.integers(), st.integers(-5, 5))
def test_at_least(value, least):
    from cli.checks import at_least

    try:
        at_least("--n", value, least)
        assert value is None or value >= least
    except InterpError as exc:
        one_sentence(exc)
        assert value < least


@FUZZ
@given(st.none() | st.floats(), st.none() | st.floats(allow_nan=False, allow_infinity=False),
       st.none() | st.floats(allow_nan=False, allow_infinity=False), st.booleans())
def test_finite(value, low, high, low_open):
    from cli.checks import finite

    try:
        finite("--x", value, low, high, low_open)
        assert value is None or math.isfinite(value)
    except InterpError as exc:
        one_sentence(exc)


@FUZZ
@given(TEXT | st.from_regex(r"\s*[0-9.e]{1,12}\s*[kKmMgGtT]?[iI]?[bB]?\s*", fullmatch=True))
def test_memory_sizes(text):
    from interp.memory import parse_size

    try:
        assert parse_size(text) >= 0
    except InterpError as exc:
        one_sentence(exc)


@FUZZ
@given(st.sampled_from(["missing", "file", "empty", "full", "link", "link-inside"]), st.booleans())
def test_out_folders(kind, force):
    from cli.common import prepare_out

    with tempfile.TemporaryDirectory() as tmp:
        root, elsewhere = Path(tmp), Path(tmp) / "elsewhere"
        elsewhere.mkdir()
        out = root / "out"
        if kind == "file":
            out.write_text("x")
        elif kind in ("empty", "full", "link-inside"):
            out.mkdir()
        if kind == "full":
            (out / "a.txt").write_text("x")
        if kind == "link":
            out.symlink_to(elsewhere, target_is_directory=True)
        if kind == "link-inside":
            (out / "l").symlink_to(elsewhere / "x")
        try:
            assert prepare_out(out, force) == out and out.is_dir() and not out.is_symlink()
            assert kind in ("missing", "empty") or (kind == "full" and force)
        except InterpError as exc:
            one_sentence(exc)
            assert kind in ("file", "link", "link-inside") or (kind == "full" and not force)
        assert list(elsewhere.iterdir()) == []


@FUZZ
@given(st.binary(max_size=100), st.booleans())
def test_text_sources(content, as_folder):
    from cli.checks import text_source

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "corpus"
        if as_folder:
            path.mkdir()
            (path / "a.txt").write_bytes(content)
        else:
            path.write_bytes(content)
        try:
            text_source("--text", path)
            assert content.strip()
        except InterpError as exc:
            one_sentence(exc)
            assert not content.strip()
