"""The core loop: wait for signals, reap children, forward, and leave when the child is gone."""

from __future__ import annotations

import os
import signal
import time
from _thread import get_ident
from collections import deque, namedtuple

from app.core.alarm import Alarm
from app.core.child import ExecError, give_back_the_terminal, spawn_child
from app.config import CHILD, GROUP, Config
from app.log import DEBUG, log
from app.core.policy import HOLD, STOP_TIMEOUT, Decision, SignalPolicy
from app.core.restart import RestartPolicy
from app.core.signals import JOB_CONTROL, TERMINATING, SignalTaker, signal_name
from app.core.state import ChildStatus, CoreState, ExitRecord, Phase, Snapshot

TYPE_CHECKING = False  # typing itself is not imported: it costs the start-up path (app.config)
if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import Future

    from app.core.procfs import ProcessInfo

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
DEFAULT_RESTART_TIMEOUT = 10.0
"""Seconds POST /restart waits for the child after its stop signal, without --stop-timeout."""
RESTART_STOP = "the stop of POST /restart"
RESTART_KILL = "POST /restart's timeout passed"
"""Why a restart signals the child (Decision.why, as the policy's reasons)."""
GROUP_POLL_INTERVAL = 0.02
"""Seconds between looks at what is left of a restarted child's group (rarely anything)."""


class ChildNotRunning(Exception):
    """A signal was asked for but the child has already exited."""


class SignalRefused(Exception):
    """The kernel refused the signal (EPERM: the child became a process pidone may not signal,
    e.g. a set-user-ID program while pidone is not root)."""


class CoreBroken(Exception):
    """The loop failed FAILED_TURNS_LIMIT turns in a row: it cannot go on."""


class RestartRefused(Exception):
    """Not now: pidone is stopping, or another restart is under way."""


class Delivery(namedtuple("Delivery", "signo pid target processes", defaults=(None,))):
    __slots__ = ()
    signo: int
    pid: int
    target: str
    """One of TARGETS: who got it."""
    processes: int | None
    """For "all": how many processes were signalled (None: /proc could not tell)."""


class Restarted(namedtuple("Restarted", "previous pid")):
    __slots__ = ()
    previous: ChildStatus
    """The child that was stopped, with its exit."""
    pid: int
    """The new child's."""


class Request(namedtuple("Request", "signo answer restart target timeout",
                         defaults=(False, None, None))):
    """What the HTTP side asks of the core: a signal to `target`, or a restart."""

    __slots__ = ()
    signo: int
    answer: Future
    restart: bool
    target: str | None
    """A signal's target, one of TARGETS; None: the configured one."""
    timeout: float | None
    """A restart's wait before SIGKILL; None: the default."""


class Start(namedtuple("Start", "take_terminal cwd", defaults=(False, None))):
    """How the first child was started, so that a restart starts the command the same way."""

    __slots__ = ()
    take_terminal: bool
    cwd: str | None


class PendingRestart:
    """A restart under way, owned by the core thread: the old child is stopped (over the API),
    reaped, what is left of its group ended by the --grace rule, the back-off waited out
    (--restart), then the command started again."""

    __slots__ = ("reason", "answer", "kill_at", "stop_target", "previous", "group",
                 "group_kill_at", "group_give_up_at", "start_at", "cancelled")

    def __init__(self, reason: str, answer: Future[Restarted] | None, kill_at: float | None,
                 start_at: float) -> None:
        self.reason = reason
        self.answer = answer
        self.kill_at = kill_at
        """When the old child, still running, gets SIGKILL (POST /restart's timeout)..."""
        self.stop_target: str | None = None
        """...and who gets it: whoever got the stop signal."""
        self.previous: ChildStatus | None = None
        """The old child once reaped."""
        self.group: int | None = None
        """The old child's process group while something of it may be left."""
        self.group_kill_at: float | None = None
        self.group_give_up_at: float | None = None
        self.start_at = start_at
        self.cancelled = False
        """A stop from the OS came: pidone leaves once the old child is gone."""

    def next_deadline(self, now: float) -> float | None:
        if self.cancelled:
            return self.kill_at
        if self.previous is None:
            return self.kill_at
        if self.group is not None:
            return now + GROUP_POLL_INTERVAL
        return self.start_at


def restart_stop_wait(config: Config, timeout: float | None) -> float:
    """Seconds a restart waits for the child after its stop signal: as asked, else
    --stop-timeout, else DEFAULT_RESTART_TIMEOUT."""
    if timeout is not None:
        return timeout
    return config.stop_timeout if config.stop_timeout is not None else DEFAULT_RESTART_TIMEOUT


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

    def __init__(self, config: Config, state: CoreState, start: Start = Start()) -> None:
        """`start`: how the first child was started (with a terminal, its group is the
        terminal's foreground group: job control)."""
        self.config = config
        self.state = state
        self._start = start
        self._policy = SignalPolicy(config.rewrites, config.term_delay, config.stop_timeout,
                                    config.signal_target, start.take_terminal)
        self._restart_policy = RestartPolicy(config.restart, config.restart_max, config.remap_exit)
        self._restart: PendingRestart | None = None
        self._stops_delivered: set[int] = set()
        """Stop signals pidone delivered to this child (see RestartPolicy.failed)."""
        self._has_children = True
        self._job_control = os.getpid() != 1
        """Not PID 1: a shell may have started us as a job, and sees it stop only if we do."""
        self._wait_options = os.WNOHANG | (os.WUNTRACED if self._job_control else 0)
        self._stopped = False
        """We stopped ourselves and have not forwarded a SIGCONT since: a stop of the child
        reported now is the one we stopped for, or one from before it."""
        self._core_thread = get_ident()
        self._requests: deque[Request] = deque()
        self._watches: list[Watch] = []
        self._next_watch = 0.0
        self._signals = SignalTaker(Alarm(self._wake))
        self._bugs_seen: set[tuple[str, str, int]] = set()

    # -- the narrow interface for the HTTP side -------------------------------------------

    def snapshot(self) -> Snapshot:
        return self.state.snapshot()

    def send(self, signo: int, target: str | None = None) -> Future[Delivery]:
        """Ask the core thread to deliver `signo` now, as the API's caller named it, to `target`
        (one of TARGETS; None: where the same signal from the OS would go). The answer is a
        Delivery, or ChildNotRunning / SignalRefused. Any thread may ask."""
        from concurrent.futures import Future

        answer: Future[Delivery] = Future()
        if not self.state.child.running:
            answer.set_exception(self._not_running())
            return answer
        self._requests.append(Request(signo, answer, target=target))
        self._wake()
        return answer

    def restart(self, signo: int, timeout: float | None) -> Future[Restarted]:
        """Ask the core thread to stop the child with `signo` (SIGKILL after `timeout` seconds;
        None: --stop-timeout, else DEFAULT_RESTART_TIMEOUT) and start the command again. The
        answer, once the new child runs, is Restarted; or RestartRefused, SignalRefused, or
        ExecError when the command could not be executed again. Any thread may ask."""
        from concurrent.futures import Future

        answer: Future[Restarted] = Future()
        self._requests.append(Request(signo, answer, restart=True, timeout=timeout))
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
        """Wait, reap and forward until the child has exited and no restart follows.

        An unexpected exception in a turn is pidone's bug: it is logged, and the loop goes on.
        Only when every turn fails, FAILED_TURNS_LIMIT in a row, does it raise CoreBroken."""
        failed_in_a_row = 0
        while self.state.child.running or self._restarting():
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
        if self._restart is not None:
            self._advance_restart()
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
            self._log_child_exit(state.exits[-1])
        if child_stopped_by in JOB_CONTROL and not self._stopped:
            self._stop_as_a_job(f"child {child_pid} stopped by {signal_name(child_stopped_by)}")
        if names is not None:
            for pid in reaped_orphans:
                log.warning("reaped zombie process %d%s", pid,
                            f" ({names[pid]})" if names.get(pid) else "")

    def on_signal(self, signo: int, learned_at: float) -> None:
        """One signal from the OS: count it; the policy says what to deliver now, if anything.
        A stop ends any restart; while no child runs, anything else is dropped."""
        state = self.state
        with state.lock:
            state.count_received(signo)
            decision = self._policy.received(signo, time.monotonic())
            self._note_stop_asked()
            if self._policy.stop_from_os and self._restarting():
                self._cancel_restart()
            no_child = not state.child.running
            dropped = no_child and decision.signo != 0 and not self._policy.stop_from_os
            if dropped:
                state.signals_dropped += 1
        if signo == signal.SIGCONT and self._job_control:
            self._stopped = False
            if not no_child:
                give_back_the_terminal(self.state.child.pid)
        if no_child:
            if dropped:
                log.info("%s received while no child runs: dropped", signal_name(signo))
            elif self._policy.stop_from_os:
                log.info("%s received while no child runs: pidone leaves", signal_name(signo))
            return
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
        """Do what the HTTP side asked for, in order, and answer each request."""
        while self._requests:
            request = self._requests.popleft()
            answer = request.answer
            if not answer.set_running_or_notify_cancel():
                continue  # the caller gave up waiting (the core was stalled): not delivered
            try:
                if request.restart:
                    self._begin_restart(request.signo, request.timeout, answer)
                    continue
                if not self.state.child.running or self._restart is not None:
                    raise self._not_running()
                decision = self._policy.requested(request.signo, time.monotonic())
                answer.set_result(self._deliver(decision, "http", time.perf_counter(),
                                                request.target))
            except (ChildNotRunning, SignalRefused, RestartRefused) as refusal:
                answer.set_exception(refusal)
            except Exception as bug:
                self.report_bug("a request over HTTP", bug)
                answer.set_exception(bug)

    def _deliver(self, decision: Decision, source: str, learned_at: float,
                 target: str | None = None) -> Delivery:
        """The one way a signal reaches the child: signal `target` (None: where the policy's
        rule sends it) as decided; say who got it. A forward is counted under `source`."""
        state = self.state
        signo = decision.signo
        with state.lock:
            child = state.child
            if not child.running:
                raise self._not_running()
            self._note_stop_asked()
            try:
                reached, processes = self._signal_target(signo, target)
            except PermissionError:
                raise SignalRefused(f"the kernel refused {signal_name(signo)} to the child "
                                    f"(pid {child.pid}): permission denied") from None
            if decision.why != STOP_TIMEOUT:  # pidone's own SIGKILL forwards nothing
                state.record_forward(signo, source, reached, time.perf_counter() - learned_at)
            if signo in TERMINATING or decision.why == STOP_TIMEOUT:
                self._stops_delivered.add(signo)
        if decision.why == STOP_TIMEOUT:
            log.warning("child still running %.3gs after a stop signal: sending SIGKILL",
                        self.config.stop_timeout)
        elif log.enabled(DEBUG):
            log.debug("forwarded %s to %s %d (%s, %s)", signal_name(signo), reached, child.pid,
                      source, decision.why)
        return Delivery(signo, child.pid, reached, processes)

    def _note_stop_asked(self) -> None:
        """Caller holds the lock: once the policy has seen a stop asked, the child is not ready."""
        if self._policy.stop_asked and self.state.phase == Phase.RUNNING:
            self.state.phase = Phase.TERMINATING

    def _not_running(self) -> ChildNotRunning:
        """Any thread may ask: it reads the phase, not the core's own restart."""
        if self.state.phase == Phase.RESTARTING:
            return ChildNotRunning("no child runs: a restart is under way")
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
        if self._restart is not None:
            restart_deadline = self._restart.next_deadline(time.monotonic())
            if deadline is None or (restart_deadline is not None and restart_deadline < deadline):
                deadline = restart_deadline
        if not self._watches:
            return deadline  # the usual case without HTTP: None
        beat = time.monotonic() + HEARTBEAT_INTERVAL
        return beat if deadline is None else min(beat, deadline)

    def _on_deadlines(self) -> None:
        for decision in self._policy.due(time.monotonic()):
            self._forward(decision, time.perf_counter())

    def _signal_target(self, signo: int, target: str | None) -> tuple[str, int | None]:
        """Caller holds the lock and knows the child is unreaped (its PID cannot be recycled):
        signal `target`, None meaning the configured one for `signo` (the policy's rule:
        stops to the group, the rest to the child alone, unless -g or -c); return who got it,
        and for "all" how many processes. A stop is followed by SIGCONT to the same target, as
        systemd does: a stopped process would otherwise hold the stop pending until a SIGKILL."""
        pid = self.state.child.pid
        if target == "all":
            return "all", self._signal_all(signo)
        if target == GROUP or (target is None and self._policy.target(signo) == GROUP):
            try:
                _signal_group(pid, signo)
                return GROUP, None
            except ProcessLookupError:
                pass  # the child moved to another group of its own; it is still ours to signal
        _signal_process(pid, signo)
        return CHILD, None

    def _signal_all(self, signo: int) -> int | None:
        """Every process pidone sees but itself; how many. As PID 1 that is one kill(-1), which
        skips the caller; otherwise pidone's descendants one by one, each through a pidfd
        checked against the start time read from /proc, so that a PID recycled since then
        (by a process that is not ours) is never signalled."""
        from app.core import procfs  # only here: the usual core never reads /proc

        me = os.getpid()
        try:
            listed = [info for info in procfs.read_processes() if info.pid != me and info.state != "Z"]
        except procfs.ProcUnavailable as trouble:
            if me != 1:
                raise SignalRefused(f"pidone cannot find its descendants: {trouble}") from None
            listed = None  # kill(-1) needs no list; only the count is lost
        if me == 1:
            # Only as PID 1 does -1 mean "this namespace"; elsewhere it is every process on the host.
            try:
                _signal_process(-1, signo)
            except ProcessLookupError:
                return 0
            return None if listed is None else len(listed)
        return sum(_signal_same_process(info, signo) for info in procfs.descendants(me, listed))

    def _record_child_exit(self, wait_status: int) -> None:
        """Caller holds the lock. Nothing here may fail: the child's status must not be lost."""
        code, killed_by = exit_status(wait_status)
        old = self.state.child
        self._child_ended(ChildStatus(old.argv, old.pid, old.start_time, False, code, killed_by))

    def _child_ended(self, ended: ChildStatus, group_left: bool = True) -> None:
        """Caller holds the lock: record `ended` and decide, in the same breath (no snapshot
        sees a phase in between), whether the command starts again or pidone leaves.
        `group_left`: something of the child's process group may still run."""
        state = self.state
        state.child = ended
        now = time.time()
        restart = self._restart
        backoff = None
        if restart is not None and not restart.cancelled:
            reason = restart.reason
        elif self._policy.stop_from_os:
            reason = None
        else:
            backoff = self._restart_policy.after_exit(ended.exit_code, ended.exit_signal,
                                                      self._stops_delivered,
                                                      now - ended.start_time)
            reason = None if backoff is None else "exit"
            if backoff is not None:
                self._restart = restart = PendingRestart("exit", None, None,
                                                         time.monotonic() + backoff)
        if reason is None:
            state.phase = Phase.STOPPING
        else:
            state.phase = Phase.RESTARTING
            restart.previous = ended
            restart.group = ended.pid if group_left else None
        state.exits.append(ExitRecord(ended.pid, now, ended.exit_code, ended.exit_signal,
                                      "exit" if reason is None else "restart", reason, backoff))

    def _log_child_exit(self, ended: ExitRecord) -> None:
        how = (f"killed by {signal_name(ended.exit_signal)}" if ended.exit_signal is not None
               else f"exited with status {ended.exit_code}")
        if ended.reason == "api":  # a warning too: the workload's PID changes, say so by default
            log.warning("child %d %s: restarting it (POST /restart)", ended.pid, how)
        elif ended.reason == "exit":
            log.warning("child %d %s: restarting it in %.3gs (--restart %s, failure %d of %d in a row)",
                        ended.pid, how, ended.backoff_seconds, self.config.restart,
                        self._restart_policy.failures_in_a_row, self.config.restart_max)
        else:
            log.info("child %d %s", ended.pid, how)

    # -- restarts -------------------------------------------------------------------------

    def _restarting(self) -> bool:
        return self._restart is not None and not self._restart.cancelled

    def _begin_restart(self, signo: int, timeout: float | None, answer: Future[Restarted]) -> None:
        """POST /restart, taken by the core: deliver the stop signal to the configured target
        and arm the SIGKILL; the rest happens in `_advance_restart`."""
        state = self.state
        if self._policy.stop_from_os or not (state.child.running or self._restarting()):
            raise RestartRefused("pidone is stopping: a stop was asked, or the child has exited")
        if self._restart is not None:
            raise RestartRefused("another restart is under way")
        with state.lock:
            state.phase = Phase.RESTARTING
        restart = PendingRestart("api", answer,
                                 time.monotonic() + restart_stop_wait(self.config, timeout), 0.0)
        self._restart = restart
        log.info("restart asked over HTTP: sending %s to child %d", signal_name(signo),
                 state.child.pid)
        try:
            delivered = self._deliver(Decision(signo, RESTART_STOP), "http", time.perf_counter())
            restart.stop_target = delivered.target
        except SignalRefused:
            self._restart = None
            with state.lock:
                state.phase = Phase.RUNNING if not self._policy.stop_asked else Phase.TERMINATING
            raise

    def _cancel_restart(self) -> None:
        """Caller holds the lock. A stop from the OS: no new child; a restart asked over the API
        gets 409, and an exit's record says pidone left."""
        restart = self._restart
        restart.cancelled = True
        if restart.answer is not None:
            restart.answer.set_exception(RestartRefused("pidone is stopping: a stop came from the OS"))
        state = self.state
        if state.child.running:
            state.phase = Phase.TERMINATING
            return
        state.phase = Phase.STOPPING
        if state.exits and state.exits[-1].followed_by == "restart":
            state.exits[-1] = state.exits[-1]._replace(followed_by="exit")

    def _advance_restart(self) -> None:
        """One step of the restart under way, as far as its deadlines allow."""
        restart = self._restart
        now = time.monotonic()
        if restart.kill_at is not None and now >= restart.kill_at:
            restart.kill_at = None
            if self.state.child.running:
                log.warning("child still running after the restart's stop signal: sending SIGKILL")
                try:
                    self._deliver(Decision(signal.SIGKILL, RESTART_KILL), "http",
                                  time.perf_counter(), restart.stop_target)
                except (ChildNotRunning, SignalRefused) as refusal:
                    log.error("%s", refusal)  # exited meanwhile, or may not be killed
        if restart.cancelled or restart.previous is None:
            return
        if restart.group is not None and not self._group_cleared(restart, now):
            return
        if now >= restart.start_at:
            self._start_again(restart)

    def _group_cleared(self, restart: PendingRestart, now: float) -> bool:
        """The --grace rule for what is left of the old child's group, without blocking the
        loop: SIGTERM, then SIGKILL after --grace, then give up waiting after LAST_REAP_TIMEOUT.
        The group's number cannot be recycled while any member lives."""
        group = restart.group
        try:
            if restart.group_kill_at is None:
                _signal_group(group, signal.SIGTERM)
                restart.group_kill_at = now + self.config.grace
                return False
            os.killpg(group, 0)
            if restart.group_give_up_at is None and now >= restart.group_kill_at:
                log.warning("processes of child %d's group left after %.3gs grace: sending SIGKILL",
                            restart.previous.pid, self.config.grace)
                os.killpg(group, signal.SIGKILL)
                restart.group_give_up_at = now + LAST_REAP_TIMEOUT
                return False
        except ProcessLookupError:
            restart.group = None  # nobody left: the number is never used again
            return True
        except PermissionError:
            log.error("processes of child %d's group may not be signalled (permission denied): "
                      "starting the new child anyway", restart.previous.pid)
            restart.group = None
            return True
        if restart.group_give_up_at is not None and now >= restart.group_give_up_at:
            log.error("processes of child %d's group outlived SIGKILL: starting the new child anyway",
                      restart.previous.pid)
            restart.group = None
            return True
        return False

    def _start_again(self, restart: PendingRestart) -> None:
        """Start the command as the first time; answer the API once it runs."""
        state = self.state
        previous = restart.previous
        try:
            pid = spawn_child(self.config.command, take_terminal=self._start.take_terminal,
                              cwd=self._start.cwd)
        except ExecError as error:
            log.error("%s", error)
            self._restart = None
            if restart.answer is not None:
                restart.answer.set_exception(error)
            now = time.time()
            with state.lock:
                # What failed to exec was reaped with its group, or never forked.
                self._child_ended(ChildStatus(previous.argv, error.pid or previous.pid, now,
                                              False, error.status, None), group_left=False)
            self._log_child_exit(state.exits[-1])
            return
        self._has_children = True
        self._policy.new_child()
        self._stops_delivered = set()
        self._restart = None
        with state.lock:
            state.child = ChildStatus(previous.argv, pid, time.time(), True)
            state.phase = Phase.RUNNING
            state.restarts[restart.reason] += 1
        log.info("restarted child %d: %s", pid, " ".join(self.config.command))
        if restart.answer is not None:
            restart.answer.set_result(Restarted(previous, pid))

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
                    self._restart = None
                    self._restart_policy = RestartPolicy("never", 1, ())  # the loop cannot start one
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
        from app.core import procfs

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
        from app.core import procfs  # only a subreaper reads /proc here: PID 1 need not import it

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
    """os.kill, and SIGCONT after a stop (see Core._signal_target)."""
    os.kill(pid, signo)
    if signo in TERMINATING:
        os.kill(pid, signal.SIGCONT)


def _signal_group(pgid: int, signo: int) -> None:
    """os.killpg, and SIGCONT after a stop (see Core._signal_target)."""
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


def _signal_same_process(info: ProcessInfo, signo: int) -> bool:
    """Signal the process `info` describes, if it still is that process; True if it was."""
    from app.core import procfs

    try:
        pidfd = os.pidfd_open(info.pid)
    except ProcessLookupError:
        return False
    try:
        now = procfs.read_process(info.pid)
        if now is None or now.start_ticks != info.start_ticks:
            return False  # its PID was recycled since /proc was read; pidfd is a newcomer's
        signal.pidfd_send_signal(pidfd, signo)
        if signo in TERMINATING:
            signal.pidfd_send_signal(pidfd, signal.SIGCONT)
        return True
    except (ProcessLookupError, PermissionError):
        return False  # gone meanwhile, or not ours to signal (a set-user-ID program): not counted
    finally:
        os.close(pidfd)
