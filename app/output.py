"""pidone's own text outside the log: --help, --version and one-line errors, written straight
to their file descriptor. Not print(): its buffer is flushed again at exit, where a full disk or
a closed pipe becomes an "Exception ignored" on stderr and exit status 120."""

from __future__ import annotations

import errno
import os
import sys

STDOUT, STDERR = 1, 2


def write_text(text: str, fd: int = STDOUT) -> None:
    """All of `text`, or OSError (EPIPE, ENOSPC, EBADF when the descriptor is closed)."""
    if (sys.stdout if fd == STDOUT else sys.stderr) is None:
        # Closed when pidone started (CPython then sets the stream to None): the number may
        # since have been given to a socket or a pipe of pidone's own.
        raise OSError(errno.EBADF, os.strerror(errno.EBADF))
    data = text.encode(errors="backslashreplace")
    while data:
        data = data[os.write(fd, data):]


def say(line: str, fd: int = STDERR) -> None:
    """One line, or nothing when it cannot be written: the exit status still tells."""
    try:
        write_text(f"{line}\n", fd)
    except OSError:
        pass
