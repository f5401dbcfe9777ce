"""The Mastodon normalizer: real recorded statuses, and the simulated instances' reblogs, replies and quotes."""

from __future__ import annotations

import copy
import json
from urllib.parse import parse_qs, urlsplit

import pytest

from stormwatch.errors import MalformedPage
from stormwatch.normalize.mastodon import html_to_text, normalize_statuses, normalize_timeline
from stormwatch.simulator.spec import QUOTE, REPLY, REPOST
from stormwatch.simulator.storm import Storm
from tests import mastodon_support
from tests.mastodon_support import CHAOS, RETRIEVED, SOCIAL, Fediverse, cassette, tag_responses

# Fixtures the tests take by name, shared with the other Mastodon test modules.
storm = mastodon_support.storm
fedi = mastodon_support.fedi


def test_recorded_tag_timeline_normalizes_to_the_status_that_was_posted() -> None:
    interactions = cassette("test_hashtag_tl.yaml")
    posted = next(i for i in interactions if i["request"]["method"] == "POST")
    typed = parse_qs(posted["request"]["body"])["status"][0]
    created = json.loads(posted["response"]["body"]["string"])
    ((url, statuses, _),) = tag_responses("test_hashtag_tl.yaml")
    original = copy.deepcopy(statuses)

    batch = normalize_timeline({"instance": urlsplit(url).netloc, "tag": "hoot", "statuses": statuses},
                               RETRIEVED)

    assert statuses == original  # the normalizer never mutates its input
    (post,) = batch.posts
    assert post.uid == "mastodon:" + created["uri"] and post.id == created["uri"]
    assert post.text == typed == "#hoot (hashtag toot)"  # the HTML back to what the author typed
    assert post.tags == ("hoot",) and post.mentions == ()
    assert (post.kind, post.ref_uid, post.lang) == ("original", None, created["language"])
    assert (post.like_count, post.repost_count, post.reply_count, post.quote_count) == (0, 0, 0, 0)
    assert post.bookmark_count is None and post.impression_count is None
    assert post.created_at == created["created_at"] and post.url == created["url"]
    (account,) = batch.accounts
    assert account.uid == post.author_uid == "mastodon:mastodonpy_test_2@localhost:3000"
    assert (account.followers_count, account.posts_count, account.verified) == (0, created["account"][
        "statuses_count"], None)
    assert account.updated_at == RETRIEVED and batch.errors == ()


def test_html_to_text_keeps_link_text_and_line_breaks() -> None:
    html = ('<p>&quot;I lost my inheritance&quot; &amp; more</p><p><a href="https://www.theguardian.com/x" '
            'rel="nofollow noopener" target="_blank"><span class="invisible">https://www.</span>'
            '<span class="ellipsis">theguardian.com/money</span><span class="invisible">/x</span></a><br />'
            'second line <a href="https://a.social/tags/cats" class="mention hashtag">#<span>cats</span></a></p>')
    assert html_to_text(html) == ('"I lost my inheritance" & more\n\nhttps://www.theguardian.com/money/x\n'
                                  "second line #cats")
    # A quote's fallback line is hidden where the quoted status is shown, so it is no part of the text.
    quoting = ('<p class="quote-inline">RE: <a href="https://a.social/@b/1"><span class="invisible">https://'
               '</span><span>a.social/@b/1</span></a><br/></p><p>Free them all &lt;3</p>')
    assert html_to_text(quoting) == "Free them all <3"


def test_reblogs_replies_and_quotes(storm: Storm, fedi: Fediverse) -> None:
    mastodon = [p for p in storm.posts if p.platform == "mastodon" and not p.deleted]
    reblog = next(p for p in mastodon if p.kind == REPOST)
    quote = next(p for p in mastodon if p.kind == QUOTE and not storm.post_by_id(p.ref_id).deleted)
    reply = next(p for p in mastodon if p.kind == REPLY)
    parent = storm.post_by_id(reply.ref_id)
    statuses = [fedi.instances.status_json(SOCIAL, p) for p in (reblog, quote, reply, parent)]
    before = copy.deepcopy(statuses)

    batch = normalize_statuses(statuses, RETRIEVED, SOCIAL)

    assert statuses == before and batch.errors == ()
    by_uid = {post.uid: post for post in batch.posts}
    original = storm.post_by_id(reblog.ref_id)
    shared = by_uid[f"mastodon:{fedi.instances.uri_of(reblog)}/activity"]
    assert shared.kind == "repost" and shared.ref_uid == f"mastodon:{fedi.instances.uri_of(original)}"
    context = {post.uid: post for post in batch.context_posts}
    assert context[shared.ref_uid].text == shared.text != ""  # the original is context, its text shown
    quoting = by_uid[f"mastodon:{fedi.instances.uri_of(quote)}"]
    assert quoting.kind == "quote"
    assert quoting.ref_uid == f"mastodon:{fedi.instances.uri_of(storm.post_by_id(quote.ref_id))}"
    assert quoting.ref_uid in context or quoting.ref_uid in by_uid
    # The parent is on the same page, so its local id leads to its uri.
    replying = by_uid[f"mastodon:{fedi.instances.uri_of(reply)}"]
    assert replying.kind == "reply" and replying.ref_uid == f"mastodon:{fedi.instances.uri_of(parent)}"
    parent_author = storm.users[parent.author]
    assert f"{parent_author.username.lower()}@{fedi.instances.home_of(parent_author)}" in replying.mentions
    # Without the parent on the page, the reply's parent stays unknown rather than guessed.
    (alone,) = normalize_statuses([statuses[2]], RETRIEVED, SOCIAL).posts
    assert alone.kind == "reply" and alone.ref_uid is None


def test_counters_tags_and_accounts_follow_the_entity(storm: Storm, fedi: Fediverse) -> None:
    post = next(p for p in storm.posts if p.platform == "mastodon" and p.kind != REPOST and len(p.hashtags) > 1
                and p.likes and fedi.instances.home_of(storm.users[p.author]) == CHAOS)
    (row,) = normalize_statuses([fedi.instances.status_json(SOCIAL, post)], RETRIEVED, SOCIAL).posts
    assert (row.like_count, row.repost_count, row.reply_count, row.quote_count) == (
        post.likes, post.reposts, post.replies, post.quotes)
    assert row.tags == tuple(dict.fromkeys(t.lower() for _, _, t in post.hashtags))
    author = storm.users[post.author]
    # Seen on mastodon.social, the chaos.social author's acct carries its domain.
    assert row.author_uid == f"mastodon:{author.username.lower()}@{CHAOS}"


def test_unreadable_statuses_are_skipped_and_named() -> None:
    ((_, statuses, _),) = tag_responses("test_hashtag_tl.yaml")
    broken = {k: v for k, v in statuses[0].items() if k != "uri"}
    batch = normalize_timeline({"instance": "localhost:3000", "statuses": [broken, statuses[0], "junk"]}, RETRIEVED)
    assert len(batch.posts) == 1
    assert batch.errors == ("statuses[0].uri: missing, skipped", "statuses[2]: not an object, skipped")
    with pytest.raises(MalformedPage, match="not a list"):
        normalize_timeline({"instance": "x", "statuses": {"error": "Record not found"}}, RETRIEVED)
    with pytest.raises(MalformedPage, match="no statuses"):
        normalize_timeline({"instance": "x"}, RETRIEVED)
