"""A small Markdown-to-HTML converter for analysis summaries (no dependency).

Covers what `summary_markdown()` texts use: headings, paragraphs, bullet and numbered lists, pipe tables,
fenced code, and inline code, bold, italic and links. Everything else is escaped text.

Summaries carry data a user controls (prompts, subjects, generations, tokens from a fact file), so the
output is safe by construction: all text is escaped with quotes, the only tags produced are the fixed
ones above, and a link is a link only when its target is http(s), relative or a ``#`` anchor; any other
target (``javascript:``, ``data:``, ``//host``) stays as escaped text. `escape` turns data into Markdown
that shows exactly as written.
"""

from __future__ import annotations

import html
import re

_EMPHASIS = [
    (re.compile(r"\*\*(.+?)\*\*"), r"<strong>\1</strong>"),
    (re.compile(r"(?<![\w*])\*(?!\s)(.+?)(?<!\s)\*(?![\w*])"), r"<em>\1</em>"),
    (re.compile(r"(?<!\w)_(?!\s)(.+?)(?<!\s)_(?!\w)"), r"<em>\1</em>"),
]
_LINK = re.compile(r"\[([^\]]+)\]\(([^)\s]+)\)")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.\-]*):")
_BLOCK_START = re.compile(r"(#{1,6}\s|```|[-*+]\s|\d+[.)]\s|\|)")  # a line that starts a block, not a paragraph
_MD_SPECIAL = re.compile(r"([\\`*_\[\]()#|<>&!])")


def esc(text: object) -> str:
    """HTML-escape text for an element or a (double- or single-quoted) attribute."""
    return html.escape(str(text), quote=True)


def safe_url(url: str) -> str | None:
    """The link target if it is http(s), relative or '#...'; None for anything else (javascript:, data:,
    vbscript:, protocol-relative //host) and for a target holding a quote, '<', '>', a backtick or a
    backslash. Control characters and spaces, which browsers drop inside a scheme, are removed before the
    scheme is read."""
    if any(ch in url for ch in "\"'<>`\\"):  # a target never needs these; they only ever break out
        return None
    cleaned = "".join(ch for ch in url if ord(ch) > 0x20 and ch != "\x7f")
    if cleaned.startswith("#"):
        return url
    if cleaned.startswith("//"):
        return None
    m = _SCHEME.match(cleaned)
    if m is None:
        return url if ":" not in cleaned.split("/", 1)[0] else None
    return url if m.group(1).lower() in ("http", "https") else None


def escape(text: object) -> str:
    """Markdown that renders as exactly this text (prompts, tokens, generations: data, never markup)."""
    return _MD_SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")


def _plain(text: str) -> str:
    """Escaped text with bold and italic; backslash escapes (from `escape`) keep a character literal."""
    parts = re.split(r"(\\[\\`*_\[\]()#|<>&!])", text)
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append("\0" + str(ord(part[1])) + "\0")  # a placeholder the emphasis rules cannot match
        else:
            out.append(esc(part))
    s = "".join(out)
    for pattern, repl in _EMPHASIS:
        s = pattern.sub(repl, s)
    return re.sub(r"\0(\d+)\0", lambda m: esc(chr(int(m.group(1)))), s)


def _links(text: str) -> str:
    out, last = [], 0
    for m in _LINK.finditer(text):
        # a link whose opening bracket is backslash-escaped is text
        if m.start() > 0 and text[m.start() - 1] == "\\":
            continue
        out.append(_plain(text[last:m.start()]))
        url = safe_url(m.group(2))
        if url is None:
            out.append(_plain(m.group(0).replace("[", "\\[").replace("(", "\\(")))  # shown as written
        else:
            out.append(f'<a href="{esc(url)}">{_plain(m.group(1))}</a>')
        last = m.end()
    out.append(_plain(text[last:]))
    return "".join(out)


def inline(text: str) -> str:
    """Inline markup (code spans, bold, italic, links) over escaped text; code spans are protected from the
    other rules. Only <code>, <strong>, <em> and <a href> with an allowed target are ever produced."""
    text = text.replace("\0", "")
    parts = re.split(r"((?<!\\)`[^`]+`)", text)
    out = []
    for part in parts:
        if len(part) >= 2 and part.startswith("`") and part.endswith("`"):
            out.append(f"<code>{esc(part[1:-1])}</code>")
        else:
            out.append(_links(part))
    return "".join(out)


def _table(rows: list[str]) -> str:
    cells = [[c.strip() for c in r.strip().strip("|").split("|")] for r in rows]
    head, body = cells[0], [r for r in cells[2:]]
    th = "".join(f"<th>{inline(c)}</th>" for c in head)
    trs = "".join("<tr>" + "".join(f"<td>{inline(c)}</td>" for c in r) + "</tr>" for r in body)
    return (f'<div class="tablewrap"><table class="sortable"><thead><tr>{th}</tr></thead><tbody>{trs}</tbody>'
            "</table></div>")


def to_html(text: str) -> str:
    lines = text.strip("\n").splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if not stripped:
            i += 1
        elif stripped.startswith("```"):
            j = i + 1
            while j < len(lines) and not lines[j].strip().startswith("```"):
                j += 1
            out.append("<pre><code>" + esc("\n".join(lines[i + 1 : j])) + "</code></pre>")
            i = j + 1
        elif m := re.match(r"(#{1,6})\s+(.*)", stripped):
            level = min(len(m.group(1)) + 2, 6)  # summaries sit under the report's own h2
            out.append(f"<h{level}>{inline(m.group(2))}</h{level}>")
            i += 1
        elif stripped.startswith("|") and i + 1 < len(lines) and re.match(r"^\|?[\s:|-]+\|?$", lines[i + 1].strip()):
            j = i
            while j < len(lines) and lines[j].strip().startswith("|"):
                j += 1
            out.append(_table(lines[i:j]))
            i = j
        elif re.match(r"([-*+]|\d+[.)])\s+", stripped):
            ordered = bool(re.match(r"\d", stripped))
            items: list[str] = []
            while i < len(lines) and lines[i].strip():
                s = lines[i].strip()
                m = re.match(r"([-*+]|\d+[.)])\s+(.*)", s)
                if m:
                    items.append(m.group(2))
                elif items:
                    items[-1] += " " + s  # a wrapped item
                i += 1
            tag = "ol" if ordered else "ul"
            out.append(f"<{tag}>" + "".join(f"<li>{inline(it)}</li>" for it in items) + f"</{tag}>")
        else:
            para = []
            while i < len(lines) and lines[i].strip() and not _BLOCK_START.match(lines[i].strip()):
                para.append(lines[i].strip())
                i += 1
            if not para:  # a line that looked like a block start but was not one
                para.append(stripped)
                i += 1
            out.append(f"<p>{inline(' '.join(para))}</p>")
    return "\n".join(out)
