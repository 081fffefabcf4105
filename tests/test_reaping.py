"""Every process that ends up as pidone's child is reaped; none stays a zombie."""

from __future__ import annotations

import re
import signal

import pytest

from conftest import init_command, workload
from observe import children_of, wait_until, zombies_of


def reaped_count(stderr: str) -> int:
    match = re.search(r"reaped (\d+) orphaned processes", stderr)
    assert match, stderr
    return int(match.group(1))


@pytest.mark.parametrize("peer", ["pidone", "tini", "dumb-init"])
def test_ten_thousand_orphans_are_reaped(start_init, peer):
    running = start_init([*init_command(peer), *workload("orphans=10000", "trap=USR1")])
    running.expect_report("ready", timeout=120)
    init_pid = running.init_pid
    # The workload made its orphans before "ready"; the init drains them.
    wait_until(lambda: zombies_of(init_pid) == 0, 30, f"{peer} reaps every orphan")


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

    def sleepers_reaped() -> bool:
        # The sleeps end on their own; each is a zombie of PID 1 until reaped.
        return not any(info.name == "sleep" or info.state == "Z" for info in children_of(init_pid))

    wait_until(sleepers_reaped, 10, "every orphaned sleep is reaped")
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"


def test_warn_on_reap_logs_each_orphan(start_init):
    running = start_init([*init_command("pidone"), "-w", *workload("orphans=3", "exit=0")])
    running.expect_report("ready")
    assert running.wait() == 0
    # Each named, as it was before the reap: the orphans are shells.
    assert len(re.findall(r"reaped zombie process \d+ \(sh\)\n", running.stderr)) == 3
