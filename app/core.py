"""The core loop: wait for signals, reap children, forward, and leave when the child is gone."""

from __future__ import annotations

import os
import signal
import time
from _thread import get_ident
from collections import deque, namedtuple

from app.alarm import Alarm
from app.child import give_back_the_terminal
from app.config import GROUP, Config
from app.log import DEBUG, log
from app.policy import HOLD, STOP_TIMEOUT, Decision, SignalPolicy
from app.signals import JOB_CONTROL, TERMINATING, SignalTaker, signal_name
from app.state import ChildStatus, CoreState, Phase, Snapshot

TYPE_CHECKING = False  # typing itself is not imported: it costs the start-up path (app.config)
if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

    from app.procfs import ProcessInfo

HEARTBEAT_INTERVAL = 1.0
"""Seconds the loop sleeps at most while something watches it (the HTTP side, whose /health
reads the heartbeat): the heartbeat moves at least this often. Unwatched (--http off), the
loop sleeps until a signal or a deadline, as dumb-init does."""
LAST_REAP_TIMEOUT = 5.0
"""After SIGKILL, how long to keep reaping before leaving anyway (a process stuck in D state)."""
FAILED_TURNS_LIMIT = 100
"""Turns of the loop failing in a row before the core gives up on them (see `supervise`)."""
NAMED_LEFTOVERS = 5
"""How many of the processes left after --grace the SIGKILL warning names."""


class ChildNotRunning(Exception):
    """A signal was asked for but the child has already exited."""


class SignalRefused(Exception):
    """The kernel refused the signal (EPERM: the child became a process pidone may not signal,
    e.g. a set-user-ID program while pidone is not root)."""


class CoreBroken(Exception):
    """The loop failed FAILED_TURNS_LIMIT turns in a row: it cannot go on."""


class Delivery(namedtuple("Delivery", "signo pid target")):
    __slots__ = ()
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
    """Owns waitpid and the child's signals. Only the core thread reaps, signals and applies
    the signal policy; the HTTP side reads `snapshot` and asks through `send`."""

    def __init__(self, config: Config, state: CoreState, *, terminal: bool = False) -> None:
        """`terminal`: the child's group is the terminal's foreground group (job control)."""
        self.config = config
        self.state = state
        self._policy = SignalPolicy(config.rewrites, config.term_delay, config.stop_timeout,
                                    config.signal_target, terminal)
        self._has_children = True
        self._job_control = os.getpid() != 1
        """Not PID 1: a shell may have started us as a job, and sees it stop only if we do."""
        self._wait_options = os.WNOHANG | (os.WUNTRACED if self._job_control else 0)
        self._stopped = False
        """We stopped ourselves and have not forwarded a SIGCONT since: a stop of the child
        reported now is the one we stopped for, or one from before it."""
        self._core_thread = get_ident()
        self._requests: deque[tuple[int, Future[Delivery]]] = deque()
        self._watches: list[Watch] = []
        self._next_watch = 0.0
        self._signals = SignalTaker(Alarm(self._wake))
        self._bugs_seen: set[tuple[str, str, int]] = set()

    # -- the narrow interface for the HTTP side -------------------------------------------

    def snapshot(self) -> Snapshot:
        return self.state.snapshot()

    def send(self, signo: int) -> Future[Delivery]:
        """Ask the core thread to deliver `signo` now, as the API's caller named it. The answer
        is a Delivery, or ChildNotRunning / SignalRefused. Any thread may ask."""
        from concurrent.futures import Future

        answer: Future[Delivery] = Future()
        if not self.state.child.running:
            answer.set_exception(self._not_running())
            return answer
        self._requests.append((signo, answer))
        self._wake()
        return answer

    def watch(self, name: str, trouble: Callable[[], str | None]) -> None:
        """Have the loop ask `trouble()` about once a second, and log loudly what it says when
        it stops answering (and when it answers again): /health cannot report its own server
        gone."""
        self._watches.append(Watch(name, trouble))

    def _wake(self) -> None:
        """The named wake-up: a SIGCHLD aimed at the core thread ends its sigwaitinfo at once
        (costing one empty waitpid); if the thread is busy, the signal waits for its next turn,
        so a request is never left unseen. The alarm rings it at the core's deadlines."""
        signal.pthread_kill(self._core_thread, signal.SIGCHLD)

    # -- the loop -------------------------------------------------------------------------

    def supervise(self) -> None:
        """Wait, reap and forward until the child has exited.

        An unexpected exception in a turn is pidone's bug: it is logged, and the loop goes on.
        Only when every turn fails, FAILED_TURNS_LIMIT in a row, does it raise CoreBroken."""
        failed_in_a_row = 0
        while self.state.child.running:
            try:
                self._turn()
                failed_in_a_row = 0
            except Exception as bug:
                self.report_bug("the core loop", bug)
                failed_in_a_row += 1
                if failed_in_a_row >= FAILED_TURNS_LIMIT:
                    raise CoreBroken(f"{failed_in_a_row} turns of the core loop failed in a row") from bug
        self._answer_requests()  # asked while the child was exiting: 409

    def _turn(self) -> None:
        state = self.state
        info = self._signals.take(self._wake_at())
        state.heartbeat = time.time()
        if info is not None:  # None: a deadline came, without the alarm's thread
            if info.si_signo == signal.SIGCHLD:
                self.reap()
            else:
                self.on_signal(info.si_signo, time.perf_counter())
        if self._requests:
            self._answer_requests()
        if self._policy.next_deadline() is not None:
            self._on_deadlines()
        if self._watches and state.heartbeat >= self._next_watch:
            self._check_watches()

    def reap(self) -> None:
        """Drain waitpid(-1, WNOHANG). Only this thread reaps and signals, so the child's PID
        cannot be recycled between "still running?" and the kill of a forward. Not PID 1, it
        also hears of the child stopping (WUNTRACED), to stop with it."""
        state = self.state
        child_pid = state.child.pid
        reaped_orphans: list[int] = []
        names: dict[int, str] | None = {} if self.config.warn_on_reap else None
        child_exited = False
        child_stopped_by = 0
        with state.lock:
            while True:
                try:
                    if names is None:
                        pid, wait_status = os.waitpid(-1, self._wait_options)
                    else:
                        pid, wait_status = _wait_naming(names, self._wait_options)
                except ChildProcessError:
                    self._has_children = False
                    break
                if pid == 0:
                    self._has_children = True
                    break
                if os.WIFSTOPPED(wait_status):
                    if pid == child_pid:
                        child_stopped_by = os.WSTOPSIG(wait_status)
                elif pid == child_pid and state.child.running:
                    self._record_child_exit(wait_status)
                    child_exited = True
                else:
                    reaped_orphans.append(pid)
            state.zombies_reaped += len(reaped_orphans)
        if child_exited:
            self._log_child_exit()
        if child_stopped_by in JOB_CONTROL and not self._stopped:
            self._stop_as_a_job(f"child {child_pid} stopped by {signal_name(child_stopped_by)}")
        if names is not None:
            for pid in reaped_orphans:
                log.warning("reaped zombie process %d%s", pid,
                            f" ({names[pid]})" if names.get(pid) else "")

    def on_signal(self, signo: int, learned_at: float) -> None:
        """One signal from the OS: count it; the policy says what to deliver now, if anything."""
        state = self.state
        with state.lock:
            state.count_received(signo)
            decision = self._policy.received(signo, time.monotonic())
            self._note_stop_asked()
        if signo == signal.SIGCONT and self._job_control:
            self._stopped = False
            give_back_the_terminal(self.state.child.pid)
        if decision.signo:
            self._forward(decision, learned_at)
        elif decision.why == HOLD:
            log.info("%s received: not ready now, forwarding in %.3gs", signal_name(signo),
                     self.config.term_delay)
        else:
            log.debug("dropped %s (%s)", signal_name(signo), decision.why)
        if signo in JOB_CONTROL and self._job_control:
            self._stop_as_a_job(f"{signal_name(signo)} received")  # as dumb-init

    def _stop_as_a_job(self, why: str) -> None:
        """Stop, so that the shell that started us as a job sees it stop and takes its terminal
        back: when we get SIGTSTP/TTIN/TTOU (as dumb-init), and when the child stops for them,
        as it does on Ctrl-Z (its group owns the terminal and gets the SIGTSTP, not us). The
        shell's SIGCONT (fg, bg) resumes us, and we forward it. A plain SIGSTOP of the child
        leaves us running: nothing would resume us."""
        log.info("%s: stopping as a job", why)
        self._stopped = True
        os.kill(os.getpid(), signal.SIGSTOP)

    def _forward(self, decision: Decision, learned_at: float) -> None:
        """Deliver what the policy decided on its own: a signal from the OS (or its rewrite),
        the held-back SIGTERM, --stop-timeout's SIGKILL."""
        try:
            self._deliver(decision, "os", learned_at)
        except ChildNotRunning:
            pass  # it exited meanwhile: the next reap tells
        except SignalRefused as refusal:
            log.error("%s", refusal)

    def _answer_requests(self) -> None:
        """Deliver what the HTTP side asked for, in order, and answer each request."""
        while self._requests:
            signo, answer = self._requests.popleft()
            if not answer.set_running_or_notify_cancel():
                continue  # the caller gave up waiting (the core was stalled): not delivered
            try:
                if not self.state.child.running:
                    raise self._not_running()
                decision = self._policy.requested(signo, time.monotonic())
                target = self._deliver(decision, "http", time.perf_counter())
                answer.set_result(Delivery(decision.signo, self.state.child.pid, target))
            except (ChildNotRunning, SignalRefused) as refusal:
                answer.set_exception(refusal)
            except Exception as bug:
                self.report_bug("a signal asked for over HTTP", bug)
                answer.set_exception(bug)

    def _deliver(self, decision: Decision, source: str, learned_at: float) -> str:
        """The one way a signal reaches the child: signal it or its group as the policy
        decided; return which ("group" or "child"). A forward is counted under `source`."""
        state = self.state
        signo = decision.signo
        with state.lock:
            child = state.child
            if not child.running:
                raise self._not_running()
            self._note_stop_asked()
            try:
                target = self._signal_child(signo)
            except PermissionError:
                raise SignalRefused(f"the kernel refused {signal_name(signo)} to the child "
                                    f"(pid {child.pid}): permission denied") from None
            if decision.why != STOP_TIMEOUT:  # pidone's own SIGKILL forwards nothing
                state.record_forward(signo, source, time.perf_counter() - learned_at)
        if decision.why == STOP_TIMEOUT:
            log.warning("child still running %.3gs after a stop signal: sending SIGKILL",
                        self.config.stop_timeout)
        elif log.enabled(DEBUG):
            log.debug("forwarded %s to %s %d (%s, %s)", signal_name(signo), target, child.pid,
                      source, decision.why)
        return target

    def _note_stop_asked(self) -> None:
        """Caller holds the lock: once the policy has seen a stop asked, the child is not ready."""
        if self._policy.stop_asked and self.state.phase == Phase.RUNNING:
            self.state.phase = Phase.TERMINATING

    def _not_running(self) -> ChildNotRunning:
        return ChildNotRunning(f"the child (pid {self.state.child.pid}) has exited")

    def _check_watches(self) -> None:
        self._next_watch = self.state.heartbeat + HEARTBEAT_INTERVAL
        for watch in list(self._watches):
            try:
                trouble = watch.trouble()
            except Exception as bug:
                self.report_bug(f"the watch of the {watch.name}", bug)
                self._watches.remove(watch)  # a watch that cannot answer is no watch
                continue
            if (trouble is None) == watch.answered:
                continue
            watch.answered = trouble is None
            if trouble is None:
                log.warning("%s answers again", watch.name)
            else:
                log.error("%s does not answer: %s; the child runs on", watch.name, trouble)

    def _wake_at(self) -> float | None:
        """When the next wait ends at the latest (time.monotonic); None: when a signal comes."""
        deadline = self._policy.next_deadline()
        if not self._watches:
            return deadline  # the usual case without HTTP: None
        beat = time.monotonic() + HEARTBEAT_INTERVAL
        return beat if deadline is None else min(beat, deadline)

    def _on_deadlines(self) -> None:
        for decision in self._policy.due(time.monotonic()):
            self._forward(decision, time.perf_counter())

    def _signal_child(self, signo: int) -> str:
        """Caller holds the lock and knows the child is unreaped (its PID cannot be recycled):
        signal its group or the child alone, as the policy says; return which ("group" or
        "child"). A stop is followed by SIGCONT to the same target, as systemd does: a stopped
        process would otherwise hold the stop pending until a SIGKILL."""
        pid = self.state.child.pid
        if self._policy.target(signo) == GROUP:
            try:
                _signal_group(pid, signo)
                return "group"
            except ProcessLookupError:
                pass  # the child moved to another group of its own; it is still ours to signal
        _signal_process(pid, signo)
        return "child"

    def _record_child_exit(self, wait_status: int) -> None:
        """Caller holds the lock. Nothing here may fail: the child's status must not be lost."""
        code, killed_by = exit_status(wait_status)
        old = self.state.child
        self.state.child = ChildStatus(old.argv, old.pid, old.start_time, False, code, killed_by)
        self.state.phase = Phase.STOPPING

    def _log_child_exit(self) -> None:
        child = self.state.child
        if child.exit_signal is not None:
            log.info("child %d killed by %s", child.pid, signal_name(child.exit_signal))
        else:
            log.info("child %d exited with status %d", child.pid, child.exit_code)

    # -- pidone's own mistakes ------------------------------------------------------------

    def report_bug(self, where: str, bug: BaseException) -> None:
        """Log an unexpected exception as pidone's bug, with its traceback, the first time it
        happens at that place (a bug on every turn must not flood the log); /status lists it."""
        import traceback

        frames = traceback.extract_tb(bug.__traceback__)
        site = (type(bug).__name__, frames[-1].filename, frames[-1].lineno) if frames \
            else (type(bug).__name__, "", 0)
        if site in self._bugs_seen:
            return
        self._bugs_seen.add(site)
        summary = f"pidone bug: {type(bug).__name__} in {where}: {bug}"
        log.error("%s; pidone goes on (please report it)\n%s", summary,
                  "".join(traceback.format_exception(bug)).rstrip())
        with self.state.lock:
            self.state.warnings.append(summary)

    def reap_until_child_exits(self) -> None:
        """The last resort when the loop cannot go on: nothing is forwarded any more, but
        every child is still reaped and the child's status kept for pidone's exit."""
        log.error("pidone's core loop cannot go on: it stops forwarding signals and only reaps "
                  "until the child exits")
        while self.state.child.running:
            try:
                pid, wait_status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:
                continue
            with self.state.lock:
                if pid == self.state.child.pid:
                    self._record_child_exit(wait_status)
                else:
                    self.state.zombies_reaped += 1

    # -- leaving --------------------------------------------------------------------------

    def leave(self) -> int:
        """End what is left, reap, and return pidone's exit status: the child's."""
        if self.state.is_pid1 or self.state.is_subreaper:
            self._end_the_rest()
        elif self._policy.target(signal.SIGTERM) == GROUP:
            self._terminate_child_group()
        with self.state.lock:
            self.state.phase = Phase.EXITED
        return self.exit_code()

    def exit_code(self) -> int:
        """pidone's exit status: the child's, 0 when -e remaps it."""
        code = self.state.child.exit_code
        if code is None:  # only if the child's status was lost to a bug: say so, fail
            log.error("pidone bug: the child's exit status was lost; exiting with 255")
            return 255
        return 0 if code in self.config.remap_exit else code

    def _end_the_rest(self) -> None:
        """SIGTERM what is left, reap for up to --grace, SIGKILL the rest, reap."""
        if self._has_children or self._descendants():
            self.terminate_rest(signal.SIGTERM)
            if not self._reap_until(time.monotonic() + self.config.grace):
                log.warning("processes left after %.3gs grace: sending SIGKILL%s",
                            self.config.grace, self._name_leftovers())
                self.terminate_rest(signal.SIGKILL)
                self._reap_until(time.monotonic() + LAST_REAP_TIMEOUT)

    def _terminate_child_group(self) -> None:
        """Neither PID 1 nor a subreaper, pidone cannot reap what the child leaves behind, but,
        as dumb-init does, it asks the child's process group (its background jobs) to stop. The
        group's number cannot have been recycled while any member lives."""
        try:
            _signal_group(self.state.child.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass  # nobody left in the group

    def terminate_rest(self, signo: int) -> None:
        """Signal every process left: the whole PID namespace when PID 1, else our descendants
        (a SIGTERM with its SIGCONT)."""
        if os.getpid() == 1:
            # Only as PID 1 does -1 mean "this namespace"; elsewhere it is every process on the host.
            try:
                _signal_process(-1, signo)
            except ProcessLookupError:
                pass
            return
        for info in self._descendants():
            try:
                _signal_process(info.pid, signo)
            except ProcessLookupError:
                pass

    def _name_leftovers(self) -> str:
        """" to PID (name), ... and N more" for the SIGKILL warning; "" when /proc cannot say."""
        from app import procfs

        try:
            if os.getpid() == 1:
                left = [info for info in procfs.read_processes() if info.pid != 1]
            else:
                left = self._descendants()
        except OSError:
            return ""  # no /proc: the warning still says that something is left
        left = sorted((info for info in left if info.state != "Z"), key=lambda info: info.pid)
        if not left:
            return ""
        named = ", ".join(f"{info.pid} ({info.name})" for info in left[:NAMED_LEFTOVERS])
        more = len(left) - NAMED_LEFTOVERS
        return f" to {named}" + (f" and {more} more" if more > 0 else "")

    def _descendants(self) -> list[ProcessInfo]:
        if os.getpid() == 1 or not self.state.is_subreaper:
            return []  # as PID 1 every process is ours to reap; otherwise orphans are not ours
        from app import procfs  # only a subreaper reads /proc here: PID 1 need not import it

        try:
            return procfs.descendants(os.getpid(), procfs.read_processes())
        except procfs.ProcUnavailable:
            return []  # without our own /proc they cannot be found, let alone told apart

    def _reap_until(self, deadline: float) -> bool:
        """Reap while waiting; True once nothing is left to wait for."""
        while True:
            self.reap()
            if not self._has_children and not self._descendants():
                return True
            now = time.monotonic()
            if now >= deadline:
                return False
            info = self._signals.take(min(deadline, now + HEARTBEAT_INTERVAL))
            self.state.heartbeat = time.time()
            self._answer_requests()
            if info is not None and info.si_signo != signal.SIGCHLD:
                with self.state.lock:
                    self.state.count_received(info.si_signo)


def _signal_process(pid: int, signo: int) -> None:
    """os.kill, and SIGCONT after a stop (see Core._signal_child)."""
    os.kill(pid, signo)
    if signo in TERMINATING:
        os.kill(pid, signal.SIGCONT)


def _signal_group(pgid: int, signo: int) -> None:
    """os.killpg, and SIGCONT after a stop (see Core._signal_child)."""
    os.killpg(pgid, signo)
    if signo in TERMINATING:
        os.killpg(pgid, signal.SIGCONT)


def _wait_naming(names: dict[int, str], options: int) -> tuple[int, int]:
    """waitpid(-1, options) for -w, noting in `names` the name of what it reaps: a zombie's
    name is in /proc until it is reaped, gone after; so look first (WNOWAIT), then reap."""
    stopped = os.WSTOPPED if options & os.WUNTRACED else 0
    found = os.waitid(os.P_ALL, 0, os.WEXITED | stopped | os.WNOHANG | os.WNOWAIT)
    if found is None:
        return 0, 0
    names[found.si_pid] = _process_name(found.si_pid)
    return os.waitpid(found.si_pid, options)


def _process_name(pid: int) -> str:
    """/proc/PID/comm, or "" when it cannot be read (no /proc)."""
    try:
        with open(f"/proc/{pid}/comm", "rb") as comm:
            return comm.read().decode(errors="replace").rstrip("\n")
    except OSError:
        return ""
