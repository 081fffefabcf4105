"""Runs pidone's main() over and over, each time as PID 1 of a fresh PID namespace.

Each run is forked from this one process, which imported pidone once: a table of hundreds of
exit-status cases then costs a fork each, not a Python start-up each.
stdin: one JSON list of pidone's arguments a line; stdout: pidone's exit status, a line each.
"""

from __future__ import annotations

import ctypes
import json
import os
import sys

# What pidone imports late, once its child runs; imported here once, not again in every fork.
import app.core.loop  # noqa: F401
import app.lifecycle  # noqa: F401
import app.log  # noqa: F401
from app.cli import main

CLONE_NEWPID = 0x20000000
_libc = ctypes.CDLL(None, use_errno=True)


def _check(result: int, call: str) -> None:
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{call}: {os.strerror(code)}")


def run_as_pid1(args: list[str], own_namespace: int) -> int:
    """pidone's exit status for `args`, run as PID 1 of a new namespace."""
    # unshare(CLONE_NEWPID) puts the next child in a new namespace, and only once: setns back
    # to our own first, so that every run gets a namespace of its own.
    _check(_libc.setns(own_namespace, CLONE_NEWPID), "setns")
    _check(_libc.unshare(CLONE_NEWPID), "unshare")
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(devnull, 0)  # the case pipe is not the child's to read
        os.dup2(devnull, 1)  # nor our answers its to write on
        os._exit(main(args) or 0)  # main() returns only for a usage error; run() never does
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])


def serve() -> None:
    own_namespace = os.open("/proc/self/ns/pid", os.O_RDONLY)
    for line in sys.stdin:
        print(run_as_pid1(json.loads(line), own_namespace), flush=True)


if __name__ == "__main__":
    serve()
