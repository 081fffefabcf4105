"""-p SIG: when pidone's parent dies, pidone gets SIG and forwards it, as tini does."""

from __future__ import annotations

import shlex
import subprocess

from conftest import init_command, workload


def test_parent_death_signal_reaches_the_child(start_init):
    inner = shlex.join([*init_command("pidone"), "-s", "-p", "USR1", *workload("exit-on=USR1")])
    # The shell is pidone's parent; it exits when the test writes a line to it.
    running = start_init(["sh", "-c", f"{inner} & read line"], namespace=False,
                         stdin=subprocess.PIPE)
    running.expect_report("ready")
    running.proc.stdin.write(b"go\n")
    running.proc.stdin.close()
    assert running.read_report() == "SIGUSR1"
