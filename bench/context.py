"""What every case gets: the sizes of this run, the inits, the compiled probe."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.inits import Init


@dataclass(frozen=True)
class Sizes:
    rounds: int
    long_rounds: int
    """Rounds of the long cases: the orphan storm and /metrics throughput."""
    startup_runs: int
    """hyperfine runs per init and round."""
    exec_runs: int
    leave_runs: int
    """Runs per init and round of the leaving case, each a fresh namespace."""
    signals: int
    orphans: int
    idle_seconds: float
    wrk_seconds: float
    connections: tuple[int, ...]
    load_connections: int
    """wrk's connections while signals are timed under HTTP load."""
    load_warm_up: float
    """Seconds of load before the first signal is timed, so wrk is at full speed."""
    term_offsets_ms: tuple[float, ...]
    """When, after the init's exec, the first-instants case sends a SIGTERM: one trial each."""
    scrapes: tuple[int, int]
    """Scrapes before the first memory reading (one at a time), and in all before the last."""
    census: tuple[int, ...]
    """Processes in the namespace while a scrape's cost is measured, one size per reading."""


FULL = Sizes(rounds=5, long_rounds=3, startup_runs=30, exec_runs=15, leave_runs=9, signals=2000, orphans=20000,
             idle_seconds=60.0, wrk_seconds=5.0, connections=(1, 16, 64), load_connections=16,
             load_warm_up=0.5, term_offsets_ms=tuple(float(ms) for ms in range(0, 41, 2)),
             scrapes=(1_000, 100_000), census=(1_000, 10_000, 30_000))
QUICK = Sizes(rounds=1, long_rounds=1, startup_runs=2, exec_runs=1, leave_runs=1, signals=20, orphans=200,
              idle_seconds=0.5, wrk_seconds=1.0, connections=(4,), load_connections=4,
              load_warm_up=0.1, term_offsets_ms=(0.0, 40.0), scrapes=(20, 200), census=(50,))


@dataclass(frozen=True)
class Bench:
    sizes: Sizes
    inits: tuple[Init, ...]
    """Every init to compare, peers first, then pidone's variants."""
    probe: Path
    python: str
    """The interpreter of every Python column (see bench/interpreter.py)."""

    def find(self, name: str) -> Init | None:
        return next((init for init in self.inits if init.name == name), None)

    def without_http(self) -> tuple[Init, ...]:
        return tuple(init for init in self.inits if init.http_port is None)
