"""pidone's own log lines on stderr, written by a background thread so a full pipe never stalls the core.

Not the logging module: importing it takes about as long as the interpreter's own start, and
every container would pay that before its child could run and again before a `pidone -- true`
could leave. The HTTP side, which loads logging anyway with uvicorn, sends uvicorn's and
asyncio's records here (app/http/server.py).
"""

from __future__ import annotations

import os
import sys
import time
from _thread import allocate_lock

DEBUG, INFO, WARNING, ERROR = 10, 20, 30, 40
LEVEL_NAMES = {DEBUG: "debug", INFO: "info", WARNING: "warning", ERROR: "error"}
QUEUED_BYTES = 256 * 1024
"""Bytes of lines waiting for the writer at most; past that lines are dropped and counted
(stderr is not read). A count of lines bounded nothing: 10,000 lines of a 15 KB path each
grew pidone by 130 MB (issue 22)."""
LINE_CHARACTERS = 8 * 1024
"""The most of one line that is kept (a traceback included)."""
CLIENT_LINES_PER_MINUTE = 3
"""Lines about clients (what a client made fail) a minute at most; the rest are counted and
the next line allowed says how many were left out."""


class Log:
    """printf-style lines at four levels, warnings and errors only until `configure`d. A line
    that cannot be formatted or written is lost; the caller never sees an exception."""

    def __init__(self) -> None:
        self.level = WARNING
        self._format = _text_line
        self._write = _write_line
        self._writer: BackgroundWriter | None = None
        self._starting = allocate_lock()
        self.dropped = 0
        """Lines lost because the writer fell behind (stderr full)."""
        self.silenced = 0
        """Lines about clients left out past CLIENT_LINES_PER_MINUTE."""
        self._client_lines = allocate_lock()
        self._client_window = -60.0
        self._client_count = 0
        self._silenced_unsaid = 0

    def enabled(self, level: int) -> bool:
        return level >= self.level

    def debug(self, message: str, *args: object) -> None:
        if self.level <= DEBUG:
            self.emit(DEBUG, message, args)

    def info(self, message: str, *args: object) -> None:
        if self.level <= INFO:
            self.emit(INFO, message, args)

    def warning(self, message: str, *args: object) -> None:
        if self.level <= WARNING:
            self.emit(WARNING, message, args)

    def error(self, message: str, *args: object) -> None:
        if self.level <= ERROR:
            self.emit(ERROR, message, args)

    def emit(self, level: int, message: str, args: tuple[object, ...] = ()) -> None:
        try:
            text = message % args if args else message
            if len(text) > LINE_CHARACTERS:
                text = text[:LINE_CHARACTERS] + "..."
            self._write(self._format(level, text))
        except Exception:
            pass  # a log line must never take the core down

    def about_client(self, level: int, message: str, *args: object) -> None:
        """A line a client's request caused: at most CLIENT_LINES_PER_MINUTE a minute, so that
        no client can fill the log; what is left out is counted, and said in the next line.
        Whatever the request sent must be in `args` as excerpts (app/excerpt.py)."""
        if self.level > level:
            return
        now = time.monotonic()
        with self._client_lines:
            if now - self._client_window >= 60.0:
                self._client_window, self._client_count = now, 0
            self._client_count += 1
            if self._client_count > CLIENT_LINES_PER_MINUTE:
                self.silenced += 1
                self._silenced_unsaid += 1
                return
            unsaid, self._silenced_unsaid = self._silenced_unsaid, 0
        if unsaid:
            message += f" ({unsaid} such lines left out before this one)"
        self.emit(level, message, args)

    def dropped_lines(self) -> dict[str, int]:
        """Lines not written, by reason (for /metrics)."""
        return {"stderr_blocked": self.dropped, "rate_limited": self.silenced}

    def configure(self, verbosity: int, log_format: str) -> None:
        """Set the level from the -v count (-1 errors only .. 2 debug) and the format; lines
        go through a writer thread from now on, started with the first of them (a quiet
        pidone starts none)."""
        self.level = {-1: ERROR, 0: WARNING, 1: INFO}.get(verbosity, DEBUG if verbosity > 1 else ERROR)
        if log_format == "json":
            self._format = _json_line
        self._write = self._start_writer

    def flush(self, timeout: float = 1.0) -> None:
        """Wait up to `timeout` for queued lines to be written (a stuck stderr must not hold us)."""
        if self._writer is not None:
            self._writer.flush(timeout)

    def _start_writer(self, line: str) -> None:
        with self._starting:
            if self._writer is None:
                try:
                    self._writer = BackgroundWriter(self)
                    self._write = self._writer.put
                except RuntimeError as failure:
                    # No task left (the cgroup's pids.max): pidone runs on, writing in place.
                    self._write = _write_line
                    self._write(self._format(WARNING, "log writer thread not started "
                                             f"({failure}): writing log lines in place"))
        self._write(line)


class BackgroundWriter:
    """One thread puts queued lines on stderr, at most QUEUED_BYTES of them waiting. Made only
    after the child is spawned: pidone must fork while single-threaded."""

    def __init__(self, owner: Log) -> None:
        import collections
        import threading

        self._owner = owner
        self._lines: collections.deque[str] = collections.deque()
        self._queued = 0
        self._lock = allocate_lock()
        self._ready = threading.Semaphore(0)
        self._writing = False
        self._unsaid_drops = 0
        threading.Thread(target=self._write_forever, name="pidone-log", daemon=True).start()

    def put(self, line: str) -> None:
        with self._lock:
            if self._queued + len(line) > QUEUED_BYTES:
                self._owner.dropped += 1
                self._unsaid_drops += 1
                return
            self._queued += len(line)
            self._lines.append(line)
        self._ready.release()

    def flush(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (self._lines or self._writing) and time.monotonic() < deadline:
            time.sleep(0.005)

    def _write_forever(self) -> None:
        while True:
            self._ready.acquire()
            with self._lock:
                self._writing = True  # before the line leaves the queue: flush reads unlocked
                line = self._lines.popleft()
                unsaid, self._unsaid_drops = self._unsaid_drops, 0
            if unsaid:  # stderr took lines again: say how many it missed
                _write_line(self._owner._format(WARNING, f"{unsaid} log lines dropped: stderr was "
                                                "not read (all in pidone_log_lines_dropped_total)"))
            _write_line(line)
            with self._lock:
                self._queued -= len(line)
                self._writing = False


def _text_line(level: int, text: str) -> str:
    return f"pidone[{os.getpid()}]: {LEVEL_NAMES[level]}: {text}\n"


def _json_line(level: int, text: str) -> str:
    import json  # only for --log-format json

    now = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    return json.dumps({"time": stamp, "level": LEVEL_NAMES[level], "logger": "pidone",
                       "pid": os.getpid(), "message": text}) + "\n"


def _write_line(line: str) -> None:
    stream = sys.stderr
    if stream is None:
        return  # started with fd 2 closed: the line goes nowhere, but the queue still drains
    try:
        stream.write(line)
        stream.flush()
    except (OSError, ValueError):
        pass  # stderr closed or broken: pidone carries on without its log


log = Log()
"""The one log of the process: `from app.log import log`."""
