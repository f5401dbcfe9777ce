"""The simulated X's search grammar and its evaluation over a storm (`simulator/query.py`)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from stormwatch.simulator import Post, QueryEngine, QueryError, Storm, parse_query
from stormwatch.simulator.query import And, Not, Or, Term
from stormwatch.simulator.spec import REPOST, unescape_text

from .simulator_support import CAMPAIGN_QUERY, SPEC


@pytest.fixture(scope="module")
def storm() -> Storm:
    return Storm.build(SPEC)


def test_query_grammar_parses_x_syntax() -> None:
    node = parse_query("(#StandWithIssa OR #DropTheCharges) -is:retweet hebron")
    assert isinstance(node, And) and len(node.children) == 3
    group, negation, keyword = node.children
    assert isinstance(group, Or) and [t.value for t in group.children] == ["standwithissa", "dropthecharges"]  # type: ignore[union-attr]
    assert isinstance(negation, Not) and negation.child == Term("is", "repost", 38)
    assert keyword == Term("keyword", "hebron", 49)
    assert parse_query('"drop the charges"') == Term("phrase", "drop the charges", 1)
    for bad in ("(#a OR #b", "#a OR", "is:retweet", "-#a", "#a or #b", "has:media #a", "$AAPL", "#a )", "x" * 513):
        with pytest.raises(QueryError):
            parse_query(bad)


def test_query_engine_semantics(storm: Storm) -> None:
    engine = QueryEngine(storm)
    visible = [p for p in storm.posts if p.platform == "x" and not p.deleted]

    def matching(predicate: Any) -> list[int]:
        return [storm.position_of(p.id) for p in visible if predicate(p)]  # type: ignore[misc]

    def tags(post: Post) -> set[str]:
        return {tag.lower() for _, _, tag in post.hashtags}

    assert list(engine.positions("#STANDWITHISSA")) == matching(lambda p: "standwithissa" in tags(p))
    assert list(engine.positions("#standwithissa -is:retweet")) == matching(
        lambda p: "standwithissa" in tags(p) and p.kind != REPOST
    )
    assert list(engine.positions("#Hebron -#StandWithIssa -#DropTheCharges -#FreePoliticalPrisoners")) == matching(
        lambda p: "hebron" in tags(p) and not tags(p) & {"standwithissa", "dropthecharges", "freepoliticalprisoners"}
    )
    noise = matching(lambda p: not p.campaign)
    assert noise and not set(noise) & set(engine.positions(CAMPAIGN_QUERY))
    assert list(engine.positions("DEFENDERS")) == matching(
        lambda p: "defenders" in re.findall(r"\w+", unescape_text(p.text).lower())
    )
    arabic = engine.positions("#الخليل")
    assert arabic and all("الخليل" in {t for _, _, t in storm.posts[i].hashtags} for i in arabic)
    account = storm.user_by_handle("Issaamro")
    assert account is not None
    from_account = engine.positions("from:issaamro #StandWithIssa OR from:issaamro")
    assert from_account and all(storm.posts[i].author == account.index for i in from_account)
    assert engine.positions(CAMPAIGN_QUERY) is engine.positions(CAMPAIGN_QUERY)  # cached
