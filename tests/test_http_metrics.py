"""/metrics: every metric of SPEC.md, exact counts, both formats, gzip, and scrapes during a reaping storm."""

from __future__ import annotations

import asyncio
import platform
import signal
import time

import httpx
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from app import __version__
from conftest import LINGERER, forwarded, scrape, wait_for_status, workload

ALWAYS = [
    "pidone_build_info", "pidone_child_running", "pidone_child_pid", "pidone_child_start_time_seconds",
    "pidone_ready", "pidone_core_heartbeat_timestamp_seconds", "pidone_zombies_reaped_total",
    "pidone_signal_forward_seconds_count", "pidone_signal_forward_seconds_sum",
    "pidone_processes", "process_cpu_seconds_total", "process_resident_memory_bytes",
    "process_open_fds", "python_info",
]
STATES = ["running", "sleeping", "disk_sleep", "stopped", "zombie", "idle", "other"]


def names(samples: dict) -> set[str]:
    return {name for name, _ in samples}


def test_every_metric_is_there_with_the_childs_values(start_pidone):
    running = start_pidone(workload())
    child_pid = int(running.expect_report("ready").split()[1])
    samples = scrape(running)
    assert set(ALWAYS) <= names(samples)
    assert "pidone_child_exit_code" not in names(samples)  # set only once the child has exited
    assert samples[("pidone_build_info", (("python", platform.python_version()),
                                          ("version", __version__)))] == 1
    assert samples[("pidone_child_running", ())] == 1
    assert samples[("pidone_child_pid", ())] == child_pid
    assert samples[("pidone_ready", ())] == 1
    assert abs(samples[("pidone_child_start_time_seconds", ())] - time.time()) < 60
    assert time.time() - samples[("pidone_core_heartbeat_timestamp_seconds", ())] < 5
    by_state = {dict(labels)["state"]: value for (name, labels), value in samples.items()
                if name == "pidone_processes"}
    assert set(by_state) == set(STATES)
    assert by_state["sleeping"] >= 2  # pidone and the workload, at least
    dropped = {dict(labels)["reason"]: value for (name, labels), value in samples.items()
               if name == "pidone_http_connections_dropped_total"}
    assert dropped == {"head_too_slow": 0, "room_needed": 0, "stuck_sending": 0, "peer_share": 0}


def test_counters_are_exact_after_known_orphans_and_signals(start_pidone):
    running = start_pidone(workload("orphans=25", "trap=USR1,HUP"))
    running.expect_report("ready")
    for signo in (signal.SIGUSR1, signal.SIGUSR1, signal.SIGHUP):
        running.send(signo)
        running.read_report()
    deadline = time.monotonic() + 20
    while scrape(running)[("pidone_zombies_reaped_total", ())] < 25 and time.monotonic() < deadline:
        time.sleep(0.02)  # reaped as they exit, which the workload does not wait for
    samples = scrape(running)
    assert samples[("pidone_zombies_reaped_total", ())] == 25
    assert samples[("pidone_signals_received_total", (("signal", "SIGUSR1"),))] == 2
    assert samples[("pidone_signals_received_total", (("signal", "SIGHUP"),))] == 1
    assert forwarded(samples, "SIGUSR1", "os") == 2
    assert samples[("pidone_signal_forward_seconds_count", ())] == 3
    assert samples[("pidone_signal_forward_seconds_bucket", (("le", "+Inf"),))] == 3


def test_openmetrics_when_accept_asks_for_it(start_pidone):
    running = start_pidone(workload())
    answer = running.http.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.endswith("# EOF\n")
    families = {family.name for family in parse_openmetrics(answer.text)}
    assert {"pidone_zombies_reaped", "pidone_signal_forward_seconds", "pidone_processes"} <= families


def test_gzip_when_accept_encoding_allows_it(start_pidone):
    running = start_pidone(workload())
    answer = running.http.get("/metrics", headers={"Accept-Encoding": "gzip"})
    assert answer.headers["content-encoding"] == "gzip"
    assert b"pidone_child_running 1.0" in answer.content  # httpx decoded it
    raw = httpx.get(f"{running.url}/metrics", headers={"Accept-Encoding": "gzip"})
    assert raw.status_code == 200
    plain = running.http.get("/metrics", headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"


@pytest.mark.parametrize("accept", [
    "application/openmetrics-text; version=banana",
    "application/openmetrics-text; version=",
    "text/plain; version=x.y.z; escaping=nonsense",
    ";;;,,,",
    "*/*",
    "\x7f\x01",
])
def test_bad_accept_headers_still_get_a_scrape(start_pidone, accept):
    running = start_pidone(workload())
    answer = running.http.get("/metrics", headers={"Accept": accept})
    assert answer.status_code == 200
    assert "pidone_child_running" in answer.text


def test_child_exit_code_appears_once_the_child_exited(start_pidone):
    running = start_pidone(LINGERER, "--grace", "60")
    wait_for_status(running, "/health", 503)
    samples = scrape(running)
    assert samples[("pidone_child_exit_code", ())] == 3
    assert samples[("pidone_child_running", ())] == 0


ORPHANS = 5_000
SCRAPES = 200


async def scrape_at_once(url: str, count: int) -> list[int]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:
        answers = await asyncio.gather(*(client.get("/metrics") for _ in range(count)))
    return [answer.status_code for answer in answers]


def test_scrapes_during_an_orphan_storm_all_answer_and_every_orphan_is_reaped(start_pidone):
    running = start_pidone(workload(f"storm={ORPHANS}"))
    running.expect_report("ready")
    running.send(signal.SIGUSR1)
    statuses = asyncio.run(scrape_at_once(running.url, SCRAPES))
    assert statuses == [200] * SCRAPES
    assert running.read_report(timeout=120) == f"storm {ORPHANS}"
    deadline = time.monotonic() + 60
    while scrape(running)[("pidone_zombies_reaped_total", ())] < ORPHANS and time.monotonic() < deadline:
        time.sleep(0.05)
    samples = scrape(running)
    assert samples[("pidone_zombies_reaped_total", ())] == ORPHANS
    assert forwarded(samples, "SIGUSR1", "os") == 1
