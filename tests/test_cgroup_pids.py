"""pidone_pids_current / pidone_pids_limit from the cgroup pids controller, v2 and v1."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.cgroup import PidsUsage, read_pids_usage
from cgroups import in_cgroup
from conftest import scrape, workload

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

