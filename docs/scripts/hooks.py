"""MkDocs hooks: bring the benchmarks' Markdown files and the committed reports' figures and pages into the
site, so the docs can cite them where they live in the repository.

A page links them as it would on GitHub, e.g. `../benchmarks/rome.md` from `docs/speed.md`: that path leaves
the docs folder, which MkDocs refuses in strict mode. The files are added to the site under the same folder
names (`benchmarks/`, `reports/`), and each such link is rewritten to point at the copy. One set of links
then works on GitHub and on the site.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parents[2]
# (folder under the repository root, glob of the files the site takes from it)
EXTERNAL = (("benchmarks", "*.md"), ("reports", "*/*/figures/*.png"), ("reports", "*/*/findings.json"),
            ("reports", "*/index.html"), ("reports", "*.html"))
LINK = re.compile(r"(\]\()([^)\s#]+)((?:#[^)\s]*)?\))")


def on_files(files: Files, config) -> Files:
    for folder, pattern in EXTERNAL:
        for path in sorted((ROOT / folder).glob(pattern)):
            rel = path.relative_to(ROOT).as_posix()
            # src_dir is the repository root, so the file's site path is its repository path
            files.append(File(rel, str(ROOT), config["site_dir"], config["use_directory_urls"]))
    return files


def _rewrite(target: str, page_dir: Path, docs_dir: Path) -> str:
    """The link to `target` from a page in page_dir, pointing at the site's copy when it leaves the docs."""
    if "://" in target or target.startswith(("/", "mailto:")):
        return target
    resolved = Path(os.path.normpath(page_dir / target))
    try:
        inside = resolved.relative_to(ROOT)
    except ValueError:
        return target
    if not inside.parts or inside.parts[0] not in {folder for folder, _ in EXTERNAL}:
        return target
    return Path(os.path.relpath(docs_dir / inside, page_dir)).as_posix()


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.abs_src_path is None or not page.file.src_uri.endswith(".md"):
        return markdown
    docs_dir = Path(config["docs_dir"]).resolve()
    page_dir = Path(page.file.abs_src_path).resolve().parent
    if not page_dir.is_relative_to(docs_dir):
        return markdown  # the benchmarks' own pages link nothing outside their folder
    return LINK.sub(lambda m: m.group(1) + _rewrite(m.group(2), page_dir, docs_dir) + m.group(3), markdown)
