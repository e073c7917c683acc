"""The docs site's source, without building it (`make docs` builds it, strict, with the tutorials executed):
every page and tutorial is in the nav, the tutorials are committed without outputs (the site shows this
build's), the build fetches nothing, and the README is a front page whose links all resolve."""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"


class _Loader(yaml.SafeLoader):
    """mkdocs.yml may hold `!!python/name:` tags (Material's emoji options); none are needed to read the nav."""


_Loader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: None)


def _config() -> dict:
    return yaml.load((ROOT / "mkdocs.yml").read_text(), Loader=_Loader)


def _nav_files(nav) -> list[str]:
    out = []
    for item in nav:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        out += _nav_files(value) if isinstance(value, list) else [value]
    return out


def test_every_page_and_tutorial_is_in_the_nav_and_every_nav_entry_exists():
    nav = _nav_files(_config()["nav"])
    assert len(nav) == len(set(nav))
    sources = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*") if p.suffix in (".md", ".ipynb")
               and "scripts" not in p.parts and ".ipynb_checkpoints" not in p.parts}
    assert sources == set(nav), (sources ^ set(nav))


def test_one_tutorial_per_analysis_and_a_tour():
    names = {p.stem for p in (DOCS / "tutorials").glob("*.ipynb")}
    assert {"tour", "induction", "lost-in-the-middle", "facts", "rome"} <= names


def test_tutorials_are_committed_without_outputs():
    # the site must show what this build's execution printed, never a stale copy saved in the file
    for path in sorted((DOCS / "tutorials").glob("*.ipynb")):
        nb = json.loads(path.read_text())
        code = [c for c in nb["cells"] if c["cell_type"] == "code"]
        assert code, path.name
        for cell in code:
            assert cell.get("outputs") == [] and cell.get("execution_count") is None, path.name
        assert nb["metadata"]["kernelspec"]["name"] == "python3", path.name


def test_the_build_is_strict_executes_the_tutorials_and_fetches_nothing():
    cfg = _config()
    assert cfg["strict"] is True
    assert cfg["theme"]["name"] == "material" and cfg["theme"]["font"] is False  # no Google Fonts
    plugins = {next(iter(p)) if isinstance(p, dict) else p: (p[next(iter(p))] if isinstance(p, dict) else {})
               for p in cfg["plugins"]}
    assert not {"privacy", "social", "blog", "offline"} & set(plugins)
    jupyter = plugins["mkdocs-jupyter"]
    assert jupyter["execute"] is True and jupyter["allow_errors"] is False and jupyter["cache"] is False
    assert not any(key in cfg for key in ("extra_javascript", "extra_css")), "no script or style from elsewhere"


def test_readme_fits_on_a_screen_and_its_links_resolve():
    text = (ROOT / "README.md").read_text()
    assert len(text.split()) <= 1500
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    assert len(links) >= 10
    for link in links:
        assert "://" not in link, f"the README links only into the repository: {link}"
        assert (ROOT / link).exists(), link


def test_docs_links_resolve_on_github_too():
    # the site's build checks its own links; these are the same links read from the repository
    for page in DOCS.rglob("*.md"):
        if "scripts" in page.parts:
            continue
        for link in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" not in link:
                assert (page.parent / link).exists(), f"{page.relative_to(ROOT)}: {link}"


def test_readme_edit_scale_numbers_are_the_committed_rows():
    """The README's paragraph on many edits quotes experiments/results/edit-scale/.../scale.csv (Wilson 95%
    intervals over the 100 edited facts and the 38 controls); a rerun that changes a row fails here."""
    import csv

    from interp.analysis.recall.stats import wilson

    text = " ".join((ROOT / "README.md").read_text().split())
    rows = {(r["method"], int(r["n_edits"])): r for r in
            csv.DictReader((ROOT / "experiments/results/edit-scale/smollm2-135m/merged/scale.csv").open())}
    rome, ftl, ft = rows["rome", 100], rows["ft-l", 100], rows["ft", 100]

    def with_ci(p: float, n: int) -> str:
        lo, hi = wilson(round(p * n), n)
        return f"{p:.2f} [{lo:.2f}, {hi:.2f}]"

    assert f"held {with_ci(float(rome['efficacy']), 100)} of them" in text
    assert f"from 1.00 to {with_ci(float(rome['control_accuracy']), 38)}" in text
    assert f"rose only {round(100 * (float(rome['perplexity_ratio']) - 1))}%" in text
    assert f"FT-L wrote {round(100 * float(ftl['efficacy']))} of the 100" in text
    assert f"perplexity x{float(ft['perplexity_ratio']):.1f}" in text
    assert all(float(rows[m, 10]["control_accuracy"]) == 1.0 for m in ("memit", "alphaedit"))
    assert "MEMIT and AlphaEdit were unharmed at 10 edits" in text


def test_readme_held_out_rome_numbers_are_the_committed_rows():
    """The README's ROME sentence quotes the test part of known_edits (benchmarks/results/rome-eval/smollm2-135m/
    known_edits-test-20facts), each method at the row its tune part chose; a rerun that changes a row, or a tune
    run that chooses another layer, fails here."""
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import rome_eval

    text = " ".join((ROOT / "README.md").read_text().split())
    got = rome_eval.held_out_rome("smollm2-135m", 30, 20, (4_000, 16_000))
    ours, original = got["rome-ours"], got["rome-original"]
    d, lo, hi = got["difference"]
    assert f"(ours {ours['layer']}, the original {original['layer']})" in text
    assert f"on {ours['n']} held-out facts of its test part in {ours['groups']} neighbourhood groups" in text
    assert (f"S {ours['S']:.2f} [{ours['lo']:.2f}, {ours['hi']:.2f}] and {original['S']:.2f} "
            f"[{original['lo']:.2f}, {original['hi']:.2f}]") in text
    assert f"(paired difference {d:+.2f} [{lo:+.2f}, {hi:+.2f}])" in text
    assert ("a tie" in text) == (lo <= 0 <= hi)
    assert f"({100 * ours['flipped']:.0f}% against {100 * original['flipped']:.0f}%)" in text
    assert ours["flipped"] < original["flipped"] and "ours flipped fewer neighbours" in text
    assert ours["PS"] == original["PS"] and f"both carried the edit to {ours['PS']:.2f} of paraphrases" in text
    gemma = rome_eval.held_out_rome("gemma3-270m", 18, 20, (4_000, 16_000))
    g_ours, g_original = gemma["rome-ours"], gemma["rome-original"]
    gd, glo, ghi = gemma["difference"]
    assert g_ours["layer"] == g_original["layer"] and f"(both at layer {g_ours['layer']}" in text
    assert f"{g_ours['n']} test facts in {g_ours['groups']} groups) they tie too" in text and glo <= 0 <= ghi
    assert (f"S {g_ours['S']:.2f} [{g_ours['lo']:.2f}, {g_ours['hi']:.2f}] and {g_original['S']:.2f} "
            f"[{g_original['lo']:.2f}, {g_original['hi']:.2f}] (paired {gd:+.2f} [{glo:+.2f}, {ghi:+.2f}])") in text
    assert f"({100 * g_ours['flipped']:.0f}% against {100 * g_original['flipped']:.0f}%)" in text
    assert f"more paraphrases ({g_original['PS']:.2f} against {g_ours['PS']:.2f})" in text
    bench = " ".join((ROOT / "benchmarks" / "README.md").read_text().split())  # its rome_eval row quotes the same
    assert (f"ROME ours (layer {ours['layer']}) S {ours['S']:.2f} [{ours['lo']:.2f}, {ours['hi']:.2f}], the original "
            f"(layer {original['layer']}, 16k tokens) {original['S']:.2f} [{original['lo']:.2f}, "
            f"{original['hi']:.2f}], a tie, paired {d:+.2f} [{lo:+.2f}, {hi:+.2f}]") in bench
    in_sample = (ROOT / "benchmarks" / "rome-eval-smollm2-135m.md").read_text()
    lead = re.search(r"ROME, ours minus the original: S (\S+), paired 95% cluster-bootstrap interval over the same "
                     r"facts (\[\S+, \S+\])", in_sample)
    assert f"(S {lead[1]} {lead[2]}) did not hold" in text


def test_readme_default_editors_are_the_test_parts_winners_with_the_committed_rows():
    """The README's default-editor sentences: ROME's default is the original because the two tied on both models'
    test parts, and its row as it ships (C from 4k tokens) scores what the README says; MEMIT's default is ours
    because its paired interval over the original lies above 0. A rerun that changes a row, or a default that
    is not the winner, fails here."""
    import sys

    from interp.analysis.rome import MEMITParams, ROMEParams

    sys.path.insert(0, str(ROOT / "benchmarks"))
    import rome_eval

    text = " ".join((ROOT / "README.md").read_text().split())
    quoted = []
    for model, n_layers, name in (("smollm2-135m", 30, "SmolLM2"), ("gemma3-270m", 18, "Gemma-3")):
        got = rome_eval.held_out_rome(model, n_layers, 20, (4_000, 16_000))
        _, lo, hi = got["difference"]
        assert lo <= 0 <= hi, f"ROME ours and the original no longer tie on {model}'s test part"
        default = got["default"]
        quoted.append(f"{default['S']:.2f} [{default['lo']:.2f}, {default['hi']:.2f}] on {name}")
    assert ROMEParams() == ROMEParams.reference() and "So the default ROME editor is the original" in text
    assert f"scores the same on those facts: S {quoted[0]}, {quoted[1]}." in text
    memit = rome_eval.held_out_memit("smollm2-135m", 30, 20, (4_000, 16_000))
    d, lo, hi = memit["difference"]
    assert lo > 0 and MEMITParams().update == "ours" and MEMITParams().rome == ROMEParams.ours()
    assert (f"(S {memit['ours']:.2f} against {memit['original']:.2f}, paired {d:+.2f} [{lo:+.2f}, {hi:+.2f}])"
            in text)
    d100, lo100, hi100 = memit["difference-b100"]
    assert f"in one batch of 100 ({d100:+.2f} [{lo100:+.2f}, {hi100:+.2f}])" in text
    gemma = rome_eval.held_out_memit("gemma3-270m", 18, 20, (4_000, 16_000))
    d, lo, hi = gemma["difference"]
    assert lo > 0 and (f"on Gemma-3's 20 test facts (S {gemma['ours']:.2f} against {gemma['original']:.2f}, "
                       f"paired {d:+.2f} [{lo:+.2f}, {hi:+.2f}]") in text
    d10, lo10, hi10 = gemma["difference-b10"]
    assert lo10 > 0 and f"in batches of 10 {d10:+.2f} [{lo10:+.2f}, {hi10:+.2f}]" in text
    bench = " ".join((ROOT / "benchmarks" / "README.md").read_text().split())  # its rome_eval row quotes the same
    assert (f"SmolLM2 {memit['difference'][0]:+.2f} [{memit['difference'][1]:+.2f}, {memit['difference'][2]:+.2f}] "
            f"one at a time, {d100:+.2f} [{lo100:+.2f}, {hi100:+.2f}] in one batch of 100; Gemma-3 {d:+.2f} "
            f"[{lo:+.2f}, {hi:+.2f}] one at a time, {d10:+.2f} [{lo10:+.2f}, {hi10:+.2f}] in batches of 10, "
            f"{gemma['difference-b100'][0]:+.2f} [{gemma['difference-b100'][1]:+.2f}, "
            f"{gemma['difference-b100'][2]:+.2f}] in one batch of 100") in bench
    d100, lo100, hi100 = gemma["difference-b100"]
    assert lo100 > 0 and (f"in one batch of 100 test facts S {gemma['ours-b100']:.2f} against "
                          f"{gemma['original-b100']:.2f}, "
                          f"{d100:+.2f} [{lo100:+.2f}, {hi100:+.2f}])") in text


def test_the_committed_reports_edit_with_the_default_editors():
    """reports/<model>/edit-eval ran the editor the library ships (its run.json params): a change of default
    without a rerun of the reports fails here."""
    from interp.analysis.rome import ROMEParams

    fields = ("update", "decay", "kl_at", "kl_direction", "early_stop")
    for model in ("smollm2-135m", "gemma3-270m"):
        params = json.loads((ROOT / "reports" / model / "edit-eval" / "run.json").read_text())["params"]
        assert params["method"] == "rome"
        assert {k: params["rome"][k] for k in fields} == {k: getattr(ROMEParams(), k) for k in fields}, model
