"""wrk against a loopback URL: one timed measurement, or load in the background."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from bench.namespace import BenchError

REPORT_SCRIPT = Path(__file__).with_name("wrk_report.lua")
MAX_LOAD_SECONDS = 300
"""Background load stops by itself after this, whatever happens to the harness."""


@dataclass(frozen=True)
class WrkResult:
    requests: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    errors: int


def _argv(url: str, connections: int, seconds: float) -> list[str]:
    # One thread: the other core is the server's, and a Python server uses one at most.
    return ["wrk", "-t1", f"-c{connections}", f"-d{seconds:g}s", "--timeout", "5s", url]


def measure(url: str, connections: int, seconds: float) -> WrkResult:
    argv = [*_argv(url, connections, seconds), "-s", str(REPORT_SCRIPT)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 30)
    last = done.stdout.strip().splitlines()[-1:] or [""]
    if done.returncode != 0 or not last[0].startswith("{"):
        raise BenchError(f"wrk failed: {(done.stderr or done.stdout).strip()[-300:]}")
    report = json.loads(last[0])
    return WrkResult(report["requests"], report["requests"] / report["seconds"], report["p50_us"] / 1e3,
                     report["p99_us"] / 1e3, report["errors"])


class Load:
    """wrk hammering `url` until the block ends (bounded by MAX_LOAD_SECONDS)."""

    def __init__(self, url: str, connections: int) -> None:
        self.argv = _argv(url, connections, MAX_LOAD_SECONDS)
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Load:
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)
