"""The report as a document: headings, paragraphs, tables and charts, rendered by html.py and markdown.py.

Building the document once keeps the HTML and the Markdown saying the same thing. Every string here is
plain text straight from the data or from us; the renderers escape it for their format.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from ..metrics import DEFINITIONS, ESTIMATE_NOTE, Spending, Totals, languages_reached
from ..platforms import not_reported
from .brief import brief, listed
from .content import (
    NamedAccount,
    NamedPost,
    ReportContent,
    SourceCoverage,
    account_label,
    bucket_phrase,
    describe_window,
    human_time,
    platform_name,
    utc_offset,
)
from .languages import NOT_STATED, language_name, shown_languages

if TYPE_CHECKING:
    from .charts import ChartFile



@dataclass(frozen=True)
class Heading:
    """A section heading (level 2 or 3)."""

    text: str
    level: int = 2


@dataclass(frozen=True)
class Paragraph:
    """A paragraph of plain text; a `note` stands out (warnings, empty windows), a `lead` opens the report."""

    text: str
    note: bool = False
    lead: bool = False


@dataclass(frozen=True)
class Bullets:
    """A bulleted list of plain-text items."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Link:
    """A table cell linking to a web page (only public posts have one); `label` says where it leads when the
    text alone does not ("post 3 on X" for a time)."""

    text: str
    url: str
    label: str | None = None


@dataclass(frozen=True)
class NotReported:
    """A figure the platform does not give: shown as "—" (read out as "not reported"), explained in a note."""

    text: str = "—"


@dataclass(frozen=True)
class Lines:
    """A cell of a few short lines (an account, then its platform and kind), read in order."""

    lines: tuple[str, ...]


Cell = str | Link | NotReported | Lines


@dataclass(frozen=True)
class Table:
    """A table with a caption; `numeric` columns are right-aligned, `key` names each row for checks. With
    `row_headers`, each row's first cell names the row. `note` explains marks in the cells ("—")."""

    caption: str
    header: tuple[str, ...]
    rows: tuple[tuple[Cell, ...], ...]
    numeric: tuple[bool, ...]
    empty: str = "None in this window."
    keys: tuple[str, ...] = ()
    text_column: int | None = None
    row_headers: bool = False
    note: str | None = None
    wide: bool = False  # too wide for a phone: HTML shows one card per row there


@dataclass(frozen=True)
class Chart:
    """A chart image from the report folder with its caption and its text alternative (what it shows, in words,
    with the key figures)."""

    file: str
    title: str
    caption: str
    alt: str = ""


Block = Heading | Paragraph | Bullets | Table | Chart


@dataclass(frozen=True)
class Document:
    """The whole report: a title, lines under it, and its blocks in order."""

    title: str
    subtitle: tuple[str, ...]
    blocks: tuple[Block, ...]


PLAN_RUNS = "plan"  # the runs `stormwatch plan` records its counts requests under (plan.PLAN_SOURCE)
STREAM_RUNS = "x-stream"  # the runs that carry X's filtered stream's reads and cost (streaming.STREAM_RUNS)

HEADLINE_ROWS = (
    ("posts", "Posts"),
    ("contributors", "Contributors"),
    ("potential_reach", "Potential reach"),
    ("potential_impressions", "Potential impressions"),
    ("impressions", "Impressions"),
    ("engagement", "Engagement"),
    ("peak_posts_per_minute", "Peak posts per minute"),
)


def number(value: int | float | None) -> str:
    """A count with thousands separators; a dash when unknown."""
    if value is None:
        return "–"
    return f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"


def reported(platform: str | None, figure: str, value: int) -> Cell:
    """A figure of one platform (or, for None, of all): "—" where the platform cannot give it, never 0."""
    if platform is not None and figure in not_reported(platform):
        return NotReported()
    return number(value)


def build_document(content: ReportContent, charts: list[ChartFile]) -> Document:
    """The report's text, tables and charts in reading order."""
    drawn = {chart.file: Chart(chart.file, chart.title, chart.caption, chart.alt) for chart in charts}
    local, utc = describe_window(content.window, content.timezone)
    hashtags = " ".join(f"#{tag}" for tag in content.campaign.hashtags)
    platform = content.window.platform
    subtitle = (
        f"Campaign: {content.campaign.name} — {hashtags} — on {', '.join(platform_name(p) for p in content.platforms)}"
        + (f" (this report: {platform_name(platform)} only)" if platform else ""),
        f"Window: {local}",
        f"Same window in UTC: {utc}",
        f"Generated {human_time(content.generated_at, content.timezone)} ({content.timezone_name}) "
        f"by stormwatch {content.version}.",
    )
    blocks: list[Block] = []
    if content.interim:
        blocks.append(Paragraph(_interim_note(content), note=True))
    if not content.namer.labels_stable:
        blocks.append(Paragraph("The database was read-only when this report was made, so accounts that had no "
                                "pseudonym yet got one for this report only: their labels will differ in the next "
                                "report. Do not compare labels across reports.", note=True))
    if not content.has_posts:
        blocks.append(Paragraph("No campaign posts were collected in this window. The figures below are zero and "
                                "the charts are empty; check the window and the collection runs under Methods.",
                                note=True))
    blocks += [Heading("The storm in brief"), Paragraph(" ".join(brief(content)), lead=True)]
    blocks += _headline(content)
    blocks += _over_time(content, drawn)
    blocks += _accounts(content, drawn)
    blocks += _posts(content, drawn)
    blocks += _hashtags_and_targets(content, drawn)
    from .intel import intel_blocks  # the storm-intelligence sections build on this module's blocks

    blocks += intel_blocks(content.intel, content.campaign, content.timezone)
    blocks += _coverage(content, drawn)
    blocks += _methods(content)
    title = f"{hashtags} — {'interim ' if content.interim else ''}storm report"
    return Document(title=title, subtitle=subtitle, blocks=tuple(blocks))


def _interim_note(content: ReportContent) -> str:
    """What an interim report is: when it was written, and the storm or window still to come (never "the storm
    runs until" before the storm has started)."""
    zone = content.timezone
    written = content.generated_at.astimezone(zone)

    def at(moment: datetime) -> str:
        local = moment.astimezone(zone)
        return f"{local:%H:%M}" if local.date() == written.date() else f"{local:%a} {local.day} {local:%b %H:%M}"

    campaign = content.campaign
    if content.generated_at < campaign.start:
        where = f"before the storm starts at {at(campaign.start)}"
        what = "the build-up so far"
    elif content.window.until == campaign.end:
        where, what = f"the storm runs until {at(campaign.end)}", "the storm so far"
    else:
        where, what = f"the window runs until {at(content.window.until)}", "the window so far"
    return (f"Interim report: written at {written:%H:%M}, {where} ({content.timezone_name}). Every figure is "
            f"{what}, and the charts end at {written:%H:%M}; write the report again after the storm for the final "
            "figures.")


def _headline(content: ReportContent) -> list[Block]:
    figures = content.summary.to_json()
    all_totals = content.summary.totals.all
    quiet = [platform_name(p) for p in content.summary.totals.by_platform if "impressions" in not_reported(p)]
    loud = [platform_name(p) for p in content.summary.totals.by_platform if "impressions" not in not_reported(p)]
    extra = {
        "posts": f"{number(all_totals.originals)} originals, "
                 f"{'— (not reported)' if figures['reposts'] is None else number(all_totals.reposts)} reposts, "
                 f"{number(all_totals.quotes)} quotes, {number(all_totals.replies)} replies"
                 + _goal(all_totals.posts, content.campaign.goal_posts),
        "contributors": _goal(all_totals.contributors, content.campaign.goal_contributors).lstrip("; "),
        "impressions": f"reported by {', '.join(loud)} only" if quiet and loud else "",
        "peak_posts_per_minute": _peak_when(content),
    }
    rows = []
    dashes = _headline_dashes(content)
    for key, label in HEADLINE_ROWS:
        detail = extra.get(key, "")
        value: Cell = NotReported() if figures[key] is None else number(figures[key])
        rows.append((label, value, DEFINITIONS[key] + (f" ({detail})" if detail else "")))
    cost = content.summary.cost
    if cost is not None:
        # by kind and source in the methods
        rows.append(("Cost", f"${cost.total_usd:,.2f}", f"estimated spend, X's billing days {_days(cost)}"))
    blocks: list[Block] = [
        Heading("Headline figures"),
        Table(caption="Headline figures for the window, all platforms", header=("Figure", "Value", "Definition"),
              rows=tuple(rows), numeric=(False, True, False),
              keys=(*(key for key, _ in HEADLINE_ROWS), *(("cost_usd",) if cost is not None else ())),
              row_headers=True, note=_dash_note(content) if dashes else None),
        Heading("By platform", 3),
        _platform_table(content),
    ]
    return blocks


def _days(cost: Spending) -> str:
    """`2021-02-07`, or `2021-02-07 to 2021-02-08`: the billing (UTC) days a cost covers."""
    return cost.first_day if cost.first_day == cost.last_day else f"{cost.first_day} to {cost.last_day}"


def _headline_dashes(content: ReportContent) -> bool:
    """Whether the headline table shows a "—" (then its note explains them, and the platform table's does not)."""
    figures = content.summary.to_json()
    return any(figures[key] is None for key, _ in HEADLINE_ROWS)


def _dash_note(content: ReportContent) -> str | None:
    """A pointer to the one place that says what "—" stands for (the methods): the caveat itself is said once."""
    return "— : not reported by the platform (see Methods and data)." if content.not_reported_note else None


def _languages_table(content: ReportContent) -> Table:
    """Posts and people per language, the most used first, then the rest together and the posts stating none."""
    named, rest, unstated = shown_languages(content.summary.languages)
    rows: list[tuple[Cell, ...]] = [(f"{language_name(c.code)} ({c.code})", number(c.posts), number(c.contributors))
                                    for c in named]
    if rest:
        # A person can post in several languages: the people of the other languages do not add up.
        rows.append((f"{len(rest)} other languages", number(sum(c.posts for c in rest)), "in summary.json"))
    if unstated is not None:
        rows.append((NOT_STATED, number(unstated.posts), number(unstated.contributors)))
    reached = languages_reached(content.summary.languages)
    return Table(caption=f"Posts and people per language ({reached} language{'' if reached == 1 else 's'} reached)",
                 header=("Language", "Posts", "People"), rows=tuple(rows), numeric=(False, True, True),
                 row_headers=True, note=f"Posts and People: {DEFINITIONS['languages']}.")


def _goal(value: int, goal: int | None) -> str:
    if not goal:
        return ""
    return f"; goal {number(goal)}: {value / goal:.0%} reached"


def _peak_when(content: ReportContent) -> str:
    minute = content.summary.peak.minute
    if minute is None:
        return ""
    return f"the minute from {human_time(minute, content.timezone)} {content.timezone_name}"


PLATFORM_ROWS: tuple[tuple[str, str], ...] = (
    ("posts", "Posts"), ("originals", "Originals"), ("reposts", "Reposts"), ("quotes", "Quotes"),
    ("replies", "Replies"), ("contributors", "Contributors"), ("potential_reach", "Potential reach"),
    ("impressions", "Impressions"), ("engagement", "Engagement"))


def _platform_table(content: ReportContent) -> Table:
    """One column per platform (and all of them), one row per figure: narrow enough for a phone and a page."""
    per_platform = content.summary.totals.by_platform
    columns: list[tuple[str | None, Totals]] = list(per_platform.items())
    if len(per_platform) > 1:
        columns.append((None, content.summary.totals.all))

    def cell(platform: str | None, field: str, totals: Totals) -> Cell:
        if platform is None and all(field in not_reported(p) for p in per_platform):
            return NotReported()  # no platform of the window gives it
        return reported(platform, field, getattr(totals, field))

    rows = tuple((label, *(cell(platform, field, totals) for platform, totals in columns))
                 for field, label in PLATFORM_ROWS)
    header = ("Figure", *(platform_name(p) if p else "All platforms" for p, _ in columns))
    return Table(caption="Posts, contributors, reach and engagement per platform", header=header, rows=rows,
                 numeric=(False, *([True] * len(columns))), keys=tuple(field for field, _ in PLATFORM_ROWS),
                 row_headers=True, note=None if _headline_dashes(content) else _dash_note(content))


def _charts(drawn: dict[str, Chart], *files: str) -> list[Block]:
    return [drawn[file] for file in files if file in drawn]


def _over_time(content: ReportContent, drawn: dict[str, Chart]) -> list[Block]:
    phrase = bucket_phrase(content.bucket_seconds)
    return [Heading("The storm over time"),
            Paragraph(f"Posts are counted per {phrase}; times are in {content.timezone_name} "
                      f"({utc_offset(content.window.since, content.timezone)}). Every bucket is in volume.csv."),
            *_charts(drawn, "volume.png")]


def _account_table(caption: str, accounts: tuple[NamedAccount, ...]) -> Table:
    # The platform under the account (and its name where shown): narrow enough for a phone without cards.
    rows = tuple((str(rank), Lines((account_label(account), " · ".join(
                      (platform_name(account.platform), *((account.name,) if account.name else ()))))),
                  number(account.followers), number(account.posts), number(account.engagement))
                 for rank, account in enumerate(accounts, 1))
    return Table(caption=caption, header=("#", "Account", "Followers", "Posts", "Engagement received"),
                 rows=rows, numeric=(True, False, True, True, True))


def _accounts(content: ReportContent, drawn: dict[str, Chart]) -> list[Block]:
    note = ("Display names are shown for named accounts only." if content.policy.pseudonymized
            else "Every account is named (public mode).")
    table = _account_table(f"The {len(content.top_by_posts)} accounts with the most posts, of "
                           f"{number(len(content.contributors))} contributors", content.top_by_posts)
    explained = replace(table, note="Followers: the account's followers when last collected; Posts: its campaign "
                                    "posts in the window, all kinds; Engagement received: the likes, reposts, replies "
                                    "and quotes its posts drew (reposts aside). Every contributor, with the same "
                                    f"columns, is in accounts.csv. {note}")
    return [Heading("Who carried the storm"),
            *_charts(drawn, "top_accounts.png"),
            explained,
            Heading("Languages", 3),
            _languages_table(content)]


def _post_rows(posts: tuple[NamedPost, ...], timezone_name: str,
               one_day: bool) -> tuple[tuple[Cell, ...], ...]:
    rows = []
    for rank, post in enumerate(posts, 1):
        local = post.local_time.replace("T", " ")
        when = local[11:16] if one_day else f"{local[5:10]} {local[11:16]}"
        # The time opens the post (named authors only: a link names its author).
        time: Cell = Link(when, post.url, f"post {rank} on {platform_name(post.platform)}") if post.url else when
        author = f"@{post.author}" if post.author_named else post.author
        counters = ", ".join(_count(n, word) for n, word in ((post.likes, "like"), (post.reposts, "repost"),
                                                             (post.replies, "reply"), (post.quotes, "quote")))
        rows.append((str(rank), time, Lines((author, f"{platform_name(post.platform)} · {post.kind}")), post.text,
                     Lines((number(post.engagement), counters))))
    return tuple(rows)


def _count(number_of: int, thing: str) -> str:
    plural = "replies" if thing == "reply" else f"{thing}s"
    return f"{number(number_of)} {thing if number_of == 1 else plural}"


def _posts(content: ReportContent, drawn: dict[str, Chart]) -> list[Block]:
    span = content.window.until - content.window.since
    local_days = {p.created_at.astimezone(content.timezone).date() for p in content.top_posts}
    one_day = len(local_days) <= 1 and span <= timedelta(days=1)
    when = "time" if one_day else "day and time"
    return [Heading("What was posted"),
            Table(caption=f"Top posts by engagement received ({when} in {content.timezone_name}; a time links to "
                          "the post where its author is named; engagement: likes, reposts, replies and quotes)",
                  header=("#", "When", "Account", "Text", "Engagement"),
                  rows=_post_rows(content.top_posts, content.timezone_name, one_day),
                  numeric=(True, False, False, False, True), text_column=3, wide=True)]


def _counts_table(caption: str, first: str, rows: tuple[tuple[str, int], ...], prefix: str,
                  second: str = "Posts") -> Table:
    return Table(caption=caption, header=(first, second),
                 rows=tuple((f"{prefix}{name}", number(count)) for name, count in rows), numeric=(False, True),
                 row_headers=True)


def _hashtags_and_targets(content: ReportContent, drawn: dict[str, Chart]) -> list[Block]:
    # The co-hashtags as a chart, the target mentions as a table: each told once.
    blocks: list[Block] = [Heading("Hashtags and targets"),
                           _counts_table("The campaign's hashtags (posts carrying each)", "Hashtag",
                                         content.campaign_hashtags, "#"),
                           *_charts(drawn, "co_hashtags.png")]
    if content.campaign.targets:
        blocks.append(_counts_table("Posts mentioning each target account", "Target", content.target_mentions, "@",
                                    "Posts mentioning it"))
    else:
        blocks.append(Paragraph("The campaign lists no target accounts."))
    return blocks


def _coverage(content: ReportContent, drawn: dict[str, Chart]) -> list[Block]:
    blocks: list[Block] = [Heading("Coverage"), *_stream_coverage(content)]
    with_counts = [c for c in content.coverage if c.has_counts]
    if not with_counts:
        sources = ", ".join(platform_name(c.source) for c in content.coverage) or "none"
        blocks.append(Paragraph(f"No platform counts were fetched for this window (sources: {sources}), so there is "
                                "no coverage chart and gaps in collection cannot be measured here.", note=True))
        return blocks
    blocks.append(Paragraph("The platform's own count of posts matching the campaign's query against the posts "
                            "collected that it counts (on X, those that are not reposts). Collected below counted: "
                            "posts were missed (deleted, protected, or a collection gap); above: posts that reached "
                            "the platform's index late."))
    blocks += _charts(drawn, "coverage.png")
    rows = []
    for coverage in with_counts:
        share = coverage.share
        rows.append((platform_name(coverage.source), number(coverage.collected), number(coverage.counted),
                     f"{share:.1%}" if share is not None else "–",
                     f"{number(coverage.short_buckets)} of {number(coverage.counted_buckets)}"))
    blocks.append(Table(caption="Collected vs the platform's count, over the buckets that have a count (Buckets "
                                "short: those with fewer posts collected than counted)",
                        header=("Platform", "Collected", "Counted", "Collected share", "Buckets short"),
                        rows=tuple(rows), numeric=(False, True, True, True, True)))
    short = [coverage for coverage in with_counts if coverage.largest_gaps]
    blocks += [_gaps_table(content, coverage) for coverage in short]
    if len(short) < len(with_counts):
        whole = listed([platform_name(c.source) for c in with_counts if not c.largest_gaps])
        blocks.append(Paragraph(f"On {whole}, no bucket has fewer posts collected than counted."))
    return blocks



def _stream_coverage(content: ReportContent) -> list[Block]:
    """X's filtered stream: reposts on X are covered by its connected time, each gap (from, to, why) in the
    campaign's zone, and the reposts the gaps may have missed, as the estimate it is."""
    summary = content.summary
    if not summary.x_stream_read or "x" not in content.campaign.sources:
        return []
    stream = summary.x_stream
    if stream is None:
        return [Paragraph("X's filtered stream was off for this campaign ([x] stream = false): X was read by search "
                          "only, which since 4 May 2026 returns no reposts, so X reposts made in the window are not "
                          "in these figures.", note=True)]
    zone = content.timezone
    span = stream.connected_seconds + stream.gap_seconds
    share = f" ({stream.connected_seconds / span:.0%})" if span else ""
    blocks: list[Block] = [Paragraph(
        "Since 4 May 2026 X's search and X's counts return no reposts: reposts on X come only from X's filtered "
        "stream, so their coverage is the stream's connected time — "
        f"{_duration(stream.connected_seconds)} of {_duration(span)}{share}, from "
        f"{human_time(stream.since, zone)} to {human_time(stream.until, zone)} ({content.timezone_name}). "
        f"The stream stored {number(stream.posts)} posts. X's counts below count what search returns: "
        "posts that are not reposts.")]
    if not stream.gaps:
        blocks.append(Paragraph("The stream was connected throughout: it has no gaps."))
        return blocks
    blocks.append(Table(
        caption=f"Gaps in X's filtered stream (times in {content.timezone_name})",
        header=("From", "To", "Length", "Why"),
        rows=tuple((human_time(gap.start, zone), human_time(gap.end, zone), _duration(round(gap.seconds)),
                    gap.reason) for gap in stream.gaps),
        numeric=(False, False, True, False)))
    if stream.reposts_missed_estimate is not None:
        blocks.append(Paragraph(f"Reposts the gaps may have missed: about {number(stream.reposts_missed_estimate)} "
                                f"— {ESTIMATE_NOTE}.", note=True))
    return blocks


def _duration(seconds: int) -> str:
    """`2 h 05 min`, `20 min`, `45 s`."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    return f"{minutes} min" if minutes else f"{secs} s"


def _gaps_table(content: ReportContent, coverage: SourceCoverage) -> Table:
    rows = tuple((human_time(gap.start, content.timezone), number(gap.collected), number(gap.counted),
                  number(gap.counted - gap.collected)) for gap in coverage.largest_gaps)
    return Table(caption=f"Largest collection gaps on {platform_name(coverage.source)} "
                         f"(times in {content.timezone_name}, per {bucket_phrase(content.bucket_seconds)})",
                 header=("Bucket from", "Collected", "Counted", "Missing"), rows=rows,
                 numeric=(False, True, True, True), empty="No bucket has fewer posts collected than counted.")


def _supporters(content: ReportContent) -> list[str]:
    """What the headline figures leave out: the hijack candidates (campaign posts with a counter-hashtag)."""
    tags = ", ".join(f"#{tag}" for tag in content.campaign.counter_hashtags)
    if not tags:
        return []
    hijacks, accounts = content.summary.hijack_posts, content.summary.hijack_accounts
    return [f"Supporters only: a campaign post also carrying a counter-hashtag ({tags}) is a hijack candidate, "
            f"counted with the counter-hashtags and in no other figure; here {number(hijacks)} "
            f"{'post' if hijacks == 1 else 'posts'} by {number(accounts)} "
            f"{'account' if accounts == 1 else 'accounts'}."]


def _methods(content: ReportContent) -> list[Block]:
    hashtags = ", ".join(f"#{tag}" for tag in content.campaign.hashtags)
    sources = ", ".join(platform_name(s) for s in content.campaign.sources)
    items = [
        f"What was collected: public posts carrying any of {hashtags} (case-insensitive), from {sources}, "
        "with their authors' public profiles and counters as of collection. Reposts, quotes and replies carrying a "
        "hashtag count as campaign posts; posts seen only as context (the original of a repost) do not. Posts are "
        "placed in the window (under the title) by their creation time.",
        *_supporters(content),
        "Counters (likes, reposts, replies, quotes, impressions, followers) are the latest the collector saw; "
        "they keep changing on the platform after collection. A repost carries the original post's counters, so "
        "they are never added up, and posts.csv leaves them empty for reposts.",
    ]
    note = content.not_reported_note
    if note:
        items.append(f"Not reported (— in the tables, null in summary.json, an empty cell in posts.csv): {note} "
                     "Such figures are never counted as zero.")
    items += _runs(content)
    items.append(content.policy.statement())
    if content.policy.pseudonymized:
        stable = ("stay the same in every report of this campaign" if content.namer.labels_stable else
                  "were not all stored (the database was read-only), so some will differ in the next report")
        items.append(f"{number(content.hidden_contributors)} of {number(len(content.contributors))} contributors "
                     f"appear under a pseudonym in this report. The labels are random and {stable}; they cannot be "
                     "worked back to a handle from the report. A post id or URL would name its author, so "
                     "posts.csv gives them only for named accounts. Quoted post texts and exact times can still "
                     "be searched on the platform: share the CSV files only with people you trust.")
    # The figures' definitions are in the headline table (and summary.json's `definitions`): not said twice.
    items.append("Files: report.html (self-contained), report.md, summary.json (as `stormwatch summary --json` "
                 "gives it, and how this report was made), posts.csv, accounts.csv and volume.csv (UTF-8; a cell a "
                 "spreadsheet would run as a formula starts with an apostrophe), the charts as PNG.")
    items.append(f"Produced by stormwatch {content.version}, which runs on the organizers' own machine; nothing "
                 "was sent to any third party to make it.")
    return [Heading("Methods and data"), Bullets(tuple(items))]


def _runs(content: ReportContent) -> list[str]:
    """The collection runs per source in one item, why some were not ok, and the caveat about them said once; the
    cost plan's counts requests apart (they collect nothing)."""
    collection = [runs for runs in content.runs if runs.source != PLAN_RUNS]
    items = []
    if collection:
        parts, reasons = [], []
        for runs in collection:
            statuses = ", ".join(f"{number(count)} {status.replace('_', ' ')}"
                                 for status, count in sorted(runs.by_status.items()))
            span = _run_span(runs.first_started_at, runs.last_finished_at, content)
            parts.append(f"{_run_source(runs.source)}: {_count(runs.runs, 'run')} ({statuses}){span}")
            reasons += [f"{_run_source(runs.source)}, {reason}: {_count(count, 'run')}"
                        for reason, count in runs.reasons.items()]
        cost = content.summary.cost
        # said beside the runs that spent it (a bullet of its own would cost the printed report a page)
        spent = (f" They cost {cost.line()}, estimated at the platform's prices over X's billing days {_days(cost)}"
                 + (" and the plan" if "plan" in cost.by_source else "") + "; the invoice is the authority."
                 if cost is not None else "")
        items.append(f"Collection runs ({content.timezone_name}) — {'; '.join(parts)}."
                     + (f" Why runs were not simply ok — {'; '.join(reasons)}." if reasons else "") + spent)
        if any(set(runs.by_status) - {"ok", "running"} for runs in collection):
            items.append("Runs that end partial, rate-limited or failed can leave gaps; the coverage section measures "
                         "them where the platform gives counts.")
    else:
        items.append("No collection runs are recorded for this campaign (the data may have been imported).")
    plan = next((runs for runs in content.runs if runs.source == PLAN_RUNS), None)
    if plan is not None:
        items.append(f"The cost plan (`stormwatch plan`) asked X for its counts in {_count(plan.runs, 'run')}: "
                     "billed, but they collect no posts.")
    return items


def _run_source(source: str) -> str:
    """Who a run read from: the platform, or X's filtered stream (its runs carry the stream's reads and cost)."""
    return "X's filtered stream" if source == STREAM_RUNS else platform_name(source)


def _run_span(first: datetime | None, last: datetime | None, content: ReportContent) -> str:
    if first is None:
        return ""
    start = human_time(first, content.timezone)
    if last is None:
        return f" from {start}"
    return f" from {start} to {human_time(last, content.timezone)}"
