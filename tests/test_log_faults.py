"""pidone's own log never holds up the core: stderr closed, or a pipe nobody reads."""

from __future__ import annotations

import fcntl
import signal
import termios
import time

from conftest import RunningInit, init_command, sized, workload

REALTIME = [signal.SIGRTMIN + n for n in range(4)]


def storm(running: RunningInit, per_signal: int) -> dict[str, int]:
    """Send each real-time signal `per_signal` times, then the tally's cue; the child's counts."""
    running.expect_report("tallying")
    for _ in range(per_signal):
        for signo in REALTIME:
            running.send(signo)
    running.send(signal.SIGRTMAX)
    line = running.expect_report("tally", timeout=120)
    return {name: int(count.partition("@")[0])
            for name, _, count in (field.partition("=") for field in line.split()[1:])}


def tally_word() -> str:
    return "tally=" + ",".join(f"RTMIN+{signo - signal.SIGRTMIN}" for signo in REALTIME)


def test_stdout_and_stderr_closed(start_init, survived):
    running = start_init(["sh", "-c", 'exec 1>&- 2>&-; exec "$0" "$@"',
                          *init_command("pidone"), "-vv", *workload(tally_word(), "exit=7")])
    counts = storm(running, 250)
    assert set(counts.values()) == {250}
    running.expect_report("ready")
    started = time.monotonic()
    assert running.wait() == 7
    survived(stderr="closed", signals=250 * len(REALTIME), delivered=sum(counts.values()),
             exit_seconds=f"{time.monotonic() - started:.2f}")
