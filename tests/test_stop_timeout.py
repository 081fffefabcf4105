"""A child that ignores SIGTERM: --stop-timeout SIGKILLs it; without it pidone waits, as tini does."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from conftest import init_command, workload
from observe import children_of

STOP_TIMEOUT = 0.5


def test_stop_timeout_kills_a_child_that_ignores_term(start_init, survived):
    running = start_init([*init_command("pidone"), "--stop-timeout", str(STOP_TIMEOUT),
                          *workload("ignore=TERM")])
    running.expect_report("ready")
    sent = time.monotonic()
    running.send(signal.SIGTERM)
    assert running.wait() == 128 + signal.SIGKILL
    killed_after = time.monotonic() - sent
    survived(stop_timeout=STOP_TIMEOUT, killed_after=f"{killed_after:.3f}")
    assert killed_after >= STOP_TIMEOUT
    assert "sending SIGKILL" in running.stderr


@pytest.mark.parametrize("peer", ["pidone", "tini", "dumb-init"])
def test_without_stop_timeout_the_init_waits(start_init, peer):
    running = start_init([*init_command(peer), *workload("ignore=TERM", "trap=WINCH")])
    running.expect_report("ready")
    running.send(signal.SIGTERM)
    # WINCH (28) after TERM (15): the kernel hands the lower number over first, so once the
    # child reports WINCH the init has forwarded the TERM too.
    running.send(signal.SIGWINCH)
    running.expect_report("SIGWINCH")
    with pytest.raises(subprocess.TimeoutExpired):
        running.proc.wait(timeout=1.0)
    (child,) = [info for info in children_of(running.init_pid) if info.state != "Z"]
    os.kill(child.pid, signal.SIGKILL)
    assert running.wait() == 128 + signal.SIGKILL
