"""A stop ends what it must: a shell entrypoint's pipeline and background jobs at once, stopped
processes by SIGTERM (pidone sends SIGCONT after it) rather than by SIGKILL; and what is left
after --grace is named."""

from __future__ import annotations

import os
import re
import signal
import time

import pytest

from app.core.procfs import ProcessInfo
from conftest import init_command
from observe import children_of, wait_until

# A typical entrypoint: a daemon in the background, then a pipeline in the foreground, and a
# trap that tidies up. sh runs a trap only once the foreground pipeline ends: the TERM must
# reach the pipeline too, or the script never ends.
SHELL_ENTRYPOINT = ["sh", "-c", "trap 'exit 0' TERM; sleep 600 & tail -f /dev/null | cat"]

# The child stops a background job, makes sure it is stopped (state T), and exits 3.
STOPPED_LEFTOVER = ["sh", "-c", "sleep 600 & kill -STOP $!; "
                    "until [ \"$(cut -d' ' -f3 /proc/$!/stat)\" = T ]; do :; done; exit 3"]


def leftovers_ignoring_term(count: int) -> list[str]:
    """A child that exits 3 at once, leaving `count` sleeps that ignore SIGTERM."""
    return ["sh", "-c", "trap '' TERM; " + "sleep 600 & " * count + "exit 3"]


def the_child(running, name: str) -> ProcessInfo:
    """pidone's one child, once it runs as `name` (after its exec)."""
    wait_until(lambda: [info.name for info in children_of(running.init_pid)] == [name], 10,
               f"the child runs {name}")
    return children_of(running.init_pid)[0]


def test_term_stops_a_shell_entrypoints_pipeline_and_background_job_at_once(start_init):
    running = start_init([*init_command("pidone"), "--grace", "30", *SHELL_ENTRYPOINT])
    shell = the_child(running, "sh")
    wait_until(lambda: sorted(info.name for info in children_of(shell.pid))
               == ["cat", "sleep", "tail"], 10, "the background job and the pipeline run")
    started = time.monotonic()
    running.send(signal.SIGTERM)
    assert running.wait() == 0  # the trap ran: the pipeline ended
    assert time.monotonic() - started < 10  # far below --grace: nothing waited it out
    assert "sending SIGKILL" not in running.stderr


def test_a_stopped_child_acts_on_a_forwarded_term(start_init):
    running = start_init([*init_command("pidone"), "--", "sleep", "600"])
    child = the_child(running, "sleep")
    os.kill(child.pid, signal.SIGSTOP)  # as `docker kill -s STOP` or a debugger would
    wait_until(lambda: children_of(running.init_pid)[0].state == "T", 10, "the child is stopped")
    running.send(signal.SIGTERM)
    assert running.wait() == 128 + signal.SIGTERM


def test_a_stopped_leftover_ends_by_term_within_grace(start_init):
    running = start_init([*init_command("pidone"), "--grace", "30", *STOPPED_LEFTOVER])
    assert running.wait() == 3  # within the wait's 20 s: by the TERM, not after a 30 s grace
    assert "sending SIGKILL" not in running.stderr


@pytest.mark.parametrize("count, more", [(2, ""), (7, " and 2 more")])
def test_the_sigkill_warning_names_what_is_left(start_init, count, more):
    running = start_init([*init_command("pidone"), "--grace", "0.3", *leftovers_ignoring_term(count)])
    assert running.wait() == 3
    named = ", ".join([r"\d+ \(sleep\)"] * min(count, 5))
    assert re.search(rf"processes left after 0\.3s grace: sending SIGKILL to {named}{more}\n",
                     running.stderr), running.stderr
