"""report.html: one self-contained, printable file (inline CSS, charts as data URIs, no requests at all).

Everything from the data is escaped with `html.escape`, control characters stripped first (`strip_controls`: a
second line of defence for rows stored by older releases); a Content-Security-Policy forbids scripts and any
resource that is not inline, so even a mistake could not make the page fetch or run anything.
"""

from __future__ import annotations

import base64
import html
import re
import struct
from pathlib import Path

from ..normalize.text import strip_controls
from .document import Block, Bullets, Cell, Chart, Document, Heading, Lines, Link, NotReported, Paragraph, Table

# No scripts, no fonts, no remote images: inline styles and data: images only.
CONTENT_SECURITY_POLICY = ("default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; "
                           "form-action 'none'")

STYLE = """
:root { color-scheme: light; }
*, *::before, *::after { box-sizing: border-box; }
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans Arabic", "Noto Sans Hebrew",
       Arial, sans-serif, "Noto Color Emoji", "Apple Color Emoji", "Segoe UI Emoji"; color: #1a1a1a;
       background: #fff; line-height: 1.45; margin: 2rem auto; max-width: 68rem; padding: 0 1rem; }
p, ul, figcaption { max-width: 48rem; }
h1 { font-size: 1.7rem; margin-bottom: 0.4rem; overflow-wrap: break-word; }
h2 { font-size: 1.3rem; margin-top: 2.2rem; border-bottom: 2px solid #0072B2; padding-bottom: 0.2rem; }
h3 { font-size: 1.05rem; margin-top: 1.4rem; }
.meta { margin: 0.1rem 0; color: #333; }
.note { border-left: 4px solid #D55E00; background: #fdf1e8; padding: 0.6rem 0.9rem; }
.table-wrap { overflow-x: auto; margin: 0.6rem 0 1.4rem; }
table { border-collapse: collapse; width: 100%; font-size: 0.9rem; }
caption { text-align: left; font-weight: 600; padding-bottom: 0.3rem; }
th, td { border-bottom: 1px solid #d0d0d0; padding: 0.3rem 0.45rem; vertical-align: top; text-align: left;
         overflow-wrap: break-word; }
thead th { border-bottom: 2px solid #555; background: #f3f3f3; }
th[scope="row"] { font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th.num { white-space: normal; }  /* a heading may wrap between its words; the figures below it never do */
td.text { min-width: 16rem; }
td.text > .value { display: block; }
td.empty { color: #555; font-style: italic; }
.sub { display: block; color: #555; font-size: 0.9em; }
.num .sub { white-space: normal; }
.name { white-space: nowrap; }
p.table-note { font-size: 0.85rem; color: #333; margin: -0.9rem 0 1.4rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%);
                   white-space: nowrap; }
figure { margin: 1rem 0 1.6rem; }
/* Charts are drawn 5.2 inches wide for a phone's width (their text stays 9 CSS px there); wider screens show them
   up to 46rem, never stretched past the size that keeps their text in proportion with the page's. */
figure img { width: 100%; max-width: 46rem; height: auto; display: block; border: 1px solid #e3e3e3; }
p.lead { font-size: 1.05rem; }
figcaption { font-size: 0.9rem; color: #333; margin-top: 0.35rem; }
ul.methods { font-size: 0.88rem; padding-left: 1.2rem; }  /* the fine print */
ul.methods li { margin-bottom: 0.35rem; }
footer { margin-top: 2.5rem; font-size: 0.85rem; color: #555; }
/* Phones: tables get smaller type; a wide one becomes one card per row, each value beside the name of its
   column, two to a line (texts and accounts take a whole line). */
@media (max-width: 40rem) {
  body { margin: 1rem auto; padding: 0 0.75rem; }
  h1 { font-size: 1.4rem; }
  table { font-size: 0.8rem; }
  th, td { padding: 0.25rem 0.22rem; }
  table.cards, table.cards tbody { display: block; width: 100%; }
  table.cards caption { display: block; }
  table.cards thead { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); }
  table.cards tr { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); column-gap: 0.9rem;
                   border-bottom: 2px solid #555; padding: 0.35rem 0; }
  table.cards td { display: flex; gap: 0.4rem; border: 0; padding: 0.12rem 0; text-align: left;
                   white-space: normal; min-width: 0; }
  table.cards td.full { grid-column: 1 / -1; }
  table.cards td::before { content: attr(data-label); flex: 0 1 auto; font-weight: 600; color: #333; }
  table.cards td > .value { flex: 1 1 auto; min-width: 0; }
  table.cards td.num > .value { flex: 0 0 auto; }
}
@page { size: A4; margin: 14mm 12mm; }
@media print {
  body { margin: 0; max-width: none; padding: 0; font-size: 9.5pt; line-height: 1.35; }
  table { font-size: 8.5pt; }
  th, td { padding: 0.2rem 0.4rem; }
  p, ul, figcaption { max-width: none; }
  /* Sections follow each other (a page each would leave pages a few lines full); a heading, a caption or a
     table's header row never ends a page: each keeps with what follows it. */
  h2 { margin-top: 1.2rem; }
  h3 { margin-top: 0.9rem; }
  .table-wrap { margin: 0.4rem 0 0.9rem; }
  p.table-note { margin: -0.5rem 0 0.9rem; }
  h2, h3, caption, thead, p:has(+ .table-wrap), p:has(+ figure) { break-after: avoid; page-break-after: avoid; }
  tbody tr:first-child, tbody tr:nth-child(2) { break-before: avoid; page-break-before: avoid; }
  figure, img, tr, li, .note, .table-note, .table-wrap.whole, .lead { break-inside: avoid;
                                                                      page-break-inside: avoid; }
  footer { display: none; }  /* the header says when and by what the report was made */
  thead { display: table-header-group; }
  thead th, .note { background: none; }
  .table-wrap { overflow: visible; }  /* after the margins above: the screen's box would scroll */
  td.text { min-width: 0; }
  .num .sub { min-width: 13em; }
  figure { margin: 0.6rem 0 1rem; }
  figure img { width: 132mm; max-width: 100%; border: 0; }  /* the chart's own size: its text prints at 9 pt */
  a { color: inherit; text-decoration: none; }
}
"""


# On paper a table of at most this many rows stays on one page (its caption and header with its rows); a table
# of post texts has taller rows.
WHOLE_ON_PAPER = 15
WHOLE_ON_PAPER_WITH_TEXTS = 6
CARDS = ' class="cards"'


def escape(text: str, quote: bool = True) -> str:
    """Text as HTML that shows it literally: control characters stripped, markup characters escaped."""
    return html.escape(strip_controls(text), quote)


def render_html(document: Document, folder: Path) -> str:
    """The report as one HTML page; chart PNGs are read from `folder` and embedded. Each section (from one `h2`
    to the next) is a `<section>` named by its heading: on paper, each starts a page."""
    body: list[str] = []
    sections = 0
    for block in document.blocks:
        if isinstance(block, Heading) and block.level <= 2:
            if sections:
                body.append("</section>")
            sections += 1
            body.append(f'<section aria-labelledby="section-{sections}">')
            body.append(f'<h2 id="section-{sections}">{escape(block.text)}</h2>')
            continue
        body.append(_block(block, folder, len(body)))
    if sections:
        body.append("</section>")
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
        *body,
        "</main>",
        f"<footer>{escape(document.subtitle[-1])}</footer>",
        "</body>",
        "</html>",
    ]
    return "\n".join(parts) + "\n"


def _block(block: Block, folder: Path, position: int) -> str:
    if isinstance(block, Heading):
        level = min(max(block.level, 2), 4)
        return f"<h{level}>{escape(block.text)}</h{level}>"
    if isinstance(block, Paragraph):
        if block.note:
            return f'<p class="note" role="note">{escape(block.text)}</p>'
        return f'<p class="lead">{escape(block.text)}</p>' if block.lead else f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        items = "".join(f"<li>{escape(item)}</li>" for item in block.items)
        return f'<ul class="methods">{items}</ul>'
    if isinstance(block, Table):
        return _table(block, f"table-{position}")
    return _chart(block, folder)


def _table(table: Table, name: str) -> str:
    """A table in a scrolling box (a last resort: the layout keeps every table within the page); a wide one
    becomes cards on phones, keeping its table roles for screen readers."""
    cards = table.wide
    roles = cards  # display: block takes a table's roles away in some browsers: say them outright
    head = "".join(f'<th scope="col"{_num_class(table, i)}{_role(roles, "columnheader")}>{escape(title)}</th>'
                   for i, title in enumerate(table.header))
    # On paper a table of a few rows stays on one page; a long one breaks between rows.
    most = WHOLE_ON_PAPER if table.text_column is None else WHOLE_ON_PAPER_WITH_TEXTS
    whole = " whole" if len(table.rows) <= most else ""
    lines = [f'<div class="table-wrap{whole}" role="region" aria-labelledby="{name}" tabindex="0">',
             f'<table{CARDS if cards else ""}{_role(roles, "table")}>'
             f'<caption id="{name}">{escape(table.caption)}</caption>'
             f'<thead{_role(roles, "rowgroup")}><tr{_role(roles, "row")}>{head}</tr></thead>'
             f'<tbody{_role(roles, "rowgroup")}>']
    if not table.rows:
        lines.append(f'<tr><td class="empty" colspan="{len(table.header)}">{escape(table.empty)}</td></tr>')
    for index, row in enumerate(table.rows):
        key = f' data-key="{escape(table.keys[index])}"' if index < len(table.keys) else ""
        cells = "".join(_cell(table, column, cell, roles) for column, cell in enumerate(row))
        lines.append(f"<tr{key}{_role(roles, 'row')}>{cells}</tr>")
    lines.append("</tbody></table></div>")
    if table.note:
        lines.append(f'<p class="table-note">{escape(table.note)}</p>')
    return "\n".join(lines)


def _role(wanted: bool, role: str) -> str:
    return f' role="{role}"' if wanted else ""


def _num_class(table: Table, column: int) -> str:
    return ' class="num"' if table.numeric[column] else ""


def _cell(table: Table, column: int, cell: Cell, roles: bool) -> str:
    content = _inline(cell)
    label = f' data-label="{escape(table.header[column], quote=True)}"' if table.wide else ""
    if column == table.text_column:
        # dir="auto": Arabic and Hebrew posts read (and align) right to left within a left-to-right page; on
        # the value, not the cell, so a phone's card keeps its label on the left.
        return (f'<td class="text full"{label}{_role(roles, "cell")}><span class="value" dir="auto">{content}'
                "</span></td>")
    if table.wide:
        content = f'<span class="value">{content}</span>'
    if column == 0 and table.row_headers:
        return f'<th scope="row"{_role(roles, "rowheader")}>{content}</th>'
    classes = " ".join(name for name, wanted in (("num", table.numeric[column]),
                                                 ("full", table.wide and isinstance(cell, Lines))) if wanted)
    attribute = f' class="{classes}"' if classes else ""
    return f"<td{attribute}{label}{_role(roles, 'cell')}>{content}</td>"


# Where a handle may break across lines: before the `@` of a Mastodon account's server.
_BREAK_BEFORE_AT = re.compile(r"(?<=\w)@")
_SERVER_AT = re.compile(r"(?<=\w)(?=@)")


def _inline(cell: Cell) -> str:
    if isinstance(cell, NotReported):
        return f'<span aria-hidden="true">{escape(cell.text)}</span><span class="visually-hidden">not reported</span>'
    if isinstance(cell, Lines):
        first, *rest = cell.lines or ("",)
        return _name(first) + "".join(f'<span class="sub">{_text(line)}</span>' for line in rest)
    if isinstance(cell, Link):
        # Only web links become anchors: a `javascript:` or `data:` URL from the data stays inert text.
        if cell.url.startswith(("https://", "http://")):
            label = f' aria-label="{escape(f"{cell.text}, {cell.label}", quote=True)}"' if cell.label else ""
            return (f'<a href="{escape(cell.url, quote=True)}" rel="noopener noreferrer"{label}>'
                    f"{escape(cell.text)}</a>")
        return escape(cell.text)
    return _text(cell)


def _text(text: str) -> str:
    return _BREAK_BEFORE_AT.sub("<wbr>@", escape(text))


def _name(text: str) -> str:
    """An account's handle or pseudonym: never broken at its hyphens, only before a Mastodon server's `@`."""
    return "<wbr>".join(f'<span class="name">{escape(part)}</span>' for part in _SERVER_AT.split(text) if part)


def _chart(chart: Chart, folder: Path) -> str:
    data = (folder / chart.file).read_bytes()
    encoded = base64.b64encode(data).decode("ascii")
    # The PNG's own size (its IHDR): the page keeps the chart's room before the image is decoded.
    width, height = struct.unpack(">II", data[16:24])
    return (f'<figure><img src="data:image/png;base64,{encoded}" width="{width}" height="{height}" '
            f'alt="{escape(chart.alt or chart.title, quote=True)}">'
            f"<figcaption><strong>{escape(chart.title)}.</strong> {escape(chart.caption)}</figcaption></figure>")
