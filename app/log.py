"""pidone's own log lines on stderr, written by a background thread so a full pipe never stalls the core."""

from __future__ import annotations

import json
import logging
import os
import queue
import sys
import threading
import time

LOGGER_NAME = "pidone"
_LEVELS = {"debug": 2, "info": 1, "warning": 0, "warn": 0, "error": -1}


def verbosity_from_level_name(name: str) -> int:
    """Map PIDONE_LOG_LEVEL (debug, info, warning, error) onto a -v count."""
    try:
        return _LEVELS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r}: use debug, info, warning or error") from None


class _TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"pidone[{os.getpid()}]: {record.levelname.lower()}: {record.getMessage()}"


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": LOGGER_NAME,
            "pid": os.getpid(),
            "message": record.getMessage(),
        }
        return json.dumps(fields)


class _QueueHandler(logging.Handler):
    """Formats in the caller, hands the line to a bounded queue, drops when it is full."""

    def __init__(self, lines: queue.Queue[str]) -> None:
        super().__init__()
        self.lines = lines
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.put_nowait(self.format(record) + "\n")
        except queue.Full:
            self.dropped += 1
        except Exception:  # a log line must never take the core down
            self.handleError(record)


class _InPlaceHandler(logging.Handler):
    """Writes each line at once: the fallback when no writer thread could be started."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            _write_line(self.format(record) + "\n")
        except Exception:  # a log line must never take the core down
            self.handleError(record)


class BackgroundLog:
    """Log lines go to a bounded queue; one writer thread puts them on stderr.

    Made only after the child is spawned: pidone must fork while single-threaded."""

    def __init__(self, verbosity: int, log_format: str) -> None:
        self._lines: queue.Queue[str] = queue.Queue(maxsize=10_000)
        formatter = _JsonFormatter() if log_format == "json" else _TextFormatter()
        handler: logging.Handler = _QueueHandler(self._lines)
        logger = logging.getLogger(LOGGER_NAME)
        logger.propagate = False
        logger.setLevel(
            logging.DEBUG if verbosity >= 2
            else logging.INFO if verbosity == 1
            else logging.WARNING if verbosity == 0
            else logging.ERROR
        )
        try:
            threading.Thread(target=self._write_forever, name="pidone-log", daemon=True).start()
        except RuntimeError as failure:
            # No task left (the cgroup's pids.max): pidone runs on, writing its lines in place.
            handler = _InPlaceHandler()
            handler.setFormatter(formatter)
            logger.handlers[:] = [handler]
            logger.warning("log writer thread not started (%s): writing log lines in place", failure)
            return
        handler.setFormatter(formatter)
        logger.handlers[:] = [handler]

    def flush(self, timeout: float = 1.0) -> None:
        """Wait up to `timeout` for queued lines to be written (a stuck stderr must not hold us)."""
        deadline = time.monotonic() + timeout
        while self._lines.unfinished_tasks and time.monotonic() < deadline:
            time.sleep(0.005)

    def _write_forever(self) -> None:
        while True:
            line = self._lines.get()
            _write_line(line)
            self._lines.task_done()


def _write_line(line: str) -> None:
    stream = sys.stderr
    if stream is None:
        return  # started with fd 2 closed: the line goes nowhere, but the queue still drains
    try:
        stream.write(line)
        stream.flush()
    except (OSError, ValueError):
        pass  # stderr closed or broken: pidone carries on without its log
