"""stormwatch.workers: real worker processes (`python -m tests.worker_child`) streaming pickled messages back."""

from __future__ import annotations

from pathlib import Path

import pytest

from stormwatch.errors import ArchiveError, StormwatchError
from stormwatch.workers import Worker

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def importable_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker runs `python -m tests.worker_child`: the repository must be importable wherever pytest runs."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))


def start(**job: object) -> Worker:
    return Worker.start("tests.worker_child", job, task="reading the archive", error=ArchiveError)


def test_messages_arrive_in_order_and_the_result_is_the_last() -> None:
    with start(count=500) as worker:
        messages = list(worker.messages())
    assert messages == [("number", n) for n in range(500)] + [("done", 500)]
    with start(count=3) as worker:
        assert worker.result() == ("done", 3)
    assert worker.process.returncode == 0


def test_a_worker_that_dies_mid_stream_is_one_line_naming_its_last_stderr_line() -> None:
    received = []
    with start(count=20, then="die") as worker, pytest.raises(ArchiveError) as caught:
        for message in worker.messages():
            received.append(message)
    assert received == [("number", n) for n in range(20)]  # everything sent before it died arrived
    assert str(caught.value) == "reading the archive failed: out of memory while reading page 3"
    assert worker.process.returncode == 9


def test_a_failure_inside_the_worker_is_its_type_and_text() -> None:
    with start(count=2, then="raise") as worker, pytest.raises(ArchiveError) as caught:
        list(worker.messages())
    assert str(caught.value) == "reading the archive failed: ValueError: page 3 is not a JSON object"
    assert "\n" not in str(caught.value)
    with start(count=0, then="refuse") as worker, pytest.raises(ArchiveError) as refused:
        worker.result()
    assert str(refused.value) == "reading the archive failed: archive.jsonl: no such file"


def test_the_error_type_is_the_callers() -> None:
    worker = Worker.start("tests.worker_child", {"count": 1, "then": "raise"}, task="writing posts.csv")
    with worker, pytest.raises(StormwatchError) as caught:
        worker.result()
    assert type(caught.value) is StormwatchError
    assert str(caught.value).startswith("writing posts.csv failed: ValueError")


def test_cancel_kills_a_worker_that_would_not_stop() -> None:
    worker = start(count=1, then="hang")
    messages = worker.messages()
    assert next(messages) == ("number", 0)
    worker.cancel()
    assert worker.process.poll() is not None and worker.process.returncode < 0  # killed, not finished
    worker.cancel()  # cancelling twice is harmless


def test_closing_early_stops_a_worker_that_is_still_writing() -> None:
    # The parent stops reading after one message: the worker's next writes hit a closed pipe and it ends quietly.
    with start(count=100_000) as worker:
        assert next(worker.messages()) == ("number", 0)
    assert worker.process.returncode == 0
    assert worker.last_error_line() is None  # no complaint about the broken pipe


@pytest.mark.slow
def test_a_worker_dies_with_its_parent_killed_without_warning(tmp_path: Path) -> None:
    # A report killed with kill -9 must not leave its posts.csv workers writing on for minutes.
    import os
    import signal
    import subprocess
    import sys
    import time

    pid_file = tmp_path / "worker.pid"
    parent = subprocess.Popen([sys.executable, "-c", (
        "import pathlib, sys, time\n"
        "from stormwatch.workers import Worker\n"
        "worker = Worker.start('tests.worker_child', {'count': 1, 'then': 'hang'}, task='hanging')\n"
        f"pathlib.Path({str(pid_file)!r}).write_text(str(worker.pid))\n"
        "time.sleep(600)\n")], env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        deadline = time.monotonic() + 30
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline, "the parent never started its worker"
            time.sleep(0.05)
        worker_pid = int(pid_file.read_text())
        time.sleep(0.5)  # the worker is past its start-up and hanging
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(worker_pid):
            assert time.monotonic() < deadline, "the worker outlived its killed parent"
            time.sleep(0.05)
    finally:
        parent.kill()
        parent.wait()


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting for its reaper counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"
