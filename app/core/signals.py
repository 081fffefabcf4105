"""Signal names and numbers, which signals pidone forwards, and rewrite rules."""

from __future__ import annotations

import os
import signal
import sys
import time

from app.excerpt import excerpt
from app.numbers import is_whole_number

TYPE_CHECKING = False  # typing itself is not imported: it costs the start-up path (app.config)
if TYPE_CHECKING:
    from app.core.alarm import Alarm

SIGRTMIN = signal.SIGRTMIN
SIGRTMAX = signal.SIGRTMAX

# SIGKILL and SIGSTOP cannot be caught; SIGCHLD is pidone's own business.
_NOT_FORWARDED = {signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD}

FORWARDED: frozenset[int] = frozenset(
    int(s) for s in signal.valid_signals() if s not in _NOT_FORWARDED
)
"""Every signal pidone blocks, takes with sigwaitinfo, and passes on."""

WAITED: frozenset[int] = frozenset(FORWARDED | {signal.SIGCHLD})
"""What the core takes with sigwaitinfo: every forwarded signal, and SIGCHLD for reaping."""


def block_signals() -> None:
    """Block everything pidone waits for, before any thread exists, so that only sigwaitinfo
    takes them (threads inherit the mask). Synchronous signals too: a real fault inside
    pidone is forced through by the kernel whatever the mask."""
    signal.pthread_sigmask(signal.SIG_BLOCK, WAITED)


class SignalTaker:
    """The next signal of WAITED, taken with sigwaitinfo; a wait that must end by a moment
    (a deadline, the heartbeat) is ended by the alarm's wake-up, which arrives as a SIGCHLD.

    Not signal.sigtimedwait: CPython's (3.11 at least) returns a siginfo nothing wrote when the
    process was stopped while it waited (SIGSTOP, the v2 freezer: the kernel ends the wait with
    EINTR) and the timeout has passed by the time it runs again: stack garbage, a number that
    is no signal, or the previous answer again. No check can tell that from a real signal: the
    v1 freezer ends the same wait late with a real one, the same sender's again (Ctrl-C twice,
    SIGWINCH), already taken from the kernel. sigwaitinfo has no timeout, and CPython retries
    it on EINTR: every answer it gives is one the kernel wrote. Only when the alarm's thread
    cannot start (the cgroup's pids.max reached) does a wait with a deadline fall back to
    sigtimedwait, until the thread can start: deadlines then still come, on that one flaw."""

    __slots__ = ("_alarm", "_waiting_interval")

    def __init__(self, alarm: Alarm) -> None:
        self._alarm = alarm
        self._waiting_interval = waiting_switch_interval()

    def take(self, until: float | None) -> signal.struct_siginfo | None:
        """The next signal of WAITED; a SIGCHLD (or None), at the latest, once time.monotonic()
        has reached `until` (None: only a signal ends the wait)."""
        rings = self._alarm.ring_at(until)
        sys.setswitchinterval(self._waiting_interval)
        try:
            if rings:
                return signal.sigwaitinfo(WAITED)
            # No thread for the alarm: the flawed wait, its answer at least a signal we wait for.
            info = signal.sigtimedwait(WAITED, max(0.0, until - time.monotonic()))
            return info if info is not None and info.si_signo in WAITED else None
        finally:
            sys.setswitchinterval(TURN_SWITCH_SECONDS)


TURN_SWITCH_SECONDS = 0.001
"""The GIL switch interval while the core runs a turn (CPython's default is 5 ms): another
thread that wants the GIL waits this long before asking the core for it, so that a forward is
not cut in two and a storm's reaping not into slices."""
WAITING_SWITCH_SECONDS = 0.000001
"""The switch interval while the core waits for a signal, when the process may run on two
CPUs or more. A signal wakes the core wanting the GIL, which the HTTP thread (importing, or
serving a scrape) holds; the core asks for it after this long rather than after a turn's
interval, and has it at the holder's next bytecode boundary. CPython starts that wait again
whenever the holder lets the GIL go for a system call and takes it back before the waiter
runs, which a busy server does every few microseconds: at 1 ms, forwards under a /metrics
load waited up to a millisecond and more (docs/benchmarks.md)."""
TIMER_SLACK_NS = 10_000
"""The core thread's timer slack, see `wake_promptly`."""


def waiting_switch_interval() -> float:
    """WAITING_SWITCH_SECONDS, or on a single CPU the turn's interval: there the core and the
    GIL's holder take turns on the one CPU, and a core that asks early only keeps the holder
    from running to the point where it lets go; the holder's own releases hand over sooner."""
    return WAITING_SWITCH_SECONDS if len(os.sched_getaffinity(0)) > 1 else TURN_SWITCH_SECONDS


def wake_promptly() -> None:
    """Shrink the calling main thread's timer slack from Linux's 50 µs to TIMER_SLACK_NS: its
    waits for the GIL are timed futex waits, which the slack stretches, so WAITING_SWITCH_SECONDS
    would mean 50 µs. Not below 10 µs: a core that polls the GIL faster keeps its holder off a
    CPU they happen to share. The core calls it once the HTTP thread runs, which keeps the
    default slack and so waits at least 50 µs before it asks the GIL back in the middle of a
    forward. /proc/self is the main thread's own file: no privilege is needed; without /proc,
    or with it read-only, the core waits 50 µs longer."""
    if waiting_switch_interval() == TURN_SWITCH_SECONDS:
        return
    try:
        with open("/proc/self/timerslack_ns", "w") as slack:
            slack.write(str(TIMER_SLACK_NS))
    except OSError:
        pass


TERMINATING: frozenset[int] = frozenset({signal.SIGTERM, signal.SIGINT, signal.SIGQUIT})
"""Signals that ask the workload to stop: they end readiness and arm --stop-timeout."""

JOB_CONTROL: frozenset[int] = frozenset({signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU})

TARGETS = ("child", "group", "all")
"""Who a signal asked for over the API may reach: the child's PID alone, its process group,
or every process pidone sees but itself."""


class SignalNameError(ValueError):
    """A signal name or number that does not name a signal on this system."""


def signal_name(signo: int) -> str:
    """The name `kill -l` would print, with the SIG prefix: SIGTERM, SIGRTMIN+3, SIGRTMAX-1."""
    if SIGRTMIN <= signo <= SIGRTMAX:
        offset_from_min = signo - SIGRTMIN
        offset_from_max = SIGRTMAX - signo
        if offset_from_min == 0:
            return "SIGRTMIN"
        if offset_from_max == 0:
            return "SIGRTMAX"
        if offset_from_min <= offset_from_max:
            return f"SIGRTMIN+{offset_from_min}"
        return f"SIGRTMAX-{offset_from_max}"
    try:
        return signal.Signals(signo).name
    except ValueError:
        return f"SIG{signo}"


def parse_signal(text: str) -> int:
    """Read TERM, SIGTERM, term, 15, RTMIN+3 or SIGRTMAX-2 as a signal number: ASCII only, so
    that neither "١٠" (Arabic-Indic digits) nor "sıgusr2" (a dotless ı, which upper() folds to
    I) names a signal, and nothing around the name is stripped."""
    if not text.isascii():
        raise SignalNameError(f"unknown signal {excerpt(text)!r}: signal names and numbers are ASCII")
    spec = text.upper()
    try:
        signo = int(spec) if is_whole_number(spec) else _number_of_name(spec)
    except (KeyError, ValueError):
        raise SignalNameError(f"unknown signal {excerpt(text)!r}") from None
    if signo not in _VALID:
        raise SignalNameError(f"unknown signal {excerpt(text)!r}")
    return signo


_VALID = frozenset(int(s) for s in signal.valid_signals())


def _number_of_name(spec: str) -> int:
    if not spec.startswith("SIG"):
        spec = "SIG" + spec
    for base_name, base in (("SIGRTMIN", SIGRTMIN), ("SIGRTMAX", SIGRTMAX)):
        if spec.startswith(base_name):
            rest = spec[len(base_name):]
            if rest == "":
                return base
            if rest[0] in "+-" and is_whole_number(rest[1:], 3):
                return base + int(rest[1:]) if rest[0] == "+" else base - int(rest[1:])
            raise ValueError(spec)
    return int(signal.Signals[spec])


def parse_rewrite(text: str) -> tuple[int, int]:
    """Read a dumb-init style rewrite FROM:TO; TO 0 means drop the signal."""
    source, sep, target = text.partition(":")
    if not sep or not source or not target:
        raise SignalNameError(f"malformed rewrite {excerpt(text)!r}: expected FROM:TO, e.g. TERM:QUIT or 15:3")
    from_signo = parse_signal(source)
    to_signo = 0 if target == "0" else parse_signal(target)
    if from_signo not in FORWARDED:
        raise SignalNameError(f"cannot rewrite {signal_name(from_signo)}: pidone never receives it")
    return from_signo, to_signo
