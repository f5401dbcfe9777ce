"""report.html: one self-contained, printable file (inline CSS, charts as data URIs, no requests at all).

Everything from the data is escaped with `html.escape`, control characters stripped first (`strip_controls`: a
second line of defence for rows stored by older releases); a Content-Security-Policy forbids scripts and any
resource that is not inline, so even a mistake could not make the page fetch or run anything.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path

from ..normalize.text import strip_controls
from .document import Block, Bullets, Cell, Chart, Document, Heading, Link, Paragraph, Table

# No scripts, no fonts, no remote images: inline styles and data: images only.
CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
                           "form-action 'none'")

STYLE = """
:root { color-scheme: light; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans Arabic", Arial,
       sans-serif; color: #1a1a1a; background: #fff; line-height: 1.45; margin: 2rem auto; max-width: 62rem;
       padding: 0 1rem; }
h1 { font-size: 1.7rem; margin-bottom: 0.4rem; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 2px solid #0072B2; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
.meta { margin: 0.1rem 0; color: #333; }
.note { border-left: 4px solid #D55E00; background: #fdf1e8; padding: 0.6rem 0.9rem; }
table { border-collapse: collapse; width: 100%; margin: 0.6rem 0 1.4rem; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
th, td { border-bottom: 1px solid #d0d0d0; padding: 0.3rem 0.45rem; vertical-align: top; text-align: left; }
thead th { border-bottom: 2px solid #555; background: #f3f3f3; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.text { min-width: 14rem; }
td, th { overflow-wrap: anywhere; }
td.empty { color: #555; font-style: italic; }
figure { margin: 1rem 0 1.6rem; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid #e3e3e3; }
figcaption { font-size: 0.9rem; color: #333; margin-top: 0.35rem; }
ul.methods li { margin-bottom: 0.45rem; }
footer { margin-top: 2.5rem; font-size: 0.85rem; color: #555; }
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 9.5pt; }
  h2 { break-after: avoid; page-break-after: avoid; }
  h3 { break-after: avoid; page-break-after: avoid; }
  figure, img, tr, .note { break-inside: avoid; page-break-inside: avoid; }
  thead { display: table-header-group; }
  a { color: inherit; text-decoration: none; }
}
"""


def escape(text: str, quote: bool = True) -> str:
    """Text as HTML that shows it literally: control characters stripped, markup characters escaped."""
    return html.escape(strip_controls(text), quote)


def render_html(document: Document, folder: Path) -> str:
    """The report as one HTML page; chart PNGs are read from `folder` and embedded."""
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">',
        '<meta name="referrer" content="no-referrer">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="generator" content="stormwatch">',
        f"<title>{escape(document.title)}</title>",
        f"<style>{STYLE}</style>",
        "</head>",
        "<body>",
        "<header>",
        f"<h1>{escape(document.title)}</h1>",
        *(f'<p class="meta">{escape(line)}</p>' for line in document.subtitle),
        "</header>",
        "<main>",
        *(_block(block, folder) for block in document.blocks),
        "</main>",
        f"<footer>{escape(document.subtitle[-1])}</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _block(block: Block, folder: Path) -> str:
    if isinstance(block, Heading):
        level = min(max(block.level, 2), 4)
        return f"<h{level}>{escape(block.text)}</h{level}>"
    if isinstance(block, Paragraph):
        return f'<p class="note">{escape(block.text)}</p>' if block.note else f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        items = "".join(f"<li>{escape(item)}</li>" for item in block.items)
        return f'<ul class="methods">{items}</ul>'
    if isinstance(block, Table):
        return _table(block)
    return _chart(block, folder)


def _table(table: Table) -> str:
    head = "".join(f'<th scope="col"{_num_class(table, i)}>{escape(name)}</th>' for i, name in enumerate(table.header))
    lines = [f"<table><caption>{escape(table.caption)}</caption><thead><tr>{head}</tr></thead><tbody>"]
    if not table.rows:
        lines.append(f'<tr><td class="empty" colspan="{len(table.header)}">{escape(table.empty)}</td></tr>')
    for index, row in enumerate(table.rows):
        key = f' data-key="{escape(table.keys[index])}"' if index < len(table.keys) else ""
        cells = "".join(_cell(table, column, cell) for column, cell in enumerate(row))
        lines.append(f"<tr{key}>{cells}</tr>")
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _num_class(table: Table, column: int) -> str:
    return ' class="num"' if table.numeric[column] else ""


def _cell(table: Table, column: int, cell: Cell) -> str:
    if column == table.text_column:
        # dir="auto": Arabic and Hebrew posts read right to left within a left-to-right page.
        return f'<td class="text" dir="auto">{_inline(cell)}</td>'
    return f"<td{_num_class(table, column)}>{_inline(cell)}</td>"


def _inline(cell: Cell) -> str:
    if isinstance(cell, Link):
        # Only web links become anchors: a `javascript:` or `data:` URL from the data stays inert text.
        if cell.url.startswith(("https://", "http://")):
            return (f'<a href="{escape(cell.url, quote=True)}" rel="noopener noreferrer">'
                    f"{escape(cell.text)}</a>")
        return escape(cell.text)
    return escape(cell)


def _chart(chart: Chart, folder: Path) -> str:
    encoded = base64.b64encode((folder / chart.file).read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{encoded}" alt="{escape(chart.title, quote=True)}">'
            f"<figcaption><strong>{escape(chart.title)}.</strong> {escape(chart.caption)}</figcaption></figure>")
