"""The core loop: wait for signals, reap children, forward, and leave when the child is gone."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, NamedTuple

from app.config import Config
from app.signals import JOB_CONTROL, TERMINATING, SignalTaker, signal_name
from app.state import ChildStatus, CoreState, Phase, Snapshot

if TYPE_CHECKING:
    from collections.abc import Callable

    from app.procfs import ProcessInfo

log = logging.getLogger("pidone")

HEARTBEAT_INTERVAL = 1.0
"""Seconds the loop sleeps at most: the /health heartbeat moves at least this often."""
LAST_REAP_TIMEOUT = 5.0
"""After SIGKILL, how long to keep reaping before leaving anyway (a process stuck in D state)."""


class ChildNotRunning(Exception):
    """A signal was asked for but the child has already exited."""


class Delivery(NamedTuple):
    signo: int
    pid: int
    target: str
    """"group" or "child"."""


def exit_status(wait_status: int) -> tuple[int, int | None]:
    """The shell's view of a wait status: (code, or 128+N; the killing signal or None)."""
    code = os.waitstatus_to_exitcode(wait_status)
    if code < 0:
        return 128 - code, -code
    return code, None


class Watch:
    """A side-car the loop asks, about once a second, what keeps it from answering (None: nothing)."""

    __slots__ = ("name", "trouble", "answered")

    def __init__(self, name: str, trouble: Callable[[], str | None]) -> None:
        self.name = name
        self.trouble = trouble
        self.answered = True


class Core:
    """Owns waitpid and the child's signals; the HTTP side calls only `snapshot` and `send`."""

    def __init__(self, config: Config, state: CoreState) -> None:
        self.config = config
        self.state = state
        self._target_group = not config.single_child
        self._pending_term_at: float | None = None
        self._kill_at: float | None = None
        self._has_children = True
        self._core_thread = threading.get_ident()
        self._watches: list[Watch] = []
        self._next_watch = 0.0
        self._signals = SignalTaker()

    # -- the narrow interface for the HTTP side -------------------------------------------

    def snapshot(self) -> Snapshot:
        return self.state.snapshot()

    def send(self, signo: int, source: str = "http") -> Delivery:
        """Deliver `signo` to the child (or its group) now; raises ChildNotRunning."""
        target = self._deliver(signo, source, time.perf_counter())
        delivery = Delivery(signo, self.state.child.pid, target)
        if self._kill_at is not None:
            # Wake the core so it sleeps no longer than the --stop-timeout deadline.
            signal.pthread_kill(self._core_thread, signal.SIGCHLD)
        return delivery

    def watch(self, name: str, trouble: Callable[[], str | None]) -> None:
        """Have the loop ask `trouble()` about once a second, and log loudly what it says when
        it stops answering (and when it answers again): /health cannot report its own server
        gone."""
        self._watches.append(Watch(name, trouble))

    # -- the loop -------------------------------------------------------------------------

    def supervise(self) -> None:
        """Wait, reap and forward until the child has exited."""
        state = self.state
        while state.child.running:
            info = self._signals.take(self._sleep_seconds())
            state.heartbeat = time.time()
            if info is not None:
                if info.si_signo == signal.SIGCHLD:
                    self.reap()
                else:
                    self.on_signal(info.si_signo, time.perf_counter())
            if self._pending_term_at is not None or self._kill_at is not None:
                self._on_deadlines()
            if self._watches and state.heartbeat >= self._next_watch:
                self._check_watches()

    def reap(self) -> None:
        """Drain waitpid(-1, WNOHANG): the child's exit is recorded under the lock, so no
        forward can reach a recycled PID."""
        state = self.state
        child_pid = state.child.pid
        reaped_orphans: list[int] = []
        with state.lock:
            while True:
                try:
                    pid, wait_status = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    self._has_children = False
                    break
                if pid == 0:
                    self._has_children = True
                    break
                if pid == child_pid and state.child.running:
                    self._record_child_exit(wait_status)
                else:
                    reaped_orphans.append(pid)
            state.zombies_reaped += len(reaped_orphans)
        if self.config.warn_on_reap:
            for pid in reaped_orphans:
                log.warning("reaped zombie process %d", pid)

    def on_signal(self, signo: int, learned_at: float) -> None:
        """One signal from the OS: count it, apply --term-delay and -r, forward it."""
        state = self.state
        with state.lock:
            state.count_received(signo)
            if signo == signal.SIGTERM and self.config.term_delay > 0 and self._pending_term_at is None \
                    and state.phase == Phase.RUNNING:
                state.phase = Phase.TERMINATING
                self._pending_term_at = time.monotonic() + self.config.term_delay
                log.info("SIGTERM received: not ready now, forwarding in %.3gs", self.config.term_delay)
                return
        target = self.config.rewrites.get(signo, signo)
        if target == 0:
            log.debug("dropped %s (rewrite to 0)", signal_name(signo))
        else:
            try:
                self._deliver(target, "os", learned_at)
            except ChildNotRunning:
                pass
        if signo in JOB_CONTROL and os.getpid() != 1:
            # As dumb-init: stop ourselves too, so the shell that started us sees the job stop.
            os.kill(os.getpid(), signal.SIGSTOP)

    def _deliver(self, signo: int, source: str, learned_at: float) -> str:
        """Signal the child or its group; return which ("group" or "child")."""
        state = self.state
        with state.lock:
            child = state.child
            if not child.running:
                raise ChildNotRunning(f"the child (pid {child.pid}) has exited")
            if signo in TERMINATING:
                self._begin_terminating(signo)
            target = self._signal_child(signo)
            state.record_forward(signo, source, time.perf_counter() - learned_at)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("forwarded %s to %s %d (%s)", signal_name(signo), target, child.pid, source)
        return target

    def _begin_terminating(self, signo: int) -> None:
        """Caller holds the lock: readiness ends, --stop-timeout is armed, a delayed TERM is sent now."""
        if self.state.phase == Phase.RUNNING:
            self.state.phase = Phase.TERMINATING
        if signo == signal.SIGTERM:
            self._pending_term_at = None
        if self.config.stop_timeout is not None and self._kill_at is None:
            self._kill_at = time.monotonic() + self.config.stop_timeout

    def _check_watches(self) -> None:
        self._next_watch = self.state.heartbeat + HEARTBEAT_INTERVAL
        for watch in self._watches:
            trouble = watch.trouble()
            if (trouble is None) == watch.answered:
                continue
            watch.answered = trouble is None
            if trouble is None:
                log.warning("%s answers again", watch.name)
            else:
                log.error("%s does not answer: %s; the child runs on", watch.name, trouble)

    def _sleep_seconds(self) -> float:
        if self._pending_term_at is None and self._kill_at is None:
            return HEARTBEAT_INTERVAL  # the usual case, once per wake-up: no list, no min
        deadlines = [d for d in (self._pending_term_at, self._kill_at) if d is not None]
        return max(0.0, min(HEARTBEAT_INTERVAL, min(deadlines) - time.monotonic()))

    def _on_deadlines(self) -> None:
        now = time.monotonic()
        if self._pending_term_at is not None and now >= self._pending_term_at:
            self._pending_term_at = None
            try:
                self._deliver(signal.SIGTERM, "os", time.perf_counter())
            except ChildNotRunning:
                pass
        if self._kill_at is not None and now >= self._kill_at:
            self._kill_at = None
            with self.state.lock:
                if self.state.child.running:
                    log.warning("child still running %.3gs after a stop signal: sending SIGKILL",
                                self.config.stop_timeout)
                    self._signal_child(signal.SIGKILL)

    def _signal_child(self, signo: int) -> str:
        """Caller holds the lock and knows the child is unreaped (its PID cannot be recycled):
        signal its group, or with -c the child alone; return which ("group" or "child")."""
        pid = self.state.child.pid
        if self._target_group:
            try:
                os.killpg(pid, signo)
                return "group"
            except ProcessLookupError:
                pass  # the child moved to another group of its own; it is still ours to signal
        os.kill(pid, signo)
        return "child"

    def _record_child_exit(self, wait_status: int) -> None:
        code, killed_by = exit_status(wait_status)
        old = self.state.child
        self.state.child = ChildStatus(old.argv, old.pid, old.start_time, False, code, killed_by)
        self.state.phase = Phase.STOPPING
        if killed_by is not None:
            log.info("child %d killed by %s", old.pid, signal_name(killed_by))
        else:
            log.info("child %d exited with status %d", old.pid, code)

    # -- leaving --------------------------------------------------------------------------

    def leave(self) -> int:
        """SIGTERM what is left, reap for up to --grace, SIGKILL the rest; return pidone's status."""
        if self._has_children or self._descendants():
            self.terminate_rest(signal.SIGTERM)
            if not self._reap_until(time.monotonic() + self.config.grace):
                log.warning("processes left after %.3gs grace: sending SIGKILL", self.config.grace)
                self.terminate_rest(signal.SIGKILL)
                self._reap_until(time.monotonic() + LAST_REAP_TIMEOUT)
        with self.state.lock:
            self.state.phase = Phase.EXITED
        code = self.state.child.exit_code
        assert code is not None
        return 0 if code in self.config.remap_exit else code

    def terminate_rest(self, signo: int) -> None:
        """Signal every process left: the whole PID namespace when PID 1, else our descendants."""
        if os.getpid() == 1:
            # Only as PID 1 does -1 mean "this namespace"; elsewhere it is every process on the host.
            try:
                os.kill(-1, signo)
            except ProcessLookupError:
                pass
            return
        for info in self._descendants():
            try:
                os.kill(info.pid, signo)
            except ProcessLookupError:
                pass

    def _descendants(self) -> list[ProcessInfo]:
        if os.getpid() == 1 or not self.state.is_subreaper:
            return []  # as PID 1 every process is ours to reap; otherwise orphans are not ours
        from app import procfs  # only a subreaper reads /proc here: PID 1 need not import it

        return procfs.descendants(os.getpid(), procfs.read_processes())

    def _reap_until(self, deadline: float) -> bool:
        """Reap while waiting; True once nothing is left to wait for."""
        while True:
            self.reap()
            if not self._has_children and not self._descendants():
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            info = self._signals.take(min(remaining, HEARTBEAT_INTERVAL))
            self.state.heartbeat = time.time()
            if info is not None and info.si_signo != signal.SIGCHLD:
                with self.state.lock:
                    self.state.count_received(info.si_signo)
