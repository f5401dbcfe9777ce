"""report.md: the same report in Markdown, charts referenced by their PNG files next to it.

Data is escaped so that no Markdown viewer renders it as formatting, links, mentions or HTML: control characters
are stripped (`strip_controls`), Markdown punctuation gets a backslash and `<`, `>` and `&` become entities.
"""

from __future__ import annotations

from urllib.parse import quote

from ..normalize.text import strip_controls
from .document import Block, Bullets, Cell, Chart, Document, Heading, Lines, Link, NotReported, Paragraph, Table

# Punctuation that means something mid-line in CommonMark or GitHub Markdown (emphasis, code, links, table cells,
# strikethrough, `@` mentions, `$` math). Data never starts a line here, so line-start markers (#, -, +, 1.) are safe.
_BACKSLASHED = frozenset("\\`*_{}[]|~@$")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}
_WHITESPACE = {"\n": " ", "\r": " ", "\t": " "}


def escape_markdown(text: str) -> str:
    """Text shown literally by every Markdown viewer: controls stripped, punctuation escaped, HTML neutralized,
    one line."""
    out = []
    for char in strip_controls(text):
        if char in _BACKSLASHED:
            out.append("\\" + char)
        elif char in _ENTITIES:
            out.append(_ENTITIES[char])
        else:
            out.append(_WHITESPACE.get(char, char))
    return "".join(out)


def render_markdown(document: Document) -> str:
    """The report as Markdown."""
    lines = [f"# {escape_markdown(document.title)}", "",
             "  \n".join(escape_markdown(line) for line in document.subtitle), ""]
    for block in document.blocks:
        lines.extend(_block(block))
        lines.append("")
    return "\n".join(lines).rstrip("\n") + "\n"


def _block(block: Block) -> list[str]:
    if isinstance(block, Heading):
        return ["#" * min(max(block.level, 2), 4) + " " + escape_markdown(block.text)]
    if isinstance(block, Paragraph):
        text = escape_markdown(block.text)
        return [f"> **Note:** {text}"] if block.note else [text]
    if isinstance(block, Bullets):
        return [f"- {escape_markdown(item)}" for item in block.items]
    if isinstance(block, Table):
        return _table(block)
    return _chart(block)


def _table(table: Table) -> list[str]:
    lines = [f"**{escape_markdown(table.caption)}**", ""]
    if not table.rows:
        return [*lines, f"*{escape_markdown(table.empty)}*"]
    lines.append("| " + " | ".join(escape_markdown(name) for name in table.header) + " |")
    lines.append("|" + "|".join("---:" if numeric else "---" for numeric in table.numeric) + "|")
    for row in table.rows:
        lines.append("| " + " | ".join(_inline(cell) for cell in row) + " |")
    if table.note:
        lines += ["", f"*{escape_markdown(table.note)}*"]
    return lines


def _inline(cell: Cell) -> str:
    if isinstance(cell, NotReported):
        return cell.text
    if isinstance(cell, Lines):
        return " · ".join(escape_markdown(line) for line in cell.lines) or " "
    if isinstance(cell, Link):
        if cell.url.startswith(("https://", "http://")):
            # Percent-encode everything that could end the link target or start markup inside it.
            target = quote(cell.url, safe=":/?#=&%.,;~_-+!*'@")
            target = target.replace("(", "%28").replace(")", "%29")
            return f"[{escape_markdown(cell.text)}]({target})"
        return escape_markdown(cell.text)
    return escape_markdown(cell) if cell else " "


def _chart(chart: Chart) -> list[str]:
    return [f"![{escape_markdown(chart.alt or chart.title)}]({chart.file})", "",
            f"*{escape_markdown(chart.title)}.* {escape_markdown(chart.caption)}"]
