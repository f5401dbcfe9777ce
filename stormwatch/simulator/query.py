"""The recent-search query grammar subset and its fast evaluation over a materialized storm.

Supported (X semantics): hashtags ``#tag`` (exact tag, case-insensitive), bare keywords (case-insensitive
word match), ``"exact phrases"``, mentions ``@handle``, ``from:handle``, ``lang:xx``, ``is:retweet``,
``is:reply``, ``is:quote``, implicit AND by juxtaposition, ``OR``, parentheses and negation with ``-``.
Anything else is refused with X's 400 body, as are queries over 512 characters and queries without a
positive standalone clause (``is:``/``lang:`` need one, like on X).

Evaluation works on bitsets (Python ints, bit *i* = post *i* of the storm): one per hashtag, kind,
author, mention and language, built once; keyword bitsets are built from a token index on first use.
Results are cached per query string.
"""

from __future__ import annotations

import re
import threading
from array import array
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass

from stormwatch.simulator.spec import QUOTE, REPLY, REPOST, unescape_text
from stormwatch.simulator.storm import Storm
from stormwatch.simulator.wire_x import InvalidRequest, ParameterProblem

MAX_QUERY_LENGTH = 512
_PREFIX = "There were errors processing your request: "
_WORD = re.compile(r"\w+")
_HANDLE = re.compile(r"^[A-Za-z0-9_]{1,15}$")
_LANG = re.compile(r"^([a-z]{2,3}|und)$")
_IS_KINDS = {"retweet": REPOST, "reply": REPLY, "quote": QUOTE}


class QueryError(InvalidRequest):
    """A query X would refuse: the 400 body names the `query` parameter."""

    def __init__(self, query: str, message: str, position: int | None = None) -> None:
        where = f" (at position {position})" if position is not None else ""
        self.query = query
        self.message = _PREFIX + message + where
        super().__init__([ParameterProblem("query", (query,), self.message)])


# -------------------------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Term:
    """A leaf: `kind` is hashtag, keyword, phrase, mention, from, lang or is; `value` is lower-cased."""

    kind: str
    value: str
    position: int

    @property
    def standalone(self) -> bool:
        """Whether X lets this operator stand on its own (is: and lang: need a partner)."""
        return self.kind not in ("is", "lang")


@dataclass(frozen=True)
class Not:
    """Negation of a clause."""

    child: Node


@dataclass(frozen=True)
class And:
    """All clauses (juxtaposition)."""

    children: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """Any clause."""

    children: tuple[Node, ...]


Node = Term | Not | And | Or


# -------------------------------------------------------------------------------------- tokenizer


@dataclass(frozen=True)
class _Token:
    kind: str  # "(", ")", "OR", "-", "term", "phrase"
    text: str
    position: int  # 1-based, as in X's messages


def _tokenize(query: str) -> list[_Token]:
    tokens: list[_Token] = []
    i = 0
    length = len(query)
    while i < length:
        ch = query[i]
        if ch.isspace():
            i += 1
            continue
        if ch in "()":
            tokens.append(_Token(ch, ch, i + 1))
            i += 1
            continue
        if ch == "-":
            if i + 1 >= length or query[i + 1].isspace() or query[i + 1] in ")-":
                raise QueryError(query, f"no viable alternative at input '{ch}'", i + 1)
            tokens.append(_Token("-", ch, i + 1))
            i += 1
            continue
        if ch == '"':
            close = query.find('"', i + 1)
            if close == -1:
                raise QueryError(query, "Missing closing quote for phrase", i + 1)
            tokens.append(_Token("phrase", query[i + 1 : close], i + 1))
            i = close + 1
            continue
        start = i
        while i < length and not query[i].isspace() and query[i] not in '()"':
            i += 1
        word = query[start:i]
        tokens.append(_Token("OR" if word == "OR" else "term", word, start + 1))
    return tokens


# ----------------------------------------------------------------------------------------- parser


class _Parser:
    def __init__(self, query: str) -> None:
        self.query = query
        self.tokens = _tokenize(query)
        self.at = 0

    def error(self, message: str, position: int | None) -> QueryError:
        """A QueryError for this query."""
        return QueryError(self.query, message, position)

    def peek(self) -> _Token | None:
        """The next token, not consumed."""
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def parse(self) -> Node:
        """The whole query."""
        if not self.tokens:
            raise self.error("Rules must contain at least one positive, non-stopword clause", 1)
        node = self.parse_or()
        leftover = self.peek()
        if leftover is not None:
            raise self.error(f"no viable alternative at input '{leftover.text}'", leftover.position)
        return node

    def parse_or(self) -> Node:
        """Clauses joined by OR."""
        branches = [self.parse_and()]
        while (token := self.peek()) is not None and token.kind == "OR":
            self.at += 1
            following = self.peek()
            if following is None or following.kind in (")", "OR"):
                raise self.error("no viable alternative at input 'OR'", token.position)
            branches.append(self.parse_and())
        return branches[0] if len(branches) == 1 else Or(tuple(branches))

    def parse_and(self) -> Node:
        """Juxtaposed clauses (implicit AND)."""
        clauses: list[Node] = []
        while (token := self.peek()) is not None and token.kind not in (")", "OR"):
            clauses.append(self.parse_unary())
        if not clauses:
            token = self.peek()
            text = token.text if token is not None else "<EOF>"
            raise self.error(f"no viable alternative at input '{text}'", token.position if token else None)
        return clauses[0] if len(clauses) == 1 else And(tuple(clauses))

    def parse_unary(self) -> Node:
        """A clause, possibly negated."""
        token = self.peek()
        assert token is not None
        if token.kind == "-":
            self.at += 1
            return Not(self.parse_atom())
        return self.parse_atom()

    def parse_atom(self) -> Node:
        """A group, a phrase or a term."""
        token = self.peek()
        if token is None:
            raise self.error("no viable alternative at input '<EOF>'", len(self.query))
        self.at += 1
        if token.kind == "(":
            node = self.parse_or()
            closing = self.peek()
            if closing is None or closing.kind != ")":
                raise self.error("Missing closing parenthesis", token.position)
            self.at += 1
            return node
        if token.kind == "phrase":
            words = _WORD.findall(token.text.lower())
            if not words:
                raise self.error(f"no viable alternative at input '\"{token.text}\"'", token.position)
            return Term("phrase", " ".join(words), token.position)
        if token.kind == "term":
            return self.classify(token)
        raise self.error(f"no viable alternative at input '{token.text}'", token.position)

    def classify(self, token: _Token) -> Term:
        """Turn a bare word into a hashtag, mention, operator or keyword term (or refuse it)."""
        word, position = token.text, token.position
        if word.lower() in ("or", "and"):
            lowered = word.lower()
            raise self.error(
                f"Ambiguous use of {lowered} as a keyword. Use a space to logically join two clauses, "
                f'or "{lowered}" to find occurrences of {lowered} in text',
                position,
            )
        if word.startswith("#"):
            tag = word[1:]
            if not tag or not _WORD.fullmatch(tag):
                raise self.error(f"no viable alternative at input '{word}'", position)
            return Term("hashtag", tag.lower(), position)
        if word.startswith("@"):
            handle = word[1:]
            if not _HANDLE.match(handle):
                raise self.error(f"no viable alternative at input '{word}'", position)
            return Term("mention", handle.lower(), position)
        if word.startswith("$"):
            raise self.error(
                "Reference to invalid operator '$'. Operator is not available in current product or "
                "product packaging. Please refer to complete available operator list at "
                "https://developer.twitter.com/en/docs/twitter-api/tweets/search/integrate/build-a-query",
                position,
            )
        if ":" in word:
            operator, _, operand = word.partition(":")
            operator = operator.lower()
            if operator == "is" and operand.lower() in _IS_KINDS:
                return Term("is", _IS_KINDS[operand.lower()], position)
            if operator == "from" and _HANDLE.match(operand):
                return Term("from", operand.lower(), position)
            if operator == "lang" and _LANG.match(operand.lower()):
                return Term("lang", operand.lower(), position)
            if operator in ("from", "lang"):
                raise self.error(f"no viable alternative at input '{word}'", position)
            shown = f"{operator}:{operand}" if operator == "is" else operator
            raise self.error(
                f"Reference to invalid operator '{shown}'. Operator is not available in current product or "
                "product packaging. Please refer to complete available operator list at "
                "https://developer.twitter.com/en/docs/twitter-api/tweets/search/integrate/build-a-query",
                position,
            )
        words = _WORD.findall(word.lower())
        if not words:
            raise self.error(f"no viable alternative at input '{word}'", position)
        # "don't" or "co-op" are several words on X too: match them as a phrase.
        return Term("keyword" if len(words) == 1 else "phrase", " ".join(words), position)


def _has_positive_standalone(node: Node) -> bool:
    if isinstance(node, Term):
        return node.standalone
    if isinstance(node, Not):
        return False
    if isinstance(node, And):
        return any(_has_positive_standalone(child) for child in node.children)
    return all(_has_positive_standalone(child) for child in node.children)


def parse_query(query: str, max_length: int = MAX_QUERY_LENGTH) -> Node:
    """Parse a recent-search query (or a stream rule, up to `max_length`); raise `QueryError` (X's 400)."""
    if len(query) > max_length:
        raise QueryError(query, f"Query length {len(query)} exceeds the maximum of {max_length} characters", 1)
    node = _Parser(query).parse()
    if not _has_positive_standalone(node):
        raise QueryError(query, "Rules must contain at least one positive, non-stopword clause", 1)
    return node


# ------------------------------------------------------------------------------------- evaluation


def bits_from_positions(positions: Iterable[int], size: int) -> int:
    """A bitset with the given bit positions set."""
    bitmap = bytearray((size + 7) // 8)
    for position in positions:
        bitmap[position >> 3] |= 1 << (position & 7)
    return int.from_bytes(bitmap, "little")


def positions_from_bits(bits: int) -> array[int]:
    """The set bit positions of `bits`, ascending, as an ``array('i')``."""
    out = array("i")
    if bits <= 0:
        return out
    reversed_binary = bin(bits)[:1:-1]  # character i is bit i
    find = reversed_binary.find
    position = find("1")
    while position != -1:
        out.append(position)
        position = find("1", position + 1)
    return out


class QueryEngine:
    """Evaluates queries over one platform's searchable posts (not deleted) of a storm, cached per query.

    `include_reposts=False` is X's search index since 2026-05-04: reposts are not in it at all (the filtered
    stream still matches them); `max_length` is 512 for search queries, 1,024 for stream rules.
    """

    def __init__(self, storm: Storm, platform: str = "x", *, cache_size: int = 256, include_reposts: bool = True,
                 max_length: int = MAX_QUERY_LENGTH) -> None:
        self.storm = storm
        self.platform = platform
        self.include_reposts = include_reposts
        self.max_length = max_length
        self._cache_size = cache_size
        self._cache: OrderedDict[str, array[int]] = OrderedDict()
        self._lock = threading.Lock()
        size = len(storm.posts)
        self._size = size
        searchable: list[int] = []
        by_tag: dict[str, list[int]] = {}
        by_kind: dict[str, list[int]] = {}
        by_author: dict[str, list[int]] = {}
        by_mention: dict[str, list[int]] = {}
        by_lang: dict[str, list[int]] = {}
        users = storm.users
        for position, post in enumerate(storm.posts):
            if post.platform != platform or post.deleted or (post.kind == REPOST and not include_reposts):
                continue
            searchable.append(position)
            seen_tags: list[str] = []
            for _, _, tag in post.hashtags:
                lowered = tag.lower()
                if lowered not in seen_tags:
                    seen_tags.append(lowered)
                    by_tag.setdefault(lowered, []).append(position)
            by_kind.setdefault(post.kind, []).append(position)
            by_author.setdefault(users[post.author].username.lower(), []).append(position)
            by_lang.setdefault(post.lang, []).append(position)
            seen_handles: list[str] = []
            for _, _, who in post.mentions:
                handle = users[who].username.lower()
                if handle not in seen_handles:
                    seen_handles.append(handle)
                    by_mention.setdefault(handle, []).append(position)
        self._universe = bits_from_positions(searchable, size)
        self._index: dict[tuple[str, str], int] = {}
        for kind, table in (
            ("hashtag", by_tag), ("is", by_kind), ("from", by_author), ("mention", by_mention), ("lang", by_lang)
        ):
            for key, positions in table.items():
                self._index[(kind, key)] = bits_from_positions(positions, size)
        self._tokens: list[tuple[str, ...]] | None = None
        self._token_bits: dict[str, int] = {}

    def positions(self, query: str) -> array[int]:
        """Positions (in ``storm.posts``, ascending = oldest first) of searchable posts matching `query`."""
        with self._lock:
            cached = self._cache.get(query)
            if cached is not None:
                self._cache.move_to_end(query)
                return cached
        node = parse_query(query, self.max_length)
        with self._lock:
            result = positions_from_bits(self._evaluate(node))
            self._cache[query] = result
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return result

    def _evaluate(self, node: Node) -> int:
        if isinstance(node, Term):
            return self._term_bits(node)
        if isinstance(node, Not):
            return self._universe & ~self._evaluate(node.child)
        if isinstance(node, And):
            bits = self._universe
            for child in node.children:
                bits &= self._evaluate(child)
                if not bits:
                    break
            return bits
        bits = 0
        for child in node.children:
            bits |= self._evaluate(child)
        return bits

    def _term_bits(self, term: Term) -> int:
        if term.kind in ("keyword", "phrase"):
            words = term.value.split(" ")
            bits = self._universe
            for word in words:
                bits &= self._word_bits(word)
            if term.kind == "phrase" and len(words) > 1 and bits:
                tokens = self._token_lists()
                wanted = tuple(words)
                width = len(wanted)
                keep = [
                    position
                    for position in positions_from_bits(bits)
                    if any(tokens[position][i : i + width] == wanted for i in range(len(tokens[position])))
                ]
                bits = bits_from_positions(keep, self._size)
            return bits
        return self._index.get((term.kind, term.value), 0)

    def _token_lists(self) -> list[tuple[str, ...]]:
        if self._tokens is None:
            self._tokens = [tuple(_WORD.findall(unescape_text(post.text).lower())) for post in self.storm.posts]
        return self._tokens

    def _word_bits(self, word: str) -> int:
        if not self._token_bits:
            # First keyword query: build the whole inverted index in one pass.
            by_word: dict[str, list[int]] = {}
            tokens = self._token_lists()
            for position in positions_from_bits(self._universe):
                seen: list[str] = []
                for token in tokens[position]:
                    if token not in seen:
                        seen.append(token)
                        by_word.setdefault(token, []).append(position)
            self._token_bits = {token: bits_from_positions(ps, self._size) for token, ps in by_word.items()}
            self._token_bits.setdefault("", 0)  # marks the index as built even for an empty storm
        return self._token_bits.get(word, 0)
