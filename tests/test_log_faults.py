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


def test_stderr_a_pipe_nobody_reads(start_init, survived):
    # -vv logs a line per forwarded signal: more than the log queue and the pipe hold together,
    # so the writer thread blocks on the full pipe and the queue overflows.
    per_signal = sized(3_000, 6_000)
    running = start_init([*init_command("pidone"), "-vv", *workload(tally_word(), "exit=0")])
    counts = storm(running, per_signal)
    assert set(counts.values()) == {per_signal}
    stderr = running.proc.stderr.fileno()
    unread = fcntl.ioctl(stderr, termios.FIONREAD, b"\0\0\0\0")
    # Full: a line that does not fit in a page's rest takes a new page, so some bytes stay free.
    assert int.from_bytes(unread, "little") > fcntl.fcntl(stderr, fcntl.F_GETPIPE_SZ) - 4096
    running.expect_report("ready")
    started = time.monotonic()
    assert running.wait() == 0
    survived(stderr="full pipe", signals=per_signal * len(REALTIME), delivered=sum(counts.values()),
             exit_seconds=f"{time.monotonic() - started:.2f}")


def test_a_blocked_stderr_holds_a_bounded_queue_and_counts_what_it_drops(monkeypatch):
    """10,000 lines of a 15 KB path once waited in memory for a stderr nobody read (issue 22:
    RSS 31 -> 158 MB); now at most QUEUED_BYTES wait, the rest are counted, and the first line
    written again says how many were lost."""
    import threading

    from app import log as logging_module

    unblocked = threading.Event()
    written: list[str] = []

    def blocked_stderr(line: str) -> None:
        unblocked.wait(30)
        written.append(line)

    monkeypatch.setattr(logging_module, "_write_line", blocked_stderr)
    log = logging_module.Log()
    log.configure(0, "text")
    path = "/" + "a" * 15_000
    for _ in range(10_000):
        log.error("GET %s failed", path)
    writer = log._writer
    assert writer is not None and writer._queued <= logging_module.QUEUED_BYTES
    assert log.dropped_lines()["stderr_blocked"] >= 10_000 - logging_module.QUEUED_BYTES // 8_000
    unblocked.set()
    log.error("stderr is read again")
    log.flush(10)
    assert len(max(written, key=len)) <= logging_module.LINE_CHARACTERS + 100
    assert any("log lines dropped: stderr was not read" in line for line in written)
