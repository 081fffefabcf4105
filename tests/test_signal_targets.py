"""POST /signal/{sig}?target=child|group|all reaches exactly the processes meant: the child, its
process group, or everything pidone sees (a daemon that double-forked away included)."""

from __future__ import annotations

import sys

import pytest

from conftest import ROOT, scrape

FAMILY = [sys.executable, str(ROOT / "tests" / "family.py"), "{ack}"]


def start_family(start_pidone, *options: str, namespace: bool = True):
    """pidone over tests/family.py; (running, {role: pid})."""
    running = start_pidone(FAMILY, *options, namespace=namespace)
    _, child, member, daemon = running.expect_report("ready").split()
    running.workload_pids += [int(member), int(daemon)]  # ended by PID without a namespace
    return running, {"child": int(child), "member": int(member), "daemon": int(daemon)}


def reports(running, count: int) -> set[str]:
    return {running.read_report() for _ in range(count)}


def post_signal(running, name: str, target: str | None = None) -> dict:
    answer = running.http.post(f"/signal/{name}", params={"target": target} if target else None)
    assert answer.status_code == 200, answer.text
    return answer.json()


@pytest.mark.parametrize("namespace, options", [(True, ()), (False, ("-s",))],
                         ids=["pid1", "subreaper"])
def test_all_reaches_a_daemon_that_left_the_childs_group(start_pidone, namespace, options):
    running, pids = start_family(start_pidone, *options, namespace=namespace)
    assert post_signal(running, "USR2", "group")["target"] == "group"
    assert reports(running, 2) == {"child SIGUSR2", "member SIGUSR2"}
    answer = post_signal(running, "USR1", "all")
    assert answer == {"signal": "SIGUSR1", "number": answer["number"], "pid": pids["child"],
                      "target": "all", "processes": 3}
    # Had the group's USR2 reached the daemon, its report would come before this one.
    assert reports(running, 3) == {"child SIGUSR1", "member SIGUSR1", "daemon SIGUSR1"}
    samples = scrape(running)
    assert samples[("pidone_signals_forwarded_total",
                    (("signal", "SIGUSR1"), ("source", "http"), ("target", "all")))] == 1


@pytest.mark.parametrize("options, target, answered, reached", [
    # HUP goes to the child alone by default, to the group with -g, alone with -c; ?target
    # overrides each.
    ((), None, "child", {"child SIGHUP"}),
    ((), "group", "group", {"child SIGHUP", "member SIGHUP"}),
    (("-g",), None, "group", {"child SIGHUP", "member SIGHUP"}),
    (("-g",), "child", "child", {"child SIGHUP"}),
    (("-c",), None, "child", {"child SIGHUP"}),
    (("-c",), "group", "group", {"child SIGHUP", "member SIGHUP"}),
    (("-c",), "all", "all", {"child SIGHUP", "member SIGHUP", "daemon SIGHUP"}),
])
def test_target_chooses_who_gets_it_whatever_the_rule_g_or_c(start_pidone, options, target, answered,
                                                      reached):
    running, _ = start_family(start_pidone, *options)
    assert post_signal(running, "HUP", target)["target"] == answered
    assert reports(running, len(reached)) == reached
    # Nothing else was on its way: a USR2 to everyone is the next thing each of them reports.
    post_signal(running, "USR2", "all")
    assert reports(running, 3) == {"child SIGUSR2", "member SIGUSR2", "daemon SIGUSR2"}


def test_an_unknown_target_is_400_and_nothing_is_sent(start_pidone):
    running, _ = start_family(start_pidone)
    for target in ("everyone", "ALL", "", "group,child"):
        answer = running.http.post("/signal/HUP", params={"target": target})
        assert answer.status_code == 400, (target, answer.text)
        assert "unknown target" in answer.json()["error"]
    post_signal(running, "USR2", "child")
    assert running.read_report() == "child SIGUSR2"
