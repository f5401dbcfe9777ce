"""The simulated Jetstream: Bluesky's JSON event feed over a websocket, served with the standard library.

``GET /subscribe?wantedCollections=<nsid>&wantedDids=<did>&cursor=<time_us>`` upgrades to a websocket (the
server side of RFC 6455: the Sec-WebSocket-Accept handshake, unmasked text frames out, masked client frames
in, ping/pong, close) and streams one JSON event per text frame, as the real Jetstream does:

* ``commit`` events (``{"did", "time_us", "kind": "commit", "commit": {"rev", "operation", "collection",
  "rkey", "record", "cid"}}``): the storm's Bluesky posts (``app.bsky.feed.post`` records with facets at
  UTF-8 byte offsets, ``reply``, ``embed``), its reposts (``app.bsky.feed.repost``), and everyday posts and
  likes from the rest of the network, which carry no campaign tags;
* ``identity`` and ``account`` events now and then, sent whatever collections are wanted.

Each event's ``time_us`` is when it happens on the storm clock (a post's is its creation time), strictly
increasing. A cursor replays every event with ``time_us >= cursor``; no cursor, or one in the future, tails
live. After the replay the feed follows the storm clock, sending each event once its time has passed.
`JetstreamServer.drop_connections` cuts every live connection without a close frame (a network fault), and
`JetstreamServer.connections` lists every connection with the cursor it asked for.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import hashlib
import json
import random
import socket
import struct
import threading
from array import array
from dataclasses import dataclass, replace
from datetime import datetime
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlsplit

from stormwatch.simulator.atproto import (
    POST_COLLECTION,
    REPOST_COLLECTION,
    TAG_FEATURE,
    BlueskyNetwork,
    cid_for,
    did_for,
    iso_ms,
    micros,
    tid,
)
from stormwatch.simulator.clock import Clock
from stormwatch.simulator.host import BackgroundServer, OwnedServer
from stormwatch.simulator.storm import Storm

SUBSCRIBE_PATH = "/subscribe"
LIKE_COLLECTION = "app.bsky.feed.like"
WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_CLIENT_FRAME = 1 << 20
# Opcodes (RFC 6455 section 5.2).
_CONTINUATION, _TEXT, _BINARY, _CLOSE, _PING, _PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA
# What the timeline holds at each instant.
_STORM_POST, _STORM_REPOST, _NETWORK_POST, _NETWORK_LIKE, _IDENTITY, _ACCOUNT = range(6)
_COLLECTION_OF = {_STORM_POST: POST_COLLECTION, _STORM_REPOST: REPOST_COLLECTION, _NETWORK_POST: POST_COLLECTION,
                  _NETWORK_LIKE: LIKE_COLLECTION}
_NETWORK_ACCOUNTS = 400
_BATCH_EVENTS = 256

# Everyday posts from the rest of the network (a few scripts, so byte offsets differ from characters).
_NETWORK_TEXTS = (
    "Morning coffee and a good book ☕", "Anyone else watching the match tonight?", "New blog post is up!",
    "Le soleil est enfin revenu 🌞", "Qué día tan bonito en la playa", "صباح الخير من رام الله",
    "Just finished a 10k run 🏃", "猫が可愛すぎる", "Bom dia! Quem vai ao show hoje?", "Deadline tomorrow. Send help.",
    "Ich habe heute Brot gebacken 🍞", "Reading about tide pools all afternoon", "Günaydın, herkese iyi haftalar",
)
_NETWORK_TAGS = ("photography", "caturday", "books", "running", "gardening", "art", "news")
_NETWORK_LANGS = ("en", "en", "en", "fr", "es", "ar", "en", "ja", "pt", "en", "de", "en", "tr")


@dataclass(frozen=True)
class ConnectionRecord:
    """One websocket connection: what it asked for and how it went."""

    number: int
    cursor: int | None
    collections: tuple[str, ...]
    dids: tuple[str, ...]
    opened_at: datetime
    events_sent: int = 0
    closed: bool = False


class _Connection:
    """A live websocket: its socket, a write lock shared by the sender and the ping/close answers."""

    def __init__(self, sock: socket.socket, record: ConnectionRecord) -> None:
        self.sock = sock
        self.record = record
        self.write_lock = threading.Lock()
        self.closed = threading.Event()
        self.closing = False
        self.sent = 0

    def send(self, payload: bytes) -> None:
        """Write already-framed bytes (raises OSError when the peer is gone or a close frame went out)."""
        with self.write_lock:
            if self.closing:
                raise OSError("the connection is closing")
            self.sock.sendall(payload)

    def close(self, payload: bytes) -> None:
        """Send a close frame, after which nothing else is sent (RFC 6455 section 5.5.1), then cut."""
        with self.write_lock:
            if not self.closing:
                self.closing = True
                with contextlib.suppress(OSError):
                    self.sock.sendall(frame(_CLOSE, payload))
        self.cut()

    def cut(self) -> None:
        """Drop the TCP connection without a closing handshake."""
        self.closed.set()
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


def frame(opcode: int, payload: bytes) -> bytes:
    """A final, unmasked server frame (servers never mask, RFC 6455 section 5.1)."""
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, length)
    return header + payload


def accept_key(key: str) -> str:
    """The Sec-WebSocket-Accept answer to a client's Sec-WebSocket-Key."""
    return base64.b64encode(hashlib.sha1((key + WEBSOCKET_GUID).encode("ascii")).digest()).decode("ascii")


class JetstreamServer:
    """The storm's Bluesky firehose as Jetstream serves it, on its own port (see the module doc)."""

    def __init__(self, storm: Storm, clock: Clock, *, host: str = "127.0.0.1", port: int = 0,
                 network: BlueskyNetwork | None = None, network_events_per_second: float = 0.5,
                 poll_seconds: float = 0.02) -> None:
        self.storm = storm
        self.clock = clock
        self.host = host
        self.network = network or BlueskyNetwork(storm)
        self.poll_seconds = poll_seconds
        self._seed = storm.spec.seed
        self._network_dids = [did_for(f"{self._seed}:network:{i}") for i in range(_NETWORK_ACCOUNTS)]
        self._build_timeline(network_events_per_second)
        self._server: BackgroundServer[JetstreamServer] = BackgroundServer(
            self, host, port, _Handler, thread_name="stormwatch-jetstream", close_connections=self._close_live)
        self._lock = threading.Lock()
        self._connections: dict[int, _Connection] = {}
        self._records: list[ConnectionRecord] = []
        self._stopping = threading.Event()

    # ------------------------------------------------------------------------------- timeline

    def _build_timeline(self, per_second: float) -> None:
        """Every event of the storm window, sorted by a strictly increasing time_us."""
        entries: list[tuple[int, int, int]] = []
        for position, post in enumerate(self.network.posts):
            entries.append((self.network.created_us(post), _STORM_POST, position))
        for position, post in enumerate(self.network.reposts):
            entries.append((self.network.created_us(post), _STORM_REPOST, position))
        spec = self.storm.spec
        first_us = micros(spec.window_start)
        last_us = micros(spec.end)
        rng = random.Random(self._seed * 1_000_003 + 29)
        count = int((last_us - first_us) / 1e6 * per_second)
        for number in range(count):
            roll = rng.random()
            code = (_NETWORK_POST if roll < 0.70 else _NETWORK_LIKE if roll < 0.95
                    else _IDENTITY if roll < 0.98 else _ACCOUNT)
            entries.append((first_us + int(rng.random() * (last_us - first_us)), code, number))
        entries.sort()
        self.times = array("q")
        self.codes = array("b")
        self.refs = array("i")
        previous = -1
        for time_us, code, ref in entries:
            time_us = max(time_us, previous + 1)  # Jetstream's time_us never repeats
            previous = time_us
            self.times.append(time_us)
            self.codes.append(code)
            self.refs.append(ref)

    def event_did(self, index: int) -> str:
        """The repo (DID) of event number `index` of the timeline."""
        code, ref = self.codes[index], self.refs[index]
        if code == _STORM_POST:
            return self.network.did(self.network.author(self.network.posts[ref]))
        if code == _STORM_REPOST:
            return self.network.did(self.network.author(self.network.reposts[ref]))
        if code in (_IDENTITY, _ACCOUNT) and ref % 2 and self.network.users:
            # Half the identity and account events are about the storm's own Bluesky users.
            return self.network.did(self.network.users[ref % len(self.network.users)])
        return self._network_dids[(ref * 2654435761) % _NETWORK_ACCOUNTS]

    def event(self, index: int) -> dict[str, Any]:
        """Event number `index` of the timeline, as Jetstream sends it."""
        time_us, code, ref = self.times[index], self.codes[index], self.refs[index]
        did = self.event_did(index)
        if code in (_IDENTITY, _ACCOUNT):
            when = iso_ms(time_us // 1000)
            if code == _IDENTITY:
                user = self.network.member(did)
                handle = self.network.handle(user) if user else f"someone{ref}.bsky.social"
                return {"did": did, "time_us": time_us, "kind": "identity",
                        "identity": {"did": did, "handle": handle, "seq": 4_000_000_000 + index, "time": when}}
            return {"did": did, "time_us": time_us, "kind": "account",
                    "account": {"active": True, "did": did, "seq": 4_000_000_000 + index, "time": when}}
        if code in (_STORM_POST, _STORM_REPOST):
            post = (self.network.posts if code == _STORM_POST else self.network.reposts)[ref]
            rkey, record, cid = self.network.rkey(post), self.network.record(post), self.network.cid(post)
        else:
            rkey = tid(time_us, ref & 0x3FF)
            record = self._network_record(code, ref, time_us)
            cid = cid_for(f"{self._seed}:network:{ref}")
        commit = {"rev": tid(time_us + 7, (ref >> 3) & 0x3FF), "operation": "create",
                  "collection": _COLLECTION_OF[code], "rkey": rkey, "record": record, "cid": cid}
        return {"did": did, "time_us": time_us, "kind": "commit", "commit": commit}

    def _network_record(self, code: int, ref: int, time_us: int) -> dict[str, Any]:
        rng = random.Random(self._seed * 7_919 + ref)
        created = iso_ms(time_us // 1000 - rng.randrange(0, 900))
        if code == _NETWORK_LIKE:
            author = self._network_dids[rng.randrange(_NETWORK_ACCOUNTS)]
            subject = f"at://{author}/{POST_COLLECTION}/{tid(time_us - rng.randrange(10**6, 10**10), ref & 0x3FF)}"
            return {"$type": LIKE_COLLECTION, "createdAt": created,
                    "subject": {"uri": subject, "cid": cid_for(subject)}}
        choice = rng.randrange(len(_NETWORK_TEXTS))
        text = _NETWORK_TEXTS[choice]
        record: dict[str, Any] = {"$type": POST_COLLECTION, "createdAt": created, "langs": [_NETWORK_LANGS[choice]]}
        if rng.random() < 0.3:
            tag = _NETWORK_TAGS[rng.randrange(len(_NETWORK_TAGS))]
            start = len(text.encode("utf-8")) + 1
            text = f"{text} #{tag}"
            record["facets"] = [{"index": {"byteStart": start, "byteEnd": start + 1 + len(tag.encode("utf-8"))},
                                 "features": [{"$type": TAG_FEATURE, "tag": tag}]}]
        record["text"] = text
        return record

    # ------------------------------------------------------------------------------ lifecycle

    @property
    def port(self) -> int:
        """The bound port (binding now if needed, so port 0 resolves to the real one)."""
        return self._server.port

    @property
    def url(self) -> str:
        """The subscribe URL, e.g. ``ws://127.0.0.1:54321/subscribe``."""
        return f"ws://{self.host}:{self.port}{SUBSCRIBE_PATH}"

    def start(self) -> JetstreamServer:
        """Serve on a daemon thread; returns self."""
        self._stopping.clear()
        self._server.start()
        return self

    def stop(self) -> None:
        """Stop serving: close every connection with a "going away" frame, then the listening socket."""
        if not self._server.bound:
            return
        self._stopping.set()
        self._server.stop()

    def _close_live(self) -> None:
        for connection in self._live():
            connection.close(struct.pack("!H", 1001))

    def __enter__(self) -> JetstreamServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # --------------------------------------------------------------------------- observation

    def drop_connections(self) -> int:
        """Cut every live connection without a close frame, like a network failure; returns how many."""
        live = self._live()
        for connection in live:
            connection.cut()
        return len(live)

    def connections(self) -> list[ConnectionRecord]:
        """Every connection so far, in order, with the cursor it asked for and the events it was sent."""
        with self._lock:
            live = dict(self._connections)
            records = list(self._records)
        return [replace(r, events_sent=live[r.number].sent, closed=live[r.number].closed.is_set())
                if r.number in live else r for r in records]

    def _live(self) -> list[_Connection]:
        with self._lock:
            return [c for c in self._connections.values() if not c.closed.is_set()]

    def _register(self, sock: socket.socket, cursor: int | None, collections: tuple[str, ...],
                  dids: tuple[str, ...]) -> _Connection:
        with self._lock:
            record = ConnectionRecord(len(self._records) + 1, cursor, collections, dids, self.clock.now())
            self._records.append(record)
            connection = _Connection(sock, record)
            self._connections[record.number] = connection
        return connection

    def _unregister(self, connection: _Connection) -> None:
        with self._lock:
            self._connections.pop(connection.record.number, None)
            index = connection.record.number - 1
            self._records[index] = replace(self._records[index], events_sent=connection.sent, closed=True)

    def last_time_before(self, time_us: int, collections: tuple[str, ...] = ()) -> int | None:
        """The time_us of the last event before `time_us` that a subscriber to `collections` is sent."""
        index = bisect.bisect_left(self.times, time_us) - 1
        while index >= 0 and not self._wanted(index, collections, frozenset()):
            index -= 1
        return self.times[index] if index >= 0 else None

    # ------------------------------------------------------------------------------ streaming

    def _wanted(self, index: int, collections: tuple[str, ...], dids: frozenset[str]) -> bool:
        code = self.codes[index]
        if dids and self.event_did(index) not in dids:
            return False
        if code in (_IDENTITY, _ACCOUNT) or not collections:
            return True
        collection = _COLLECTION_OF[code]
        return any(collection == wanted or (wanted.endswith(".*") and collection.startswith(wanted[:-1]))
                   for wanted in collections)

    def _now_us(self) -> int:
        return micros(self.clock.now())

    def _stream(self, connection: _Connection, cursor: int | None) -> None:
        """Replay from the cursor, then follow the storm clock, until the connection or the server closes."""
        record = connection.record
        dids = frozenset(record.dids)
        now_us = self._now_us()
        start = cursor if cursor is not None and cursor <= now_us else now_us
        position = bisect.bisect_left(self.times, start)
        while not connection.closed.is_set() and not self._stopping.is_set():
            # An event is sent once its time has passed: at time t, everything before t.
            due = bisect.bisect_left(self.times, self._now_us())
            if position >= due:
                connection.closed.wait(self.poll_seconds)
                continue
            stop = min(due, position + _BATCH_EVENTS)
            frames = []
            for index in range(position, stop):
                if self._wanted(index, record.collections, dids):
                    text = json.dumps(self.event(index), ensure_ascii=False, separators=(",", ":"))
                    frames.append(frame(_TEXT, text.encode("utf-8")))
            position = stop
            if frames:
                try:
                    connection.send(b"".join(frames))
                except OSError:
                    connection.closed.set()
                    return
                connection.sent += len(frames)


class _ProtocolError(Exception):
    """The client broke RFC 6455; the connection is closed with `code`."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


class _Handler(BaseHTTPRequestHandler):
    """The HTTP upgrade, then the websocket: a reader thread for client frames, this thread sending events."""

    protocol_version = "HTTP/1.1"
    server_version = "jetstream"
    sys_version = ""
    server: OwnedServer[JetstreamServer]

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log; `JetstreamServer.connections()` has it all."""

    def _refuse(self, status: int, message: str) -> None:
        body = message.encode("utf-8")
        self.send_response(status)
        self.send_header("content-type", "text/plain; charset=utf-8")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def do_GET(self) -> None:
        """Upgrade /subscribe to a websocket and stream events over it."""
        split = urlsplit(self.path)
        if split.path != SUBSCRIBE_PATH:
            self._refuse(404, "404 page not found\n")
            return
        params = parse_qs(split.query)
        cursor = None
        raw_cursor = (params.get("cursor") or [""])[0].strip()
        if raw_cursor:
            if not raw_cursor.lstrip("-").isdigit():
                self._refuse(400, f"invalid cursor: {raw_cursor!r} is not an integer of unix microseconds\n")
                return
            cursor = int(raw_cursor)
        upgrade = (self.headers.get("Upgrade") or "").lower()
        tokens = {token.strip().lower() for token in (self.headers.get("Connection") or "").split(",")}
        key = self.headers.get("Sec-WebSocket-Key") or ""
        if upgrade != "websocket" or "upgrade" not in tokens or not key:
            self._refuse(426, "this endpoint speaks websocket only\n")
            return
        if self.headers.get("Sec-WebSocket-Version") != "13":
            self.send_response(426)
            self.send_header("Sec-WebSocket-Version", "13")
            self.send_header("content-length", "0")
            self.end_headers()
            self.close_connection = True
            return
        # No extension is negotiated (permessage-deflate is declined by not answering it).
        self.send_response(101, "Switching Protocols")
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept_key(key))
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        collections = tuple(params.get("wantedCollections", []))
        dids = tuple(params.get("wantedDids", []))
        jetstream = self.server.owner
        connection = jetstream._register(self.connection, cursor, collections, dids)
        reader = threading.Thread(target=self._read_frames, args=(connection,), name="jetstream-reader", daemon=True)
        reader.start()
        try:
            jetstream._stream(connection, cursor)
        finally:
            # Going away (the server stops), or already cut; either way the reader's blocking read ends here.
            connection.close(struct.pack("!H", 1001))
            reader.join(timeout=1.0)
            jetstream._unregister(connection)

    def _read_exactly(self, size: int) -> bytes:
        data = self.rfile.read(size)
        if len(data) != size:
            raise EOFError("the client went away")
        return data

    def _read_frames(self, connection: _Connection) -> None:
        """Answer pings, honour close, and ignore the client's text messages (Jetstream options updates)."""
        try:
            while not connection.closed.is_set():
                opcode, payload = self._read_frame()
                if opcode == _PING:
                    connection.send(frame(_PONG, payload))
                elif opcode == _CLOSE:
                    # Echo the status code, then end the connection (RFC 6455 section 5.5.1).
                    connection.close(payload[:2])
                    return
        except _ProtocolError as error:
            connection.close(struct.pack("!H", error.code))
        except (EOFError, OSError, ValueError):
            connection.closed.set()

    def _read_frame(self) -> tuple[int, bytes]:
        """One client message (continuations joined), or one control frame."""
        message_opcode, parts = None, []
        while True:
            first, second = self._read_exactly(2)
            final, opcode = bool(first & 0x80), first & 0x0F
            if not second & 0x80:
                raise _ProtocolError(1002)  # clients must mask every frame
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", self._read_exactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", self._read_exactly(8))
            if length > MAX_CLIENT_FRAME:
                raise _ProtocolError(1009)
            mask = self._read_exactly(4)
            masked = self._read_exactly(length)
            payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(masked))
            if opcode >= _CLOSE:
                if not final or length > 125:
                    raise _ProtocolError(1002)
                return opcode, payload
            if opcode == _CONTINUATION:
                if message_opcode is None:
                    raise _ProtocolError(1002)
            elif opcode in (_TEXT, _BINARY):
                if message_opcode is not None:
                    raise _ProtocolError(1002)
                message_opcode = opcode
            else:
                raise _ProtocolError(1002)
            parts.append(payload)
            if final:
                return message_opcode, b"".join(parts)
