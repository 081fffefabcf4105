"""pidone_pids_current / pidone_pids_limit from the cgroup pids controller, v2 and v1."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from app.cgroup import PidsUsage, read_pids_usage
from cgroups import in_cgroup
from conftest import init_command, scrape, workload

def layout(root: Path, self_cgroup: str, files: dict[str, str]) -> tuple[str, str]:
    for relative, text in files.items():
        path = root / "sys" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (root / "self_cgroup").write_text(self_cgroup)
    return str(root / "sys"), str(root / "self_cgroup")


@pytest.mark.parametrize("self_cgroup, files, usage", [
    # cgroup v2, our own path under the mount
    ("0::/kubepods/pod1/c1\n", {"kubepods/pod1/c1/pids.current": "7\n", "kubepods/pod1/c1/pids.max": "100\n"},
     PidsUsage(7, 100)),
    # v2 with a cgroup namespace: we are the root of what is mounted
    ("0::/\n", {"pids.current": "3\n", "pids.max": "max\n"}, PidsUsage(3, None)),
    # v2 without a cgroup namespace: a host path, but the runtime mounted our cgroup at the root
    ("0::/system.slice/docker-abc.scope\n", {"pids.current": "5\n", "pids.max": "50\n"}, PidsUsage(5, 50)),
    # v1 with a pids hierarchy
    ("12:pids:/docker/abc\n11:memory:/docker/abc\n0::/\n",
     {"pids/docker/abc/pids.current": "9\n", "pids/docker/abc/pids.max": "max\n"}, PidsUsage(9, None)),
    # v1, container view: the hierarchy's root is ours
    ("4:cpu,pids:/docker/abc\n", {"pids/pids.current": "2\n", "pids/pids.max": "1024\n"}, PidsUsage(2, 1024)),
    # hybrid: v2 mounted as unified/
    ("0::/user.slice\n", {"unified/user.slice/pids.current": "4\n", "unified/user.slice/pids.max": "max"},
     PidsUsage(4, None)),
    # no pids controller readable at all, or garbage
    ("5:memory:/x\n", {"memory/x/memory.max": "1\n"}, None),
    ("0::/x\n", {"x/pids.current": "lots\n", "x/pids.max": "max\n"}, None),
    ("garbage\n\n", {}, None),
])
def test_pids_usage_is_found_where_the_cgroup_is(tmp_path, self_cgroup, files, usage):
    assert read_pids_usage(*layout(tmp_path, self_cgroup, files)) == usage


def test_no_proc_self_cgroup_means_no_usage(tmp_path):
    assert read_pids_usage(str(tmp_path), str(tmp_path / "absent")) is None


def test_metrics_show_the_pids_controller_of_pidones_cgroup(start_pidone, pids_cgroup):
    cgroup = pids_cgroup(300) or pytest.skip("no cgroup pids controller to make a cgroup under")
    running = start_pidone(workload("trap=USR1"), within=in_cgroup(cgroup))
    running.expect_report("ready")
    samples = scrape(running)
    assert samples[("pidone_pids_limit", ())] == 300
    assert samples[("pidone_pids_current", ())] == int((cgroup / "pids.current").read_text())


def test_without_a_task_for_its_thread_the_http_side_gives_up_in_one_line(start_pidone, pids_cgroup):
    # pidone, the child and pidone's log writer (unshare stays outside): the HTTP thread is a fourth.
    running = start_pidone(workload("trap=USR1", "exit-on=USR2"), within=in_cgroup(pids_cgroup(3) or pytest.skip("no pids controller")),
                           wait=False)
    running.expect_report("ready")
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"
    running.send(signal.SIGUSR2)
    assert running.read_report() == "SIGUSR2"
    assert running.wait() == 0
    lines = [line for line in running.stderr.splitlines() if "HTTP" in line]
    assert lines == ["pidone[1]: error: HTTP server not started: can't start new thread; "
                     "the child runs on without it"], running.stderr


def test_without_a_task_for_its_log_writer_pidone_logs_in_place(start_init, pids_cgroup):
    # pidone and the child fill pids.max: the log writer thread cannot start.
    cgroup = pids_cgroup(2) or pytest.skip("no pids controller")
    running = start_init([*in_cgroup(cgroup), *init_command("pidone"), "-v",
                          *workload("trap=USR1", "exit-on=USR2")])
    running.expect_report("ready")
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"
    running.send(signal.SIGUSR2)
    assert running.read_report() == "SIGUSR2"
    assert running.wait() == 0
    assert "Traceback" not in running.stderr
    assert "log writer thread not started" in running.stderr
    assert "exiting with status 0" in running.stderr
