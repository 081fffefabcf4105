"""/status and /processes: pidone's PID 1 situation, and who fails to reap which zombie."""

from __future__ import annotations

import os
import time

import pytest

from app.http import reports
from app.core.procfs import ProcessInfo
from app.core.state import ChildStatus, Histogram, Phase, Snapshot
from conftest import LINGERER, wait_for_status, workload

SECRET = "hunter2-do-not-show"


def test_status_as_pid1(start_pidone):
    running = start_pidone(workload(), "--grace", "7", env={"PIDONE_TOKEN": SECRET})
    child_pid = int(running.expect_report("ready").split()[1])
    body = running.http.get("/status", headers={"Authorization": f"Bearer {SECRET}"}).json()
    assert body["pid"] == 1 and body["pid1"] is True
    assert body["reaps_orphans"] is True and body["not_reaping_reason"] is None
    assert body["phase"] == Phase.RUNNING and body["ready"] is True
    assert body["child"]["pid"] == child_pid and body["child"]["running"] is True
    assert body["child"]["argv"][-1].startswith("ack=")
    assert body["config"]["grace_seconds"] == 7
    assert body["config"]["token_configured"] is True
    assert body["warnings"] == []
    assert SECRET not in running.http.get("/status", headers={"Authorization": f"Bearer {SECRET}"}).text


def test_status_when_neither_pid1_nor_subreaper_says_why_orphans_are_not_reaped(start_pidone):
    running = start_pidone(workload(), namespace=False)
    running.expect_report("ready")
    body = running.http.get("/status").json()
    assert body["pid1"] is False and body["subreaper"] is False
    assert body["reaps_orphans"] is False
    assert "neither PID 1 nor a child subreaper" in body["not_reaping_reason"]
    assert any("not PID 1" in warning for warning in body["warnings"])


def test_status_as_subreaper(start_pidone):
    running = start_pidone(workload(), "-s", namespace=False)
    running.expect_report("ready")
    body = running.http.get("/status").json()
    assert body["subreaper"] is True and body["reaps_orphans"] is True


def test_status_after_the_child_exited(start_pidone):
    running = start_pidone(LINGERER, "--grace", "60")
    wait_for_status(running, "/health", 503)
    body = running.http.get("/status").json()
    assert body["phase"] == Phase.STOPPING
    assert body["child"]["running"] is False
    assert body["child"]["exit_code"] == 3 and body["child"]["exit_signal"] is None


def test_processes_lists_the_namespace_and_names_the_parent_that_fails_to_reap(start_pidone):
    running = start_pidone(workload("zombie", f"note={SECRET}"), env={"PIDONE_SECRET": SECRET})
    zombie = int(running.expect_report("zombie").split()[1])
    child_pid = int(running.expect_report("ready").split()[1])
    answer = running.http.get("/processes")
    assert SECRET not in answer.text
    body = answer.json()
    assert body["scope"] == "namespace"
    by_pid = {entry["pid"]: entry for entry in body["processes"]}
    assert set(by_pid) >= {1, child_pid, zombie}
    assert by_pid[1]["name"] == "python" or by_pid[1]["name"].startswith("python")
    assert by_pid[child_pid]["ppid"] == 1 and by_pid[child_pid]["pgid"] == child_pid
    entry = by_pid[zombie]
    assert entry["state"] == "zombie" and entry["ppid"] == child_pid
    assert entry["reaping"]["by"] == "parent" and entry["reaping"]["will_reap"] is False
    assert entry["reaping"]["parent"]["pid"] == child_pid
    assert "pidone will reap it once that parent exits" in entry["reaping"]["reason"]
    assert all(entry["age_seconds"] >= 0 for entry in body["processes"])
    assert set(by_pid[child_pid]) == {"pid", "ppid", "pgid", "state", "name", "age_seconds"}


def test_processes_outside_a_namespace_are_pidones_descendants(start_pidone):
    running = start_pidone(workload(), "-s", namespace=False)
    child_pid = int(running.expect_report("ready").split()[1])
    body = running.http.get("/processes").json()
    assert body["scope"] == "descendants"
    assert [entry["pid"] for entry in body["processes"]] == [child_pid]


def snapshot(is_pid1: bool, is_subreaper: bool = False) -> Snapshot:
    return Snapshot(ChildStatus(("x",), 2, time.time(), True), Phase.RUNNING, True, time.time(), 0,
                    {}, {}, 0, Histogram((0,), 0, 0.0), is_pid1, is_subreaper, (), (), {})


@pytest.mark.parametrize("pid1, subreaper", [(True, False), (False, True), (False, False)])
def test_a_zombie_of_pidone_is_pidones_to_reap(pid1, subreaper):
    me = os.getpid()
    zombie = ProcessInfo(50, me, 50, "Z", "defunct", 0)
    verdict = reports._who_reaps(zombie, me, {}, snapshot(pid1, subreaper))
    assert verdict["by"] == "pidone" and verdict["will_reap"] is True


def test_a_zombie_of_a_living_parent_when_pidone_inherits_nothing():
    parent = ProcessInfo(40, 1, 40, "S", "lazy-parent", 0)
    zombie = ProcessInfo(41, 40, 40, "Z", "defunct", 0)
    verdict = reports._who_reaps(zombie, os.getpid(), {40: parent}, snapshot(False))
    assert verdict["by"] == "parent" and verdict["will_reap"] is False
    assert "'lazy-parent' (pid 40)" in verdict["reason"]
    assert "real init, not to pidone" in verdict["reason"]
