"""`stormwatch serve` as people run it: a process of its own, the link and its QR code printed, the page behind the
secret only, the warning for a non-loopback address once, and Ctrl-C ending it cleanly and soon (while a phone
holds its event stream open)."""

from __future__ import annotations

import http.client
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from .conftest import write_config
from .web_support import SECRET_IN_URL

pytestmark = pytest.mark.slow

WARNING = "everyone on that network who has the link can see the page"


def _lines(stream: IO[str], into: queue.Queue[str | None]) -> None:
    for line in stream:
        into.put(line)
    into.put(None)


def _wait_for(lines: queue.Queue[str | None], seen: list[str], prefix: str, timeout: float = 30) -> str:
    """The first line starting with `prefix` (every line read on the way is kept in `seen`)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line is None:
            break
        seen.append(line)
        if line.startswith(prefix):
            return line
    raise AssertionError(f"no line starting with {prefix!r} within {timeout} s; printed: {''.join(seen)!r}")


def _get(port: int, path: str) -> tuple[int, bytes]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()


def test_serve_prints_its_link_guards_it_warns_once_and_stops_on_ctrl_c(collected, tmp_path: Path) -> None:
    config_path = write_config(tmp_path, "http://127.0.0.1:9")  # nothing is collected: the page only reads
    (tmp_path / "data").mkdir()
    shutil.copy(collected[0].storage.database, tmp_path / "data" / "test.db")
    environment = {key: value for key, value in os.environ.items() if key != "X_BEARER_TOKEN"}
    process = subprocess.Popen([sys.executable, "-m", "stormwatch", "serve", "--config", str(config_path),
                                "--host", "0.0.0.0", "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=environment)
    out: queue.Queue[str | None] = queue.Queue()
    err: queue.Queue[str | None] = queue.Queue()
    readers = [threading.Thread(target=_lines, args=(process.stdout, out), daemon=True),
               threading.Thread(target=_lines, args=(process.stderr, err), daemon=True)]
    for reader in readers:
        reader.start()
    stream: http.client.HTTPConnection | None = None
    try:
        printed: list[str] = []
        link = _wait_for(out, printed, "live page: http://")
        assert any("█" in line or "▀" in line or "▄" in line for line in printed), "no QR code before the link"
        secret_match = SECRET_IN_URL.search(link)
        assert secret_match, link
        secret = secret_match.group(1)
        assert len(secret) >= 22  # at least 128 bits of token_urlsafe
        port = int(link.split("/")[2].rsplit(":", 1)[1])

        status, body = _get(port, f"/{secret}/")
        assert status == 200 and b"StandWithIssa" in body
        for wrong in ("/", f"/{secret[:-1]}/", f"/{secret[:-1]}x/feed.json", "/feed.json"):
            status, body = _get(port, wrong)
            assert status == 404 and secret.encode() not in body, wrong

        # A phone holding the live updates open must not hold up the stop.
        stream = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        stream.request("GET", f"/{secret}/events")
        answer = stream.getresponse()
        assert answer.status == 200 and answer.readline().startswith(b"event: view")

        process.send_signal(signal.SIGINT)
        asked = time.monotonic()
        code = process.wait(timeout=10)
        stopped_in = time.monotonic() - asked
    finally:
        if stream is not None:
            stream.close()
        if process.poll() is None:
            process.kill()
            process.wait()
    for reader in readers:
        reader.join(timeout=5)
    errors = "".join(line for line in iter(err.get_nowait, None))
    assert code == 0, errors
    assert stopped_in < 5, f"Ctrl-C took {stopped_in:.1f} s"
    assert errors.count(WARNING) == 1, errors
    assert "Traceback" not in errors and secret not in errors, errors
