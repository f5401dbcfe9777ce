"""The one helper for worker processes: `python -m <module> '<json job>'`, sending pickled messages back.

Work that is mostly Python (reading and normalizing an archive, writing a big CSV) gets the other core
only in a process of its own. Both sides live here:

- the parent starts a worker with `Worker.start(module, job, task=...)`, reads `messages()` as they come
  (or only the last one with `result()`), and ends it with `close()` (let it finish) or `cancel()` (kill);
- the worker's `__main__` calls `serve(produce)`: the job comes in as JSON, every message `produce(job)`
  yields goes out pickled on standard output, and a failure becomes one line on standard error;
- what must never touch the disk (a report's pseudonym directory: labels beside the handles they hide) goes as
  a `handover`, pickled on the worker's standard input, read by the worker with `read_handover()`;
- a worker that answers requests (the live page's refresh: one view per request) is started with
  `requests=True`: the parent `send`s each request pickled on its standard input (after the handover, if any)
  and reads one message per request; the worker reads them with `requests()` until the parent `end_requests()`.

A worker dies with its parent (Linux's parent-death signal): a report killed with `kill -9` leaves no worker
writing on for minutes. The signal follows the thread that started the worker, so start workers from a
thread that outlives them (every caller today starts them from the main thread).

A worker that fails, or dies without a word, surfaces in the parent as one line naming its task and the
last line it wrote on standard error: `reading the archive failed: MemoryError`. Its standard error is
drained while it runs, so a chatty worker never blocks on a full pipe.

The parent and the worker are the same program, so the parent trusts what it unpickles from its own child.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import IO, Any

from .errors import StormwatchError

# How long `close` lets a worker finish on its own after its output is no longer read, before killing it.
CLOSE_TIMEOUT = 5.0
_STDERR_LINES = 20
_NO_RESULT = object()
_NO_HANDOVER = object()
# The parent's process id, handed to the worker so that it can tell whether it was orphaned before it asked the
# kernel to kill it with its parent.
_PARENT_ENV = "STORMWATCH_WORKER_PARENT"
_PR_SET_PDEATHSIG = 1


class Worker:
    """A running worker process and the messages it sends back."""

    def __init__(self, process: subprocess.Popen[bytes], task: str, error: type[StormwatchError]) -> None:
        self.process = process
        self.task = task
        self.error = error
        self._sending = threading.Lock()
        self._stderr: collections.deque[str] = collections.deque(maxlen=_STDERR_LINES)
        self._drain = threading.Thread(target=self._read_stderr, name=f"stderr of worker {process.pid}", daemon=True)
        self._drain.start()

    @classmethod
    def start(cls, module: str, job: Mapping[str, Any], *, task: str,
              error: type[StormwatchError] = StormwatchError, handover: Any = _NO_HANDOVER,
              requests: bool = False) -> Worker:
        """Start `python -m <module> '<job as JSON>'`; `task` names the work in errors ("reading the archive"),
        `error` is the exception raised when it fails, `handover` (if given) goes pickled on its standard input,
        and with `requests` that input stays open for `send`."""
        process = subprocess.Popen([sys.executable, "-m", module, json.dumps(job)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, env={**os.environ, _PARENT_ENV: str(os.getpid())},
                                   stdin=subprocess.DEVNULL if handover is _NO_HANDOVER and not requests
                                   else subprocess.PIPE)
        if requests:
            worker = cls(process, task, error)
            if handover is not _NO_HANDOVER:
                worker.send(handover)
            return worker
        if handover is not _NO_HANDOVER:
            # Written by a thread: megabytes at a million posts, read only once the worker has started, and the
            # parent has its own work meanwhile. Never a file: the pipe dies with the processes.
            data = pickle.dumps(handover, protocol=pickle.HIGHEST_PROTOCOL)
            threading.Thread(target=_write_input, args=(process, data), name=f"stdin of worker {process.pid}",
                             daemon=True).start()
        return cls(process, task, error)

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self.process.pid

    def messages(self) -> Iterator[Any]:
        """The worker's messages in order until its output ends; then raises `error` if it did not end well."""
        output = self._output()
        unreadable: pickle.UnpicklingError | None = None
        while True:
            try:
                message = pickle.load(output)
            except EOFError:
                break
            except pickle.UnpicklingError as exc:  # cut off half-way (the worker died), or not a message at all
                unreadable = exc
                break
            yield message
        self._check_exit()
        if unreadable is not None:
            raise self.error(f"{self.task} failed: its output is not a message ({unreadable})")

    def result(self) -> Any:
        """The worker's last message, once it has ended well (`error` otherwise, or if it sent nothing)."""
        last: Any = _NO_RESULT
        for message in self.messages():
            last = message
        if last is _NO_RESULT:
            raise self.error(f"{self.task} failed: the worker ended without a result")
        return last

    def send(self, request: Any) -> None:
        """Send a request to a worker started with `requests=True` (any thread); `error` if it is gone."""
        stdin = self.process.stdin
        if stdin is None:
            raise self.error(f"{self.task} failed: it takes no requests")
        try:
            with self._sending:
                pickle.dump(request, stdin, protocol=pickle.HIGHEST_PROTOCOL)
                stdin.flush()
        except (OSError, ValueError):  # a broken pipe (the worker died), or requests already ended
            raise self.error(f"{self.task} failed: {self.last_error_line() or 'the worker is gone'}") from None

    def end_requests(self) -> None:
        """No more requests: the worker's `requests()` ends, and so, once it has answered, does the worker."""
        if self.process.stdin is not None:
            with self._sending, contextlib.suppress(OSError):
                self.process.stdin.close()

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Stop reading: a worker still writing stops on its broken pipe; one that does not within `timeout`
        seconds is killed. Never raises for the worker's own failure (`messages` does)."""
        if self.process.stdout is not None:
            self.process.stdout.close()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._drain.join(timeout=1.0)

    def cancel(self) -> None:
        """Kill the worker if it is still running and wait for it."""
        if self.process.poll() is None:
            self.process.kill()
        self.close(timeout=CLOSE_TIMEOUT)

    def last_error_line(self) -> str | None:
        """The last non-empty line the worker wrote on standard error, if any."""
        self._drain.join(timeout=1.0 if self.process.poll() is not None else 0.0)
        return next((line for line in reversed(self._stderr) if line), None)

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _output(self) -> IO[bytes]:
        if self.process.stdout is None:
            raise self.error(f"{self.task} failed: its output was already closed")
        return self.process.stdout

    def _check_exit(self) -> None:
        code = self.process.wait()
        if code == 0:
            return
        detail = self.last_error_line() or (f"killed by signal {-code}" if code < 0 else f"exit status {code}")
        raise self.error(f"{self.task} failed: {detail}")

    def _read_stderr(self) -> None:
        stream = self.process.stderr
        if stream is None:
            return
        with stream:
            for raw in stream:
                self._stderr.append(raw.decode(errors="replace").strip())


def read_job() -> dict[str, Any]:
    """The job a worker was started with (its first argument, JSON)."""
    job = json.loads(sys.argv[1])
    if not isinstance(job, dict):
        raise StormwatchError("a worker's job must be a JSON object")
    return job


def read_handover() -> Any:
    """What the parent handed over on standard input (`Worker.start(..., handover=...)`), read once."""
    try:
        return pickle.load(sys.stdin.buffer)  # from the parent that started this process: the same program
    except (EOFError, pickle.UnpicklingError) as exc:
        raise StormwatchError(f"a worker's hand-over on standard input is incomplete ({exc or 'empty'})") from None


def requests() -> Iterator[Any]:
    """The requests the parent sends (`Worker.send`), each as it comes, until it ends them or is gone."""
    while True:
        try:
            yield pickle.load(sys.stdin.buffer)  # from the parent that started this process: the same program
        except (EOFError, pickle.UnpicklingError):
            return


def _write_input(process: subprocess.Popen[bytes], data: bytes) -> None:
    """Write `data` to a worker's standard input and close it (a worker that died is told by its exit status)."""
    stdin = process.stdin
    if stdin is None:
        return
    # OSError (BrokenPipeError): the worker is gone; `messages` says why.
    with contextlib.suppress(OSError), stdin:
        stdin.write(data)


def serve(produce: Callable[[dict[str, Any]], Iterable[Any]]) -> None:
    """A worker's main: send every message `produce(job)` yields, pickled, on standard output.

    A failure ends the worker with exit status 1 and one line on standard error (the parent's error message):
    a StormwatchError's own text, or the exception's type and text after its traceback.
    """
    _die_with_parent()
    out = sys.stdout.buffer
    try:
        for message in produce(read_job()):
            pickle.dump(message, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
        out.flush()
    except BrokenPipeError:
        # The parent stopped reading (it failed, or no longer wants the rest): nothing is left to say.
        _silence_stdout()
        return
    except StormwatchError as exc:
        _fail(str(exc))
    except Exception as exc:  # the traceback helps whoever debugs it; the last line is what the parent shows
        traceback.print_exc()
        _fail(f"{type(exc).__name__}: {exc}")


def _die_with_parent() -> None:
    """Ask the kernel to kill this worker when its parent dies (Linux; elsewhere a no-op)."""
    if not sys.platform.startswith("linux"):
        return
    library = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(library, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        return
    parent = os.environ.get(_PARENT_ENV)
    if parent and parent.isdigit() and os.getppid() != int(parent):
        os._exit(1)  # the parent died before the signal was asked for: nobody reads what this worker would write


def _fail(line: str) -> None:
    print(" ".join(line.split()) or "failed", file=sys.stderr, flush=True)
    _silence_stdout()
    sys.exit(1)


def _silence_stdout() -> None:
    """Point standard output at /dev/null, so the interpreter's final flush finds no broken pipe to complain to."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except OSError:
        pass
