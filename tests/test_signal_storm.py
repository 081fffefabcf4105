"""Signal storms: thousands of mixed signals to PID 1 while orphans churn and /metrics is scraped.

Standard signals may coalesce: what POSIX promises is at least one delivery after the last
send. Real-time signals queue: each one sent must arrive. The order in which they arrive is
fixed by the kernel (lowest number first, first-in first-out within one number), and a signal
forwarded with kill() carries no payload that would show the order within one number, so
exact counts are what the test can hold pidone to.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from app.core.signals import signal_name
from conftest import RunningInit, scrape, sized, workload
from observe import wait_until, zombies_of

STANDARD = [signal.SIGUSR1, signal.SIGUSR2, signal.SIGHUP, signal.SIGWINCH, signal.SIGALRM,
            signal.SIGURG, signal.SIGCONT, signal.SIGABRT, signal.SIGSEGV]
REALTIME = [signal.SIGRTMIN + n for n in (0, 1, 2, 5)]
SENDS = sized(5_000, 40_000)
CHURN = sized(2_000, 20_000)
"""Orphans made while the signals fly."""
BURST = 50
"""Signals sent back to back; a short pause after each burst spreads the storm over the churn."""


def tally_words() -> list[str]:
    names = [signal.Signals(s).name for s in STANDARD]
    names += [f"RTMIN+{s - signal.SIGRTMIN}" for s in REALTIME]
    return [f"tally={','.join(names)}"]


def read_tally(running: RunningInit, reports: list[str]) -> dict[int, tuple[int, float]]:
    """The workload's tally line as {signo: (count, last arrival)}; other lines go to reports."""
    while not (line := running.read_report(timeout=120)).startswith("tally "):
        reports.append(line)
    found = {}
    for signo, field in zip([*STANDARD, *REALTIME], line.split()[1:]):
        count, last = field.partition("=")[2].split("@")
        found[signo] = (int(count), float(last))
    return found


@contextmanager
def scraping(url: str) -> Iterator[dict[str, int]]:
    """Scrape /metrics back to back in a thread until the block ends; counts answers by status."""
    answers: dict[str, int] = {}
    done = threading.Event()

    def scrape_until_done() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not done.is_set():
                try:
                    status = str(client.get("/metrics").status_code)
                except httpx.HTTPError as failure:
                    status = type(failure).__name__
                answers[status] = answers.get(status, 0) + 1

    scraper = threading.Thread(target=scrape_until_done)
    scraper.start()
    try:
        yield answers
    finally:
        done.set()
        scraper.join(60)


def test_mixed_signal_storm_while_orphans_churn_and_metrics_are_scraped(start_pidone, survived):
    running = start_pidone(workload("makers=2", f"churn={CHURN}", *tally_words(), "await=USR1",
                                    "exit=0"))
    reports = [running.read_report(timeout=30)]
    while reports[-1] != "tallying":
        reports.append(running.read_report(timeout=30))
    pidone = running.init_pid

    rng = random.Random(7)
    sent = dict.fromkeys([*STANDARD, *REALTIME], 0)
    last_sent = dict.fromkeys(sent, 0.0)
    kinds = list(sent)
    started = time.monotonic()
    with scraping(running.url) as scrapes:
        for sent_so_far in range(SENDS):
            if sent_so_far % BURST == 0:
                time.sleep(0.005)
            signo = rng.choice(kinds)
            last_sent[signo] = time.monotonic()
            os.kill(pidone, signo)
            sent[signo] += 1
        os.kill(pidone, signal.SIGRTMAX)  # the cue: the kernel hands it over after all the others
        tally = read_tally(running, reports)
        seconds = time.monotonic() - started
    assert set(scrapes) == {"200"}, scrapes

    for signo in REALTIME:
        assert tally[signo][0] == sent[signo], f"{signal.Signals(signo).name}: {tally[signo][0]} of {sent[signo]}"
    for signo in STANDARD:
        count, last_arrival = tally[signo]
        assert 1 <= count <= sent[signo], f"{signal.Signals(signo).name}: {count} of {sent[signo]}"
        assert last_arrival >= last_sent[signo], f"{signal.Signals(signo).name}: none after the last send"

    while not any(line.startswith("churned") for line in reports):
        reports.append(running.read_report(timeout=300))
    churned = time.monotonic() - started
    wait_until(lambda: zombies_of(pidone) == 0, 60, "the churned orphans are reaped")
    metrics = scrape(running)
    reaped = int(metrics[("pidone_zombies_reaped_total", ())])
    assert reaped == CHURN + 1  # and the detached maker itself
    for signo in REALTIME:
        assert metrics[("pidone_signals_received_total", (("signal", signal_name(signo)),))] == sent[signo]
    running.send(signal.SIGUSR1)
    assert running.wait(timeout=60) == 0
    survived(
        signals=SENDS,
        realtime_sent=sum(sent[s] for s in REALTIME),
        realtime_delivered=sum(tally[s][0] for s in REALTIME),
        standard_sent=sum(sent[s] for s in STANDARD),
        standard_delivered=sum(tally[s][0] for s in STANDARD),
        scrapes=scrapes["200"], orphans=CHURN, reaped=reaped - 1, lost=CHURN + 1 - reaped,
        storm_seconds=f"{seconds:.2f}", churn_seconds=f"{churned:.2f}",
    )
