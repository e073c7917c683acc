"""The comparison page of several models' reports: `interp report --model a,b` writes it beside them.

    reports/
      smollm2-135m/index.html ...   gemma3-270m/index.html ...
      comparison.html  comparison.md

It reads only the report folders (their manifest.json and each experiment's findings.json), so it can be
rewritten without any model. Per experiment: every key finding (the spec's chosen findings) as one row,
the value of each model side by side with its units, then each model's sentence, and the experiment's
first figure of each model next to each other. Models come in the order given.

Both files carry a mark (`MARK`) saying interp wrote them: a rerun replaces such a file, but never a file
without the mark (the user's own; only ``overwrite``, ``--force``, allows it) and never a symbolic link, which
is refused rather than followed. Files are written atomically (a temporary file renamed into place).
"""

from __future__ import annotations

import json
from pathlib import Path

from interp import markdown
from interp.errors import InterpError
from interp.jsonio import write_text_atomic
from interp.report.assets import CSS
from interp.report.render import _img, key_findings, load_entries

MARK = "interp report: comparison page"  # in both files; what makes them interp's own to replace
NAMES = ("comparison.md", "comparison.html")


_esc = markdown.esc  # the one HTML escaper (quotes too: titles sit in single-quoted attributes)


def _value(f: dict | None) -> str:
    if f is None or f.get("value") is None:
        return "–"
    v = f["value"]
    if isinstance(v, float):
        return f"{v:.3g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def gather(folders: list[Path]) -> tuple[list[dict], list[dict]]:
    """(one record per model: name, config, hash, seconds; one record per experiment: title, findings by
    key -> per-model finding or None, the first figure's path per model)."""
    models, experiments = [], {}
    for folder in folders:
        manifest = json.loads((folder / "manifest.json").read_text())
        m = manifest["model"]
        cfg = m.get("config", {})
        models.append({"name": m["name"], "folder": folder, "hash": m["hash"], "config": cfg,
                       "seconds": sum(e.get("seconds") or 0 for e in manifest["experiments"])})
        for e in load_entries(folder, manifest):
            exp = experiments.setdefault(e["name"], {"name": e["name"], "title": e["title"], "findings": {},
                                                     "figures": {}, "status": {}})
            exp["status"][m["name"]] = e["status"]
            if e["status"] not in ("computed", "cached"):
                continue
            for f in key_findings(e):
                exp["findings"].setdefault(f["key"], {})[m["name"]] = f
            if e.get("figures"):
                exp["figures"][m["name"]] = folder / e["folder"] / e["figures"][0]
    return models, list(experiments.values())


CONFIG_ROWS = (("layers", "n_layers"), ("d_model", "d_model"), ("heads", "n_heads"), ("d_mlp", "d_mlp"),
               ("vocabulary", "d_vocab"))


def render_markdown(root: Path, models: list[dict], experiments: list[dict]) -> str:
    names = [m["name"] for m in models]
    out = [f"<!-- {MARK} -->", "# interp: " + " vs ".join(names), "",
           "Key figures of each model's report side by side (each report: " +
           ", ".join(f"[{m['name']}]({m['folder'].relative_to(root)}/index.html)" for m in models) + ").", "",
           "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for label, key in CONFIG_ROWS:
        out.append(f"| {label} | " + " | ".join(str(m["config"].get(key, "")) for m in models) + " |")
    out.append("| compute seconds | " + " | ".join(f"{m['seconds']:.0f}" for m in models) + " |")
    out.append("| weights hash | " + " | ".join(f"`{m['hash'][:16]}`" for m in models) + " |")
    for exp in experiments:
        out += ["", f"## {exp['title']}", ""]
        missing = [f"{n}: {s}" for n, s in exp["status"].items() if s not in ("computed", "cached")]
        if missing:
            out += ["Not in every report (" + "; ".join(missing) + ").", ""]
        if exp["findings"]:
            out += ["| finding | units | " + " | ".join(names) + " |", "|---|---|" + "---:|" * len(names)]
            for key, per in exp["findings"].items():
                units = next(iter(per.values()))["units"]
                out.append(f"| {key} | {units} | " + " | ".join(_value(per.get(n)) for n in names) + " |")
            out.append("")
            for per in exp["findings"].values():
                for n in names:
                    if n in per:
                        out.append(f"- **{n}**: {per[n]['text']}")
    return "\n".join(out).rstrip() + "\n"


def render_html(root: Path, models: list[dict], experiments: list[dict]) -> str:
    names = [m["name"] for m in models]
    head = "".join(f'<th><a href="{_esc(m["folder"].relative_to(root))}/index.html">{_esc(m["name"])}</a></th>'
                   for m in models)
    cfg = "".join(f"<tr><td>{label}</td>" + "".join(f"<td class='num'>{_esc(m['config'].get(key, ''))}</td>"
                                                   for m in models) + "</tr>" for label, key in CONFIG_ROWS)
    cfg += ("<tr><td>compute seconds</td>" + "".join(f"<td class='num'>{m['seconds']:.0f}</td>" for m in models)
            + "</tr>")
    cfg += ("<tr><td>weights hash</td>" + "".join(f"<td><code>{_esc(m['hash'][:16])}</code></td>" for m in models)
            + "</tr>")
    sections = "".join(_section(exp, names) for exp in experiments)
    toc = "".join(f'<li><a href="#{_esc(e["name"])}">{_esc(e["title"])}</a></li>' for e in experiments)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{MARK}"><title>interp: {_esc(' vs '.join(names))}</title><style>{CSS}
.pair {{ display: grid; grid-template-columns: repeat({len(names)}, 1fr); gap: 0.8rem; }}</style></head>
<body><main>
<header class="top"><h1>interp: {_esc(' vs '.join(names))}</h1>
<p class="meta">The key figures of each model's report side by side; every number links to its report.</p></header>
<div class="tablewrap"><table><thead><tr><th></th>{head}</tr></thead><tbody>{cfg}</tbody></table></div>
<nav class="toc"><strong>Experiments</strong><ol>{toc}</ol></nav>
{sections}
</main></body></html>
"""


def _section(exp: dict, names: list[str]) -> str:
    missing = [f"{n}: {s}" for n, s in exp["status"].items() if s not in ("computed", "cached")]
    note = f'<p class="muted">Not in every report ({_esc("; ".join(missing))}).</p>' if missing else ""
    rows = "".join(
        f"<tr><td>{_esc(key)}</td><td>{_esc(next(iter(per.values()))['units'])}</td>"
        + "".join(f"<td class='num' title='{_esc(per[n]['text']) if n in per else ''}'>"
                  f"{_esc(_value(per.get(n)))}</td>" for n in names) + "</tr>"
        for key, per in exp["findings"].items())
    table = ("<div class='tablewrap'><table><thead><tr><th>finding</th><th>units</th>"
             + "".join(f"<th>{_esc(n)}</th>" for n in names)
             + f"</tr></thead><tbody>{rows}</tbody></table></div>") if rows else ""
    sentences = "".join(f"<li><strong>{_esc(n)}</strong>: {markdown.inline(per[n]['text'])}</li>"
                        for per in exp["findings"].values() for n in names if n in per)
    figs = "".join(f"<figure>{_img(exp['figures'][n], n) if n in exp['figures'] else ''}"
                   f"<figcaption>{_esc(n)}</figcaption></figure>" for n in names)
    return (f'<section id="{_esc(exp["name"])}"><h2>{_esc(exp["title"])}</h2>{note}{table}'
            f"<ul>{sentences}</ul>" + (f'<div class="pair">{figs}</div>' if exp["figures"] else "") + "</section>")


def _ours(path: Path) -> bool:
    with open(path, "rb") as f:
        return MARK.encode() in f.read(4096)


def check_targets(root: Path, overwrite: bool = False) -> None:
    """Refuse (one sentence) to write the comparison where it would follow a link or replace a file interp
    did not write (unless `overwrite`)."""
    for name in NAMES:
        path = Path(root) / name
        if path.is_symlink():
            raise InterpError(f"{path} is a symbolic link; interp writes the comparison only as its own file "
                              "(remove the link or choose another --out).")
        if path.exists() and not path.is_file():
            raise InterpError(f"{path} exists and is not a file; move it or choose another --out.")
        if path.exists() and not overwrite and not _ours(path):
            raise InterpError(f"{path} is not a comparison interp wrote, and interp never replaces files it did not "
                              "write; move it, choose another --out or pass --force.")


def write_comparison(root: Path, folders: list[Path], overwrite: bool = False) -> tuple[Path, Path]:
    """Write root/comparison.md and root/comparison.html from the report folders (in the order given)."""
    root = Path(root)
    check_targets(root, overwrite)
    models, experiments = gather([Path(f) for f in folders])
    md, page = root / "comparison.md", root / "comparison.html"
    write_text_atomic(md, render_markdown(root, models, experiments))
    write_text_atomic(page, render_html(root, models, experiments))
    return md, page
