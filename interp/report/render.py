"""Render a report folder (manifest.json + one folder per experiment) into report.md and index.html.

Rendering reads only the folder, so a committed report can be re-rendered without the model. index.html
is self-contained: figures are base64 PNGs, tables are inline and sortable, the attention viewer's data
is embedded JSON, and all CSS/JS is inline. Every claim sits beside the command that reproduces it.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pandas as pd

from interp import markdown
from interp.jsonio import write_text_atomic
from interp.report.assets import CSS, JS

MAX_ROWS = 300  # rows of a table shown inline (the CSV holds them all)


_esc = markdown.esc  # the one HTML escaper: element text and quoted attributes alike


def script_json(data: object) -> str:
    """JSON to embed inside <script>: '<', '>' and '&' as \\u escapes, so no text in the data (a token
    '</script>', '<!--<script>') can end the element or open a comment; JSON.parse reads it back unchanged."""
    text = json.dumps(data, separators=(",", ":"), allow_nan=False)
    return (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
            .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))


def inside(folder: Path, name: str) -> Path:
    """folder/name, refused when the name (from a manifest or run.json) points outside the folder."""
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()):
        from interp.errors import InterpError

        raise InterpError(f"The report names {name!r}, which lies outside its folder {folder}; it is not rendered.")
    return path


def caption(entry: dict, figure: str) -> str:
    stem = Path(figure).stem
    return entry.get("captions", {}).get(stem) or stem.replace("_", " ").capitalize() + "."


def key_findings(entry: dict) -> list[dict]:
    """The findings (text, value, units, command) the entry's spec names by key, in that order; all of the
    result's findings when the spec names none."""
    found = entry.get("findings_data") or []
    wanted = entry.get("findings") or []
    if not wanted:
        return found
    by_key = {f["key"]: f for f in found}
    return [by_key[k] for k in wanted if k in by_key]


PENDING = {"running": "Running now: this page is rewritten when it finishes.",
           "queued": "Queued: it runs after the experiments above; this page is rewritten as each one finishes."}
REFRESH_SECONDS = 15  # an unfinished report's page reloads itself this often


def pending(manifest: dict) -> bool:
    """Whether the report is still being written (an experiment running or queued)."""
    return any(e["status"] in PENDING for e in manifest["experiments"])


def demo_sizes(entry: dict) -> str:
    """'sample 8 (full protocol: 60), samples 3 (full protocol: 10)' for an experiment run at demo size."""
    changes = (entry.get("demo") or {}).get("changes", {})
    return ", ".join(f"{k} {_value(v[0])} (full protocol: {_value(v[1])})" for k, v in changes.items())


def demo_text(entry: dict, full_command: str) -> str:
    """The sentence that goes with every finding and section of an experiment run at demo size (Markdown)."""
    note = (entry.get("demo") or {}).get("note", "")
    return (f"Demo size: {demo_sizes(entry)}." + (f" {note}" if note else "")
            + f" The full protocol: `{full_command}`.")


def _value(value: object) -> str:
    return ", ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def _status_text(e: dict) -> str:
    return PENDING.get(e["status"]) or f"Not in this report ({e['status']}): {e.get('error') or 'no reason given'}"


def load_entries(report_dir: Path, manifest: dict) -> list[dict]:
    """The manifest's experiment records, each with its summary text (and viewer data) read in."""
    entries = []
    for exp in manifest["experiments"]:
        entry = dict(exp)
        folder = report_dir / exp["folder"] if exp.get("folder") else None
        entry["summary_md"] = (folder / "summary.md").read_text() if folder and (folder / "summary.md").exists() else ""
        findings = folder / "findings.json" if folder else None
        entry["findings_data"] = json.loads(findings.read_text()) if findings and findings.exists() else []
        viewer = folder / "viewer.json" if folder else None
        entry["viewer"] = json.loads(viewer.read_text()) if viewer and viewer.exists() else None
        entries.append(entry)
    return entries


# ------------------------------------------------------------------------------------------------ markdown


def render_markdown(report_dir: Path, manifest: dict) -> str:
    model = manifest["model"]["name"]
    entries = load_entries(report_dir, manifest)
    done = [e for e in entries if e["status"] in ("computed", "cached")]
    full = manifest.get("full_command", "make report")
    out = [f"# interp report: {model}", "",
           f"Model hash `{manifest['model']['hash'][:16]}`, generated {manifest['created']}; {_timing(manifest)}. "
           f"Reproduce everything: `{manifest['command']}`.", "",
           "Open `index.html` for the interactive version (sortable tables, attention-pattern viewer).", ""]
    out += [f"**{line}**" for line in _banner(manifest, entries)]
    if done:
        out += ["## Key findings", ""]
        for e in done:
            for f in key_findings(e):
                demo = f" *{demo_text(e, full)}*" if e.get("demo") else ""
                out.append(f"- {f['text']}{demo} ([{e['name']}](#{e['name']}); `{f['command'] or e['run_command']}`)")
        out.append("")
    for e in entries:
        out += [f"## {e['title']}", f'<a id="{e["name"]}"></a>', ""]
        if e.get("description"):
            out += [e["description"], ""]
        if e.get("demo"):
            out += [f"*{demo_text(e, full)}*", ""]
        if e["status"] not in ("computed", "cached"):
            out += [f"**{_status_text(e)}**", ""]
            continue
        out += [e["summary_md"].strip(), ""]
        for fig in e.get("figures", []):
            out += [f"![{caption(e, fig)}]({e['folder']}/{fig})", "",
                    f"*{caption(e, fig)}* Reproduce: `{e['run_command']}`", ""]
        for table in e.get("tables", []):
            out.append(f"- Data: [{table}]({e['folder']}/{table})")
        own = f" (the analysis' own command: `{e['cli_command']}`)" if e.get("cli_command") else ""
        out += ["", f"Reproduce: `{e['run_command']}`" + own
                + f"; seed {e.get('seed', 0)}; {e.get('seconds', 0):.1f} s.", ""]
    out += _provenance_md(manifest)
    return "\n".join(out).rstrip() + "\n"


def _banner(manifest: dict, entries: list[dict]) -> list[str]:
    """The lines (Markdown) above the findings: the demo profile, and a report still being written."""
    lines = []
    smaller = [e["name"] for e in entries if e.get("demo")]
    if manifest.get("profile") == "demo":
        lines.append(f"Demo profile: {', '.join(smaller) or 'no experiment'} ran with smaller samples than the "
                     "papers' protocols (each says so beside its findings); the full protocol is "
                     f"`{manifest.get('full_command', 'make report')}`, which is what `reports/` holds.")
    if pending(manifest):
        done = sum(e["status"] not in PENDING for e in entries)
        lines.append(f"In progress: {done} of {len(entries)} experiments done; this page is rewritten after each "
                     f"(if the run was stopped, `{manifest['command']}` resumes it).")
    return lines


def _timing(manifest: dict) -> str:
    compute = sum(e.get("seconds") or 0 for e in manifest["experiments"])
    return (f"experiments computed in {compute:.0f} s in all; this run took {manifest['total_seconds']:.0f} s "
            "(finished experiments are reused from the cache)")


def _provenance_md(manifest: dict) -> list[str]:
    env = manifest["environment"]
    lines = ["## Provenance", "", f"- Model: `{manifest['model']['name']}`, weights hash `{manifest['model']['hash']}`",
             f"- Python {env['python']} on {env['platform']} ({env['cpu_count']} CPUs, "
             f"{env['torch_threads']} torch threads)",
             "- Packages: " + ", ".join(f"{k} {v}" for k, v in env["packages"].items()), "",
             "| experiment | status | seed | seconds | cache key |", "|---|---|---|---|---|"]
    for e in manifest["experiments"]:
        lines.append(f"| {e['name']} | {e['status']} | {e.get('seed', '')} | {e.get('seconds', 0):.1f} | "
                     f"`{e.get('key', '')[:16]}` |")
    return lines + [""]


# ---------------------------------------------------------------------------------------------------- html


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img src="data:image/png;base64,{data}" alt="{_esc(alt)}">'


def _fmt(value: object) -> tuple[str, str]:
    """(display text, css class) of one table cell."""
    if isinstance(value, float):
        if value != value:
            return "", "num"
        text = f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
        return text, "num"
    if isinstance(value, (int,)) and not isinstance(value, bool):
        return str(value), "num"
    return str(value), ""


def table_html(path: Path) -> str:
    df = pd.read_csv(path)
    head = "".join(f"<th>{_esc(c)}</th>" for c in df.columns)
    rows = []
    for record in df.head(MAX_ROWS).itertuples(index=False):
        cells = []
        for v in record:
            v = v.item() if hasattr(v, "item") else v
            text, cls = _fmt(v)
            raw = f' data-v="{_esc(v)}"' if cls == "num" and text else ""
            cells.append(f'<td class="{cls}"{raw}>{_esc(text)}</td>' if cls else f"<td>{_esc(text)}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    more = f'<p class="muted">First {MAX_ROWS} of {len(df)} rows; all in {path.name}.</p>' if len(df) > MAX_ROWS else ""
    return (f'<div class="tablewrap"><table class="sortable"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table></div>{more}")


def viewer_html(entry: dict, index: int) -> str:
    data = script_json(entry["viewer"])
    vid = f"viewer-data-{index}"
    return (f'<h3>Attention-pattern viewer</h3><p class="muted">The text is shown twice. Pick a head, then hover a '
            f"token: earlier tokens are shaded by that head's attention weight from it (dashed: the strongest), "
            f"and the tooltip lists the top three. Induction heads look at the token after the earlier copy.</p>"
            f'<div class="viewer" data-src="{vid}"><div class="heads"></div><div class="tokens"></div>'
            f'<div class="tooltip" role="tooltip" hidden></div></div>'
            f'<script type="application/json" id="{vid}">{data}</script>'
            f'<div class="repro">Reproduce: <code>{_esc(entry["run_command"])}</code></div>')


def _section_html(report_dir: Path, e: dict, index: int, full: str = "make report") -> str:
    badge = {"computed": f"computed in {e.get('seconds', 0):.1f} s",
             "cached": f"from cache ({e.get('seconds', 0):.1f} s)"}
    parts = [f'<section id="{_esc(e["name"])}"><h2>{_esc(e["title"])}'
             f'<span class="badge {_esc(e["status"])}">{_esc(badge.get(e["status"], e["status"]))}</span></h2>']
    if e.get("description"):
        parts.append(markdown.to_html(e["description"]))
    if e.get("demo"):
        parts.append(f'<p class="demo">{markdown.inline(demo_text(e, full))}</p>')
    repro = f'Reproduce: <code>{_esc(e["run_command"])}</code>'
    if e.get("cli_command"):
        repro += f' &middot; the analysis\' own command: <code>{_esc(e["cli_command"])}</code>'
    if e["status"] not in ("computed", "cached"):
        css = "pending" if e["status"] in PENDING else "error"
        parts.append(f'<p class="{css}">{_esc(_status_text(e))}</p>')
        return "".join(parts) + "</section>"
    parts.append(markdown.to_html(e["summary_md"]))
    parts.append(f'<div class="repro">{repro} &middot; seed {_esc(e.get("seed", 0))}</div>')
    folder = inside(report_dir, e["folder"])
    for fig in e.get("figures", []):
        cap = caption(e, fig)
        parts.append(f"<figure>{_img(inside(folder, fig), cap)}<figcaption>{_esc(cap)} Reproduce: "
                     f"<code>{_esc(e['run_command'])}</code> "
                     f"(PNG: {_esc(e['folder'] + '/' + fig)})</figcaption></figure>")
    if e.get("viewer"):
        parts.append(viewer_html(e, index))
    for table in e.get("tables", []):
        parts.append(f"<details><summary>Table: {_esc(table)}</summary>{table_html(inside(folder, table))}"
                     f'<p class="muted">Reproduce: <code>{_esc(e["run_command"])}</code></p></details>')
    return "".join(parts) + "</section>"


VIEWPORT = '<meta name="viewport" content="width=device-width, initial-scale=1">'


def render_html(report_dir: Path, manifest: dict) -> str:
    model = manifest["model"]["name"]
    entries = load_entries(report_dir, manifest)
    toc = "".join(f'<li><a href="#{_esc(e["name"])}">{_esc(e["title"])}</a>'
                  f'{"" if e["status"] in ("computed", "cached") else " (" + _esc(e["status"]) + ")"}</li>'
                  for e in entries)
    full = manifest.get("full_command", "make report")
    findings = []
    for e in entries:
        picked = key_findings(e) if e["status"] in ("computed", "cached") else []
        demo = f' <span class="demo">{markdown.inline(demo_text(e, full))}</span>' if e.get("demo") else ""
        for f in picked:
            findings.append(f'<li>{markdown.inline(f["text"])}{demo} <span class="muted">'
                            f'(<a href="#{_esc(e["name"])}">{_esc(e["name"])}</a>; '
                            f'<code>{_esc(f["command"] or e["run_command"])}</code>)</span></li>')
    sections = "".join(_section_html(report_dir, e, i, full) for i, e in enumerate(entries))
    banner = "".join(f'<p class="banner">{markdown.inline(line)}</p>' for line in _banner(manifest, entries))
    refresh = f'<meta http-equiv="refresh" content="{REFRESH_SECONDS}">' if pending(manifest) else ""
    env = manifest["environment"]
    prov_rows = "".join(
        f"<tr><td>{_esc(e['name'])}</td><td>{_esc(e['status'])}</td><td class='num'>{e.get('seed', '')}</td>"
        f"<td class='num'>{e.get('seconds', 0):.1f}</td><td class='num'>{e.get('wall_seconds', 0):.1f}</td>"
        f"<td><code>{_esc(e.get('key', '')[:16])}</code></td></tr>" for e in manifest["experiments"])
    packages = ", ".join(f"{_esc(k)} {_esc(v)}" for k, v in env["packages"].items())
    weights = _esc(manifest["model"]["hash"])
    short_weights = _esc(manifest["model"]["hash"][:16])
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">{VIEWPORT}{refresh}
<title>interp report: {_esc(model)}</title><style>{CSS}</style></head>
<body><main>
<header class="top"><h1>interp report: {_esc(model)}</h1>
<p class="meta">Weights hash <code>{short_weights}</code> &middot; generated {_esc(manifest['created'])}
 &middot; {_esc(_timing(manifest))} &middot; {env['cpu_count']} CPUs</p>
<div class="repro">Reproduce the whole report: <code>{_esc(manifest['command'])}</code></div>{banner}</header>
<nav class="toc"><strong>Contents</strong><ol>{toc}<li><a href="#provenance">Provenance</a></li></ol></nav>
{'<section id="findings"><h2>Key findings</h2><ul>' + ''.join(findings) + '</ul></section>' if findings else ''}
{sections}
<section id="provenance"><h2>Provenance</h2>
<p>Model <code>{_esc(model)}</code>, weights hash <code>{weights}</code>. Python {_esc(env['python'])}
 on {_esc(env['platform'])}, {env['cpu_count']} CPUs, {env['torch_threads']} torch threads.</p>
<p class="muted">{packages}</p>
<div class="tablewrap"><table class="sortable"><thead><tr><th>experiment</th><th>status</th><th>seed</th>
<th>compute s</th><th>this run s</th><th>cache key</th></tr></thead><tbody>{prov_rows}</tbody></table></div>
</section></main><script>{JS}</script></body></html>
"""


def render_report(report_dir: Path) -> tuple[Path, Path]:
    """(Re)write report.md and index.html from the folder's manifest.json."""
    report_dir = Path(report_dir)
    manifest = json.loads((report_dir / "manifest.json").read_text())
    md = write_text_atomic(report_dir / "report.md", render_markdown(report_dir, manifest))
    page = write_text_atomic(report_dir / "index.html", render_html(report_dir, manifest))
    return md, page
