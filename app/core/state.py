"""What the core knows — counters, the child's status, the shutdown phase — as consistent snapshots."""

from __future__ import annotations

from _thread import allocate_lock
from collections import deque, namedtuple

FORWARD_BUCKETS: tuple[float, ...] = (
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
)
"""Seconds; a forward normally takes tens of microseconds, so the low end is fine-grained."""
EXITS_KEPT = 10
"""How many of the last exits /status lists."""
RESTART_REASONS = ("api", "exit")
"""POST /restart, or --restart after the child exited on its own."""


class Phase:
    """The shutdown phase, in the order pidone goes through them."""

    RUNNING = "running"          # child runs, nothing asked it to stop
    TERMINATING = "terminating"  # a TERM/INT/QUIT arrived; the child still runs (not ready)
    RESTARTING = "restarting"    # the child is being stopped, or has exited, and starts again
    STOPPING = "stopping"        # the child has exited; pidone is ending what is left
    EXITED = "exited"            # pidone is about to exit


# collections.namedtuple and a plain class rather than typing.NamedTuple or dataclasses: those
# would import typing (with re) or inspect (with dis, ast and tokenize) into every pidone, as
# app.config says too. The annotations are for readers.


class ChildStatus(namedtuple("ChildStatus", "argv pid start_time running exit_code exit_signal",
                             defaults=(None, None))):
    __slots__ = ()
    argv: tuple[str, ...]
    pid: int
    start_time: float
    running: bool
    exit_code: int | None
    """The status pidone exits with for it: the code, or 128+N for signal N."""
    exit_signal: int | None


class ExitRecord(namedtuple("ExitRecord", "pid time exit_code exit_signal followed_by reason "
                                         "backoff_seconds")):
    """One child's end, for /status: what it was, and what pidone did next."""

    __slots__ = ()
    pid: int
    time: float
    exit_code: int
    exit_signal: int | None
    followed_by: str
    """"restart" (started again, or to be after the back-off) or "exit" (pidone left)."""
    reason: str | None
    """Of the restart: one of RESTART_REASONS; None when pidone left."""
    backoff_seconds: float | None


class Histogram(namedtuple("Histogram", "bucket_counts total sum_seconds")):
    """Cumulative bucket counts in Prometheus' shape, upper bounds from FORWARD_BUCKETS."""

    __slots__ = ()
    bucket_counts: tuple[int, ...]
    total: int
    sum_seconds: float


class Snapshot(namedtuple("Snapshot", "child phase ready heartbeat zombies_reaped signals_received "
                          "signals_forwarded signals_dropped forward_latency is_pid1 is_subreaper "
                          "warnings exits restarts")):
    """One consistent view of the core, taken under its lock."""

    __slots__ = ()
    child: ChildStatus
    phase: str
    ready: bool
    heartbeat: float
    zombies_reaped: int
    signals_received: dict[int, int]
    signals_forwarded: dict[tuple[int, str, str], int]
    """(signal, source, target) -> count."""
    signals_dropped: int
    """Signals from the OS that came while no child ran."""
    forward_latency: Histogram
    is_pid1: bool
    is_subreaper: bool
    warnings: tuple[str, ...]
    exits: tuple[ExitRecord, ...]
    """The last EXITS_KEPT, oldest first."""
    restarts: dict[str, int]


class CoreState:
    """Mutable state, written by the core thread and by forwards from HTTP, under `lock`."""

    def __init__(self, child: ChildStatus, is_pid1: bool, is_subreaper: bool) -> None:
        self.child = child
        self.is_pid1 = is_pid1
        self.is_subreaper = is_subreaper
        self.lock = allocate_lock()  # threading.Lock; _thread spares the core the import of threading
        self.phase: str = Phase.RUNNING
        self.heartbeat = 0.0
        self.zombies_reaped = 0
        self.signals_received: dict[int, int] = {}
        self.signals_forwarded: dict[tuple[int, str, str], int] = {}
        self.signals_dropped = 0
        self.exits: deque[ExitRecord] = deque(maxlen=EXITS_KEPT)
        self.restarts = dict.fromkeys(RESTART_REASONS, 0)
        self.latency_counts = [0] * len(FORWARD_BUCKETS)
        self.latency_total = 0
        self.latency_sum = 0.0
        self.warnings: list[str] = []

    def count_received(self, signo: int) -> None:
        """Count one signal from the OS; the caller holds the lock."""
        self.signals_received[signo] = self.signals_received.get(signo, 0) + 1

    def record_forward(self, signo: int, source: str, target: str, seconds: float) -> None:
        """Count one delivered signal; the caller holds the lock."""
        key = (signo, source, target)
        self.signals_forwarded[key] = self.signals_forwarded.get(key, 0) + 1
        self.latency_total += 1
        self.latency_sum += seconds
        for index, bound in enumerate(FORWARD_BUCKETS):
            if seconds <= bound:
                self.latency_counts[index] += 1
                break

    def snapshot(self) -> Snapshot:
        with self.lock:
            cumulative, running_total = [], 0
            for count in self.latency_counts:
                running_total += count
                cumulative.append(running_total)
            return Snapshot(
                child=self.child,
                phase=self.phase,
                ready=self.child.running and self.phase == Phase.RUNNING,
                heartbeat=self.heartbeat,
                zombies_reaped=self.zombies_reaped,
                signals_received=dict(self.signals_received),
                signals_forwarded=dict(self.signals_forwarded),
                signals_dropped=self.signals_dropped,
                forward_latency=Histogram(tuple(cumulative), self.latency_total, self.latency_sum),
                is_pid1=self.is_pid1,
                is_subreaper=self.is_subreaper,
                warnings=tuple(self.warnings),
                exits=tuple(self.exits),
                restarts=dict(self.restarts),
            )
