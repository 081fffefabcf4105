"""Fork storms: every orphan of many concurrent makers is reaped, and pidone's memory stays flat."""

from __future__ import annotations

import signal
import time

from conftest import scrape, sized, workload
from observe import rss_kb, wait_until, zombies_of

MAKERS = 8
WARM_UP = 2_000
"""Orphans reaped before the first RSS reading, so that one-off allocations are not counted."""
STORM = sized(20_000, 100_000)
RSS_GROWTH_LIMIT_KB = 1024
"""Per-reap growth of even 16 bytes would show as 1.6 MB over 100,000 reaps."""


def reaped(running) -> int:
    return int(scrape(running)[("pidone_zombies_reaped_total", ())])


def test_orphan_storm_is_reaped_and_memory_stays_flat(start_pidone, survived):
    running = start_pidone(workload(f"makers={MAKERS}", f"orphans={WARM_UP}", "await=USR1",
                                    f"orphans={STORM}", "await=USR1", "exit=0"))
    running.expect_report("awaiting", timeout=60)
    pidone = running.init_pid
    wait_until(lambda: zombies_of(pidone) == 0, 60, "the warm-up orphans are reaped")
    assert reaped(running) == WARM_UP
    rss_before = rss_kb(pidone)  # after a scrape, as the one below

    started = time.monotonic()
    running.send(signal.SIGUSR1)
    running.expect_report("awaiting", timeout=600)
    made = time.monotonic() - started
    wait_until(lambda: zombies_of(pidone) == 0, 60, f"{STORM} orphans are reaped")
    seconds = time.monotonic() - started
    counted = reaped(running) - WARM_UP
    rss_growth = rss_kb(pidone) - rss_before

    running.send(signal.SIGUSR1)
    assert running.wait() == 0
    survived(orphans=STORM, makers=MAKERS, reaped=counted, lost=STORM - counted,
             rss_growth_kb=rss_growth, seconds=f"{seconds:.1f}", orphans_per_second=int(STORM / made))
    assert counted == STORM
    assert rss_growth < RSS_GROWTH_LIMIT_KB
