"""Every process that ends up as pidone's child is reaped; none stays a zombie."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest

from conftest import init_command, workload


def zombies_of(parent_pid: int) -> list[int]:
    """Zombies whose parent is `parent_pid`, in this (the host's) PID namespace."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            state, ppid = stat.rpartition(")")[2].split()[:2]
            if state == "Z" and int(ppid) == parent_pid:
                found.append(int(entry.name))
    return found


def reaped_count(stderr: str) -> int:
    match = re.search(r"reaped (\d+) orphaned processes", stderr)
    assert match, stderr
    return int(match.group(1))


@pytest.mark.parametrize("peer", ["pidone", "tini", "dumb-init"])
def test_ten_thousand_orphans_are_reaped(start_init, peer):
    running = start_init([*init_command(peer), *workload("orphans=10000", "trap=USR1")])
    running.expect_report("ready", timeout=120)
    init_pid = running.init_pid
    # The workload made its orphans before "ready"; wait for the init to drain them.
    deadline = time.monotonic() + 30
    while zombies_of(init_pid) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert zombies_of(init_pid) == []


def test_reaped_counter_is_exact(start_init):
    running = start_init([*init_command("pidone"), "-v", *workload("orphans=2500", "exit=0")])
    running.expect_report("ready", timeout=60)
    assert running.wait() == 0
    assert reaped_count(running.stderr) == 2500


def test_subreaper_reaps_orphans_without_a_namespace(start_init):
    running = start_init([*init_command("pidone"), "-s", "-v", *workload("orphans=300", "exit=0")],
                         namespace=False)
    running.expect_report("ready")
    assert running.wait() == 0
    assert reaped_count(running.stderr) == 300
    assert "not PID 1 and not a child subreaper" not in running.stderr


def test_subreaper_from_tini_environment(start_init):
    running = start_init([*init_command("pidone"), "-v", *workload("orphans=50", "exit=0")],
                         namespace=False, env={"TINI_SUBREAPER": ""})
    running.expect_report("ready")
    assert running.wait() == 0
    assert reaped_count(running.stderr) == 50


def test_neither_pid1_nor_subreaper_warns_once_and_works(start_init):
    running = start_init([*init_command("pidone"), *workload("exit=4")], namespace=False)
    running.expect_report("ready")
    assert running.wait() == 4
    assert running.stderr.count("not PID 1 and not a child subreaper") == 1


def test_orphans_keep_coming_while_the_child_runs(start_init):
    shell = "for i in 1 2 3 4 5; do (sleep 0.01 &); done; exec " + " ".join(workload("trap=USR1"))
    running = start_init([*init_command("pidone"), "sh", "-c", shell])
    running.expect_report("ready")
    init_pid = running.init_pid
    deadline = time.monotonic() + 10
    # The sleeps end on their own; each becomes a zombie of PID 1 until reaped.
    while time.monotonic() < deadline and (zombies_of(init_pid) or _sleepers_under(init_pid)):
        time.sleep(0.01)
    assert zombies_of(init_pid) == []
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"


def _sleepers_under(init_pid: int) -> bool:
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if "(sleep)" in stat and int(stat.rpartition(")")[2].split()[1]) == init_pid:
                return True
    return False


def test_warn_on_reap_logs_each_orphan(start_init):
    running = start_init([*init_command("pidone"), "-w", *workload("orphans=3", "exit=0")])
    running.expect_report("ready")
    assert running.wait() == 0
    assert running.stderr.count("reaped zombie process") == 3
