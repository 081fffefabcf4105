"""Once the child runs, the init sits in "/" and holds no directory busy (a mount it sits in
could not be unmounted), as dumb-init does; the child keeps the directory it was started in."""

from __future__ import annotations

import os

import pytest

from conftest import init_command, workload
from observe import children_of, wait_until


@pytest.mark.parametrize("init", ["pidone", "dumb-init"])
def test_the_init_leaves_its_working_directory_and_the_child_keeps_it(start_init, tmp_path, init):
    running = start_init([*init_command(init), *workload()], cwd=tmp_path)
    running.expect_report("ready")
    init_pid = running.init_pid
    wait_until(lambda: os.readlink(f"/proc/{init_pid}/cwd") == "/", 10, f"{init} moves to /")
    (child,) = children_of(init_pid)
    assert os.readlink(f"/proc/{child.pid}/cwd") == str(tmp_path)
