"""Serving the live page: the secret link (kept beside the database, owner-only), its QR code for phones, and
uvicorn on a socket bound here (so a port in use is one clear line, and tests can ask for any free port).

uvicorn's access log is off (every request line would carry the secret) and it configures no logging of its own:
stormwatch's logging (console.py) redacts the secret like every other.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import os
import re
import secrets
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType

import segno
import uvicorn

from ..config import CampaignConfig, Config
from ..errors import StormwatchError
from .app import build_app
from .live import LiveView

log = logging.getLogger(__name__)

SECRET_BYTES = 24  # 192 bits; the issue asks for at least 128
LINK_FILE_SUFFIX = ".web-link"
_SECRET_SHAPE = re.compile(r"[A-Za-z0-9_-]{22,}")  # token_urlsafe's alphabet, at least 128 bits
_FILE_MODE = 0o600


def link_file(config: Config) -> Path:
    """Where the page's secret is kept: beside the database (`stormwatch.db.web-link`), readable by its owner only."""
    database = Path(config.storage.database)
    return database.with_name(database.name + LINK_FILE_SUFFIX)


def link_secret(path: Path, *, new: bool = False) -> str:
    """The secret of the page's link: the one kept in `path`, or a new one (`new`, or none kept yet), kept there
    owner-only. A new secret makes every link given out before it useless."""
    if not new and path.exists():
        try:
            secret = path.read_text(encoding="ascii").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise StormwatchError(f"{path}: cannot read the page's link secret ({exc}); `--new-link` makes a new one"
                                  ) from None
        if _SECRET_SHAPE.fullmatch(secret):
            os.chmod(path, _FILE_MODE)  # an owner-only file, even if someone loosened it
            return secret
        raise StormwatchError(f"{path}: not a link secret stormwatch wrote; `--new-link` makes a new one")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _FILE_MODE)
        with os.fdopen(descriptor, "w", encoding="ascii") as handle:
            os.fchmod(handle.fileno(), _FILE_MODE)
            handle.write(secret + "\n")
        os.replace(temporary, path)  # whole or not at all: the old secret stops working at once
    except OSError as exc:
        raise StormwatchError(f"{path}: cannot keep the page's link secret: {exc.strerror or exc}") from None
    return secret


def is_loopback(host: str) -> bool:
    """Whether `host` is this computer only (127.0.0.1, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def page_url(host: str, port: int, secret: str) -> str:
    """The link to give out: with the address phones on the network use when bound to every address."""
    shown = host
    if host in ("0.0.0.0", "::", ""):
        shown = _network_address() or host
    if ":" in shown:
        shown = f"[{shown}]"
    return f"http://{shown}:{port}/{secret}/"


def _network_address() -> str | None:
    """This computer's address on its network: the one a connection outward would leave from (a UDP socket's
    connect sends nothing)."""
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed, never sent to
        return str(probe.getsockname()[0])
    return None


def qr_text(url: str) -> str:
    """The link as a QR code drawn with terminal characters (segno), for a phone's camera."""
    buffer = io.StringIO()
    segno.make(url, error="m").terminal(out=buffer, compact=True, border=2)
    return buffer.getvalue()


def page_notice(url: str, host: str, names: str, note: str | None) -> list[tuple[str, bool]]:
    """What to print when the page starts, each line with whether it is a warning (standard error): the notes,
    the QR code, the link and who can see it."""
    lines = [(note, True)] if note else []
    if not is_loopback(host):
        lines.append((f"stormwatch: warning: listening on {host}: everyone on that network who has the link can see "
                      "the page", True))
    if names == "public":
        lines.append(("stormwatch: warning: --names public: every account is named on the page", True))
    return [*lines, (qr_text(url), False), (f"live page: {url}", False),
            ("anyone with this link can see the page; `--new-link` makes a new one (Ctrl-C stops the page)", False)]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one clear error (a port in use, an address not this computer's)."""
    try:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError as exc:
        raise StormwatchError(f"--host {host} --port {port}: cannot listen there: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


class _Server(uvicorn.Server):
    """uvicorn's server, telling the page's event streams to end as soon as it is asked to stop (Ctrl-C)."""

    def __init__(self, config: uvicorn.Config, closing: threading.Event) -> None:
        super().__init__(config)
        self.closing = closing

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self.closing.set()
        super().handle_exit(sig, frame)

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """Ctrl-C and SIGTERM stop the server, as in uvicorn, but are not raised again once it has stopped
        (uvicorn does, for its own command): they are how the page is meant to end, so `stormwatch serve` ends
        cleanly (exit 0, the collector beside it stopped in turn) rather than "Aborted!" or killed."""
        if threading.current_thread() is not threading.main_thread():  # only the main thread gets signals
            yield
            return
        original = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in original.items():
                signal.signal(sig, handler)


@dataclass
class PageServer:
    """A started live page: its link, its refreshing view and its uvicorn server."""

    url: str
    live: LiveView
    server: uvicorn.Server
    sock: socket.socket
    closing: threading.Event
    thread: threading.Thread | None = None

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM (uvicorn handles both in the main thread), then stop refreshing."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.live.stop()
            self.sock.close()

    def stop(self) -> None:
        """Stop a server running in a thread (its open event streams end first)."""
        self.closing.set()
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=15)


def prepare(config: Config, campaign: CampaignConfig, secret: str, *, host: str = "127.0.0.1", port: int = 8765,
            names: str = "pseudonymized",
            next_runs: Callable[[], dict[str, datetime | None]] | None = None) -> PageServer:
    """Bind and start refreshing the view behind the link with `secret` (`link_secret`); `run()` (or `in_thread`)
    serves it."""
    sock = bind(host, port)
    try:
        live = LiveView(config, campaign, names=names, next_runs=next_runs)
        live.start()
    except BaseException:
        sock.close()
        raise
    closing = threading.Event()
    uv_config = uvicorn.Config(build_app(live, secret, closing), access_log=False, log_config=None, lifespan="off",
                               server_header=False, date_header=False, timeout_graceful_shutdown=1,
                               ws="none")
    actual_port = sock.getsockname()[1]
    return PageServer(url=page_url(host, actual_port, secret), live=live, server=_Server(uv_config, closing),
                      sock=sock, closing=closing)


@contextlib.contextmanager
def in_thread(page: PageServer) -> Iterator[PageServer]:
    """Serve `page` from a thread of its own while the block runs (the demo, tests, the benchmark)."""
    page.thread = threading.Thread(target=page.run, name="stormwatch-web", daemon=True)
    page.thread.start()
    try:
        yield page
    finally:
        page.stop()
