"""The demo: the zombie factory misbehaves within its bounds, and `make demo` starts and stops cleanly."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from conftest import PIDONE, ROOT, free_loopback_port
from app.core.procfs import descendants, read_processes

FACTORY = [sys.executable, str(ROOT / "examples" / "zombie-factory.py")]
MAX_ZOMBIES = 4


def read_line_with(stream, text: str, timeout: float = 20.0) -> str:
    """Lines of `stream` until one holds `text`; fails the test when none comes in time.

    `stream` must be unbuffered (Popen's bufsize=0): a buffered reader would take in lines
    that select() then no longer sees waiting on the pipe.
    """
    deadline = time.monotonic() + timeout
    seen = []
    while (remaining := deadline - time.monotonic()) > 0:
        if not select.select([stream], [], [], remaining)[0]:
            break
        line = stream.readline().decode()
        if not line:
            break
        seen.append(line)
        if text in line:
            return line
    raise AssertionError(f"no line with {text!r} in {timeout}s; got {''.join(seen)!r}")


def test_factory_caps_its_zombies_and_answers_hup_and_term(start_init) -> None:
    running = start_init([*PIDONE, "--http", "off", "--", *FACTORY, "--interval", "0.02",
                          "--max-zombies", str(MAX_ZOMBIES), "--orphan-life", "0.3"],
                         stdout=subprocess.PIPE, bufsize=0)
    read_line_with(running.proc.stdout, f"{MAX_ZOMBIES} zombies: reaping them all")
    for _ in range(20):
        zombies = [p for p in descendants(running.init_pid, read_processes()) if p.state == "Z"]
        # The factory's own (orphans between exit and pidone's reaping are pidone's), plus the
        # middle child of its leak_orphan between that child's exit and the factory's waitpid.
        assert len([z for z in zombies if z.ppid != running.init_pid]) <= MAX_ZOMBIES + 1
    running.send(signal.SIGHUP)
    read_line_with(running.proc.stdout, "got SIGHUP")
    running.send(signal.SIGTERM)
    read_line_with(running.proc.stdout, "got SIGTERM")
    assert running.wait() == 0


@pytest.mark.parametrize("stop", ["DEMO_SECONDS", "SIGINT", "SIGTERM"])
def test_demo_answers_health_and_leaves_nothing_running(stop: str) -> None:
    mark = uuid.uuid4().hex
    port = free_loopback_port()
    seconds = "2" if stop == "DEMO_SECONDS" else "120"
    demo = subprocess.Popen([sys.executable, str(ROOT / "examples" / "demo.py"), "--port", str(port)],
                            env={**os.environ, "DEMO_SECONDS": seconds, "PIDONE_DEMO_TEST": mark},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, bufsize=0)
    try:
        output = [read_line_with(demo.stdout, "GET /health -> 200"),
                  read_line_with(demo.stdout, f"curl -s -X POST http://127.0.0.1:{port}/signal/HUP"),
                  read_line_with(demo.stdout, "Ctrl-C stops everything")]
        if stop != "DEMO_SECONDS":
            demo.send_signal(signal.Signals[stop])  # Ctrl-C is SIGINT to the demo alone
        rest = demo.communicate(timeout=60)[0].decode()
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
    assert demo.returncode == 0, "".join(output) + rest
    assert "zombie-factory: got SIGTERM" in rest
    assert processes_marked(mark) == [], "the demo left processes running"


def processes_marked(mark: str) -> list[int]:
    """Every process whose environment carries `mark`: the demo's whole tree, whoever adopted it."""
    needle = f"PIDONE_DEMO_TEST={mark}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if needle in (entry / "environ").read_bytes().split(b"\0"):
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def test_factory_asks_its_init_for_sighup_which_comes_back(start_init) -> None:
    running = start_init([*PIDONE, "--http", "off", "--", *FACTORY, "--hup-init-every", "0.1"],
                         stdout=subprocess.PIPE, bufsize=0)
    read_line_with(running.proc.stdout, "asking my parent (pid 1) for a SIGHUP")
    read_line_with(running.proc.stdout, "got SIGHUP")
    running.send(signal.SIGTERM)
    assert running.wait() == 0
