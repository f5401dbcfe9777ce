"""Mastodon statuses (hashtag and account timeline pages, plain status arrays) to rows; trending tags to entries.

The same status reaches many instances, each giving it its own local `id`; only its ActivityPub `uri`
is the same everywhere, so the uri is the post's key (`mastodon:<uri>`). Accounts are keyed by their
fediverse address `username@domain`, which every instance agrees on.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

from ..errors import MalformedPage
from ..models import Account, Batch, Post, Trend
from .common import (
    MAX_LANG,
    MAX_NAME,
    MAX_TAG,
    MAX_TEXT,
    MAX_URL,
    RecordKind,
    clean_tag,
    counter,
    optional_dict,
    optional_list,
    optional_text,
    type_name,
    unique,
    utc_stamp,
    wrong_type,
)
from .text import strip_controls

PLATFORM = "mastodon"
_VOID_TAGS = frozenset({"br", "img", "hr", "wbr"})  # elements without an end tag
# Mastodon shows a status's quote one level deep, and a reblog of a reblog does not exist: deeper nesting in a
# page is hostile (a thousand levels would exhaust the stack), so it is not followed.
_MAX_NESTING = 3
# Status HTML longer than this is cut before parsing (the text is cut to MAX_TEXT afterwards anyway).
_MAX_HTML = 4 * MAX_TEXT


def uid(key: str) -> str:
    """The platform-qualified key of a status (by uri) or an account (by `username@domain`)."""
    return f"{PLATFORM}:{key}"


def normalize_timeline(body: Mapping[str, Any], retrieved_at: str) -> Batch:
    """Rows from one hashtag-timeline page as the Mastodon source stores it: `{"instance", "tag", "statuses"}`.

    Every status of the page is a post of the batch (the caller decides campaign membership); the
    originals of reblogs and quoted statuses are context. Unreadable statuses are skipped and named in
    `Batch.errors`; a page of the wrong shape raises MalformedPage. The input is never modified.
    """
    if not isinstance(body, Mapping):
        raise MalformedPage(f"page is {type(body).__name__}, not a JSON object")
    instance = body.get("instance")
    if instance is not None and not isinstance(instance, str):
        raise MalformedPage(f"instance is {type(instance).__name__}, not a string")
    if instance is not None and not _INSTANCE.fullmatch(instance.strip()):
        raise MalformedPage(f"instance: {instance[:60]!r} is not an instance name")
    if "statuses" not in body:
        raise MalformedPage("no statuses in the page")
    return normalize_statuses(body["statuses"], retrieved_at, instance)


def normalize_statuses(statuses: Any, retrieved_at: str, instance: str | None) -> Batch:
    """Rows from a JSON array of Mastodon status entities, as served by `instance` (None when unknown).

    `instance` completes local account addresses (`acct` without a domain); without it the domain
    comes from the account's profile URL.
    """
    if not isinstance(statuses, list):
        raise MalformedPage(f"statuses is {type(statuses).__name__}, not a list")
    domain = instance.strip().lower() if instance else None
    reader = _Reader(retrieved_at, domain)
    # Replies name their parent by instance-local id only: map the ids this page shows to uris, so a
    # parent that is on the same page can be referenced reliably.
    for status in statuses:
        reader.learn_ids(status)
    posts: list[Post] = []
    for index, status in enumerate(statuses):
        try:
            posts.append(reader.post(status))
        except MalformedPage as exc:
            reader.errors.append(f"statuses[{index}]{exc}, skipped")
    matched = {post.uid for post in posts}
    context = [post for key, post in reader.context.items() if key not in matched]
    return Batch(posts=tuple(posts), context_posts=tuple(context), accounts=tuple(reader.accounts.values()),
                 errors=tuple(reader.errors))


def normalize_trending_tags(body: Mapping[str, Any], location: str, seen_at: datetime) -> list[Trend]:
    """Entries of an instance's trending tags as the source stores them (`{"instance", "tags"}`), in rank order.

    A Tag entity's `history` holds a day per entry (`day` in epoch seconds as text, `uses`, `accounts`); an
    entry's volume is the uses on the newest day. Tags without a name are skipped. The input is never modified.
    """
    if not isinstance(body, Mapping):
        raise MalformedPage(f"page is {type(body).__name__}, not a JSON object")
    tags = body.get("tags")
    if not isinstance(tags, list):
        raise MalformedPage(f"tags is {type(tags).__name__}, not a list")
    # An instance names its own trends: hostile text like any other (cleaned, cut to a tag's length).
    place = _trend_text(body.get("instance")) or location
    named = [(name, tag) for tag in tags if type(tag) is dict
             for name in [_trend_text(tag.get("name"), strip="#")] if name]
    return [Trend(platform=PLATFORM, location=place, woeid=None, rank=rank, name="#" + name,
                  volume=_uses_today(tag.get("history")), seen_at=seen_at)
            for rank, (name, tag) in enumerate(named, 1)]


def _trend_text(value: Any, strip: str = "") -> str | None:
    """A trend's (or its place's) name: a string cleaned of control characters and cut short, else None."""
    if type(value) is not str:
        return None
    return strip_controls(value[:MAX_TAG]).strip().lstrip(strip).strip() or None


def _uses_today(history: Any) -> int | None:
    """The uses on the newest day of a tag's history (None when it has none that can be read)."""
    if type(history) is not list:
        return None
    days = [(counter(day.get("day")), counter(day.get("uses"))) for day in history if type(day) is dict]
    known = [(day, uses) for day, uses in days if day is not None and uses is not None]
    return max(known)[1] if known else None


def normalize_status(status: Any, retrieved_at: str) -> Batch:
    """Rows from one status entity on its own (an archive line), its instance unknown."""
    return normalize_statuses([status], retrieved_at, None)


def html_to_text(html: str) -> str:
    """Plain text of Mastodon's status HTML: paragraphs and `<br>` become line breaks, links keep their text."""
    if "<" not in html and "&" not in html:
        return html.strip()
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except Exception:  # html.parser can still trip over odd declarations (`<![if`): keep what it read
        pass
    return parser.text()


class _TextExtractor(HTMLParser):
    """Collects text; block boundaries become newlines (a blank line between paragraphs, as Mastodon shows them).

    A quote's `<p class="quote-inline">RE: <link></p>` is left out: it is the fallback for software that
    cannot show quotes, and Mastodon hides it wherever it shows the quoted status itself.
    """

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden_depth = 0  # > 0 inside a quote-inline paragraph: counts its open elements

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden_depth:
            if tag not in _VOID_TAGS:
                self.hidden_depth += 1
            return
        if tag == "p" and "quote-inline" in (dict(attrs).get("class") or "").split():
            self.hidden_depth = 1
            return
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if not self.hidden_depth and tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if self.hidden_depth and tag not in _VOID_TAGS:
            self.hidden_depth -= 1

    def handle_data(self, data: str) -> None:
        if not self.hidden_depth:
            self.parts.append(data)

    def text(self) -> str:
        """The collected text without leading or trailing blank space."""
        return "".join(self.parts).strip()


class _Reader:
    """Turns statuses into posts, collecting accounts, context posts and problems along the way."""

    def __init__(self, retrieved_at: str, domain: str | None) -> None:
        self.retrieved_at = retrieved_at
        self.domain = domain
        self.accounts: dict[str, Account] = {}
        self.context: dict[str, Post] = {}
        self.errors: list[str] = []
        self.uri_of_id: dict[str, str] = {}

    def learn_ids(self, status: Any, depth: int = 0) -> None:
        """Remember the local id -> uri of a status and of the statuses it carries (reblogged, quoted)."""
        if type(status) is not dict or depth > _MAX_NESTING:
            return
        native, uri = status.get("id"), status.get("uri")
        if type(native) in (str, int) and type(uri) is str and uri:
            self.uri_of_id[str(native)] = uri
        self.learn_ids(status.get("reblog"), depth + 1)
        quote = status.get("quote")
        if type(quote) is dict:
            self.learn_ids(quote.get("quoted_status", quote.get("status")), depth + 1)

    def post(self, status: Any) -> Post:
        """One status as a post; a MalformedPage message starts with the field (`.uri: …`) for the caller."""
        if type(status) is not dict:
            raise MalformedPage(": not an object")
        original = optional_dict(status.get("reblog"), ".reblog")
        if original is not None:
            try:
                shared = self._post(original, None, 1)
            except MalformedPage as exc:
                raise MalformedPage(f".reblog{exc}") from None
            self.context.setdefault(shared.uid, shared)
            return self._post(status, shared, 0)
        return self._post(status, None, 0)

    def _post(self, status: dict[str, Any], shared: Post | None, depth: int) -> Post:
        """A status as a post; `shared` is the original when the status is a reblog of it.

        Every field read is checked: a wrong type or an impossible value rejects the status (and only it).
        """
        uri = _status_uri(status.get("uri"))
        created_at, ts = _timestamp(status.get("created_at"), ".created_at")
        author = self._account(status.get("account"))
        kind, ref_uid = ("repost", shared.uid) if shared is not None else self._reference(status, depth)
        if shared is not None:
            # A reblog has no content of its own: it shows the original, as an X repost does.
            text, lang, tags, mentions = shared.text, shared.lang, shared.tags, shared.mentions
        else:
            content = status.get("content")
            if content is not None and type(content) is not str:
                raise wrong_type(".content", "a string", content)
            text = optional_text(html_to_text(content[:_MAX_HTML]) if content else None, ".content", MAX_TEXT) or ""
            lang = optional_text(status.get("language"), ".language", MAX_LANG)
            tags = unique([t for t in (clean_tag(tag.get("name")) for tag in _dicts(status.get("tags"), ".tags"))
                           if t])
            mentions = unique([h for h in (self._handle_of(m) for m in _dicts(status.get("mentions"), ".mentions"))
                               if h])
        url = status.get("url")
        if url is not None and type(url) is not str:
            raise wrong_type(".url", "a string", url)
        return Post(
            uid(uri), PLATFORM, uri, author.uid, created_at, ts, text, lang, kind, ref_uid, _web_url(url),
            counter(status.get("favourites_count")), counter(status.get("reblogs_count")),
            counter(status.get("replies_count")), counter(status.get("quotes_count")), None, None,
            self.retrieved_at, tags, mentions)

    def _reference(self, status: dict[str, Any], depth: int) -> tuple[str, str | None]:
        """(kind, referenced post uid) of a status that is not a reblog: reply outranks quote, as on X."""
        parent = status.get("in_reply_to_id")
        if parent is not None:
            if type(parent) not in (str, int):
                raise wrong_type(".in_reply_to_id", "an id", parent)
            parent_uri = self.uri_of_id.get(str(parent))
            return "reply", uid(parent_uri) if parent_uri else None
        quote = optional_dict(status.get("quote"), ".quote")
        if quote is None:
            return "original", None
        quoted = quote.get("quoted_status", quote.get("status"))
        if type(quoted) is dict and depth < _MAX_NESTING:
            try:
                context = self._post(quoted, None, depth + 1)
            except MalformedPage as exc:
                self.errors.append(f"quoted status{exc}, not kept")
                return "quote", None
            self.context.setdefault(context.uid, context)
            return "quote", context.uid
        # A shallow quote names the quoted status by local id only; a pending or revoked quote not at all.
        quoted_id = quote.get("quoted_status_id")
        quoted_uri = self.uri_of_id.get(str(quoted_id)) if type(quoted_id) in (str, int) else None
        return "quote", uid(quoted_uri) if quoted_uri else None

    def _account(self, account: Any) -> Account:
        if type(account) is not dict:
            raise MalformedPage(".account: missing" if account is None else
                                f".account: expected an object, got {type_name(account)}")
        handle = self._handle_of(account, keep_case=True)
        if handle is None:
            raise MalformedPage(".account: no valid username and domain")
        address = handle.lower()
        key = uid(address)
        created = account.get("created_at")
        created_at = None
        if isinstance(created, str) and created:
            try:
                created_at = _timestamp(created, ".account.created_at")[0]
            except MalformedPage as exc:
                self.errors.append(f"account {handle}{exc}")
        snapshot = Account(
            uid=key, platform=PLATFORM, id=address, handle=handle,
            name=optional_text(account.get("display_name"), ".account.display_name", MAX_NAME),
            followers_count=counter(account.get("followers_count")),
            following_count=counter(account.get("following_count")),
            posts_count=counter(account.get("statuses_count")),
            verified=None,  # Mastodon has no verification, only links a profile proves it owns
            created_at=created_at, updated_at=self.retrieved_at)
        self.accounts.setdefault(key, snapshot)
        return snapshot

    def _handle_of(self, account: dict[str, Any], *, keep_case: bool = False) -> str | None:
        """`username@domain` of an account or mention entity; lower-cased unless `keep_case` (for display:
        fediverse addresses are case-blind, so keys are always lower-case), the domain always. None unless it
        has the shape of a fediverse address (so no stranger's text becomes a handle)."""
        acct = account.get("acct")
        if isinstance(acct, str) and "@" in acct.strip("@"):
            username, _, domain = acct.strip("@").partition("@")
        else:
            local = acct if isinstance(acct, str) and acct else account.get("username")
            if not isinstance(local, str) or not local.strip("@"):
                return None
            # A local account's acct has no domain: it is the instance's own (or its profile URL's host).
            username, domain = local.strip("@"), self.domain or _host(account.get("url")) or ""
        if not username or not domain:
            return None
        address = f"{username if keep_case else username.lower()}@{domain.lower()}"
        return address if len(address) <= 320 and _ADDRESS.fullmatch(address) else None


# An instance's name (`mastodon.social`, `localhost:3000`) and an account's fediverse address on it.
_INSTANCE = re.compile(r"[\w-]+(?:\.[\w-]+)*(?::\d{1,5})?")
_ADDRESS = re.compile(r"\w+(?:[.-]\w+)*@" + _INSTANCE.pattern)


def _status_uri(uri: Any) -> str:
    """A status's ActivityPub uri, its key everywhere: an http(s) address without blanks or control characters."""
    if not isinstance(uri, str) or not uri:
        raise MalformedPage(".uri: missing" if uri is None or uri == "" else
                            f".uri: expected a string, got {type_name(uri)}")
    if len(uri) > MAX_URL or not uri.startswith(("https://", "http://")) or not uri.isprintable() or " " in uri:
        raise MalformedPage(f".uri: {uri[:60]!r} is not an http(s) address")
    return uri


def _web_url(url: str | None) -> str | None:
    """A status's web address when it is an http(s) address (anything else is not a link worth keeping)."""
    if (not url or len(url) > MAX_URL or not url.startswith(("https://", "http://")) or not url.isprintable()
            or " " in url):
        return None
    return url


def _timestamp(text: Any, where: str) -> tuple[str, int]:
    """Mastodon's own `2021-02-07T16:00:00.000Z` is already the stored form (checked); anything else is parsed."""
    if not isinstance(text, str) or not text:
        raise MalformedPage(f"{where}: missing" if text is None or text == "" else
                            f"{where}: expected a timestamp, got {type_name(text)}")
    return utc_stamp(text, where)


def _dicts(items: Any, where: str) -> list[dict[str, Any]]:
    """A list of objects (tags, mentions): each must be an object."""
    found = optional_list(items, where)
    for index, item in enumerate(found):
        if type(item) is not dict:
            raise wrong_type(f"{where}[{index}]", "an object", item)
    return found


def _host(url: Any) -> str | None:
    """The host of a profile URL (`https://mastodon.social/@issa` -> `mastodon.social`)."""
    if not isinstance(url, str) or "://" not in url:
        return None
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host or None


# --------------------------------------------------------------------------- archive records

def _is_timeline_page(body: dict[str, Any]) -> bool:
    """stormwatch's own raw archive of a tag timeline page: `{"instance", "tag", "statuses"}`."""
    return isinstance(body.get("statuses"), list) and "instance" in body


def _is_status(body: dict[str, Any]) -> bool:
    return "content" in body and "account" in body and ("uri" in body or "url" in body)


def _is_trends_page(body: dict[str, Any]) -> bool:
    """stormwatch's own raw archive of an instance's trending tags: `{"instance", "tags"}`."""
    return isinstance(body.get("tags"), list) and "instance" in body and "statuses" not in body


MASTODON_PAGE = RecordKind("mastodon-page", PLATFORM, _is_timeline_page, rows=normalize_timeline)
# Trending tags are archived with the pages; an import knows them and finds no posts in them.
MASTODON_TRENDS = RecordKind("mastodon-trends", PLATFORM, _is_trends_page, rows=lambda body, retrieved_at: Batch())
MASTODON_STATUS = RecordKind("mastodon-status", PLATFORM, _is_status, rows=normalize_status)
RECORD_KINDS = (MASTODON_PAGE, MASTODON_TRENDS, MASTODON_STATUS)
