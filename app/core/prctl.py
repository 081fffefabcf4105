"""The two Linux prctl calls pidone needs: child subreaper and parent-death signal."""

from __future__ import annotations

import ctypes
import os

_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _prctl(option: int, value: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(option, ctypes.c_ulong(value), 0, 0, 0) != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def become_subreaper() -> None:
    """Orphans of our descendants will be re-parented to us instead of to PID 1."""
    _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def set_parent_death_signal(signo: int) -> None:
    """Have the kernel send us `signo` when our parent dies (forwarded like any other)."""
    _prctl(_PR_SET_PDEATHSIG, signo)
