"""Scrapes: what the HTTP side weighs after many scrapes, and what one scrape costs with many
processes in the namespace (issue 25)."""

from __future__ import annotations

import http.client
import math
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager

from bench import wrk
from bench.context import Bench
from bench.inits import Init
from bench.namespace import BenchError, Namespace, Reports, cpu_seconds, rss_bytes, start_sleeping
from bench.results import CaseResult, Measurement, Verdict, at_most

RSS_LIMIT_MIB = 20.0
"""RSS with HTTP after the first reading's scrapes."""
GROWTH_LIMIT_MIB = 1.0
"""'Flat': what the RSS may grow from the first reading to the last."""
WALL_LIMIT_S = 1.0
"""A scrape's wall time at the largest census size."""
LOAD_CONNECTIONS = 16
"""wrk's connections for the scrapes past the first reading (wrk -t1: one thread)."""


def http_inits(bench: Bench) -> list[Init]:
    return [init for init in bench.inits if init.http_port is not None]


def scrape(connection: http.client.HTTPConnection) -> None:
    connection.request("GET", "/metrics")
    response = connection.getresponse()
    response.read()
    if response.status != 200:
        raise BenchError(f"/metrics answered {response.status}")


@contextmanager
def connected(init: Init) -> Iterator[http.client.HTTPConnection]:
    connection = http.client.HTTPConnection("127.0.0.1", init.http_port, timeout=10)
    try:
        yield connection
    finally:
        connection.close()


def scrape_until(init: Init, done: int, total: int) -> int:
    """Scrape `init` with wrk until `total` scrapes are done in all, `done` of them already.
    Returns the count."""
    seconds = 2
    while done < total:
        result = wrk.measure(init.metrics_url(), LOAD_CONNECTIONS, seconds)
        if result.errors:
            raise BenchError(f"{init.name}: {result.errors} /metrics errors under load")
        done += result.requests
        # The next run sized to what is left at this run's rate, in whole seconds (wrk's -d).
        seconds = max(1, min(60, math.ceil((total - done) / max(result.requests_per_second, 1.0))))
    return done


def run_memory(bench: Bench) -> CaseResult:
    first, total = bench.sizes.scrapes
    early = Measurement(f"RSS after {first:,} scrapes", "MiB", targets=(RSS_LIMIT_MIB,))
    late = Measurement(f"RSS after {total:,} scrapes", "MiB")
    growth = Measurement(f"growth from {first:,} to {total:,} scrapes", "MiB", chart=False)
    for _ in range(bench.sizes.long_rounds):
        for init in http_inits(bench):
            with start_sleeping(init) as namespace:
                with connected(init) as connection:
                    for _ in range(first):
                        scrape(connection)
                before = rss_bytes(namespace.init_pid) / 2**20
                scrape_until(init, first, total)
                after = rss_bytes(namespace.init_pid) / 2**20
            early.add(init.name, before)
            late.add(init.name, after)
            growth.add(init.name, after - before)
    verdicts: list[Verdict] = []
    for init in http_inits(bench):
        verdicts.append(at_most(f"{init.name}: RSS ≤ {RSS_LIMIT_MIB:g} MiB after {first:,} scrapes",
                                early, init.name, RSS_LIMIT_MIB))
        verdicts.append(at_most(f"{init.name}: RSS flat (≤ +{GROWTH_LIMIT_MIB:g} MiB) from "
                                f"{first:,} to {total:,} scrapes", growth, init.name,
                                GROWTH_LIMIT_MIB))
    return CaseResult(
        "Memory after scrapes",
        f"VmRSS of PID 1 (its child `sleep infinity`) after {first:,} scrapes of /metrics one "
        f"at a time on one connection, then after {total:,} in all (the rest from `wrk -t1 "
        f"-c{LOAD_CONNECTIONS}`, whose concurrent scrapes share collections).",
        [early, late, growth], verdicts)


@contextmanager
def start_census(init: Init, bench: Bench, processes: int) -> Iterator[Namespace]:
    """`init` whose child has made `processes` zombies of its own (never waited for: they stay
    in the namespace's /proc, as many processes for pidone's census to count)."""
    reports = Reports()
    argv = [*init.argv, str(bench.probe), "zombies", str(reports.write_fd), str(processes)]
    try:
        with Namespace(argv, pass_fds=(reports.write_fd,)) as namespace:
            reports.value("ready", timeout=120)
            namespace.wait_http(init.metrics_url())
            namespace.settle()
            yield namespace
    finally:
        reports.close()


def run_cost(bench: Bench) -> CaseResult:
    walls = {n: Measurement(f"wall time of a scrape, {n:,} processes (p50)", "ms")
             for n in bench.sizes.census}
    worst = {n: Measurement(f"wall time of a scrape, {n:,} processes (max)", "ms", chart=False)
             for n in bench.sizes.census}
    cpus = {n: Measurement(f"CPU per scrape, {n:,} processes", "ms", chart=False)
            for n in bench.sizes.census}
    for _ in range(bench.sizes.long_rounds):
        for init in http_inits(bench):
            for processes in bench.sizes.census:
                with start_census(init, bench, processes) as namespace:
                    with connected(init) as connection:
                        scrape(connection)  # the first starts the census (app/core/procfs.py)
                        cpu, times = cpu_seconds(namespace.init_pid), []
                        until = time.monotonic() + bench.sizes.wrk_seconds
                        while time.monotonic() < until:
                            started = time.monotonic()
                            scrape(connection)
                            times.append(time.monotonic() - started)
                        cpu = cpu_seconds(namespace.init_pid) - cpu
                walls[processes].add(init.name, statistics.median(times) * 1e3)
                worst[processes].add(init.name, max(times) * 1e3)
                cpus[processes].add(init.name, cpu / len(times) * 1e3)
    largest = max(bench.sizes.census)
    verdicts = [at_most(f"{init.name}: a scrape ≤ {WALL_LIMIT_S:g} s wall at {largest:,} processes",
                        worst[largest], init.name, WALL_LIMIT_S * 1e3)
                for init in http_inits(bench)]
    return CaseResult(
        "A scrape's cost",
        f"Scrapes of /metrics one after the other on one connection for "
        f"{bench.sizes.wrk_seconds:g} s, after a first one, while the init's child holds as many zombies of its own (the probe, in C; "
        "they stay in the namespace's /proc); CPU of every thread of PID 1 over those "
        "seconds divided by the scrapes' count (the /proc census that runs beside them "
        "included).",
        [*walls.values(), *worst.values(), *cpus.values()], verdicts)
