"""Signal storms: thousands of mixed signals to PID 1 while orphans churn; POSIX's promises hold.

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
import time

from conftest import RunningInit, init_command, sized, workload
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


def test_mixed_signal_storm_while_orphans_churn(start_init, survived):
    running = start_init([*init_command("pidone"), *workload(
        "makers=2", f"churn={CHURN}", *tally_words(), "await=USR1", "exit=0")])
    reports = [running.read_report(timeout=30)]
    while reports[-1] != "tallying":
        reports.append(running.read_report(timeout=30))
    pidone = running.init_pid

    rng = random.Random(7)
    sent = dict.fromkeys([*STANDARD, *REALTIME], 0)
    last_sent = dict.fromkeys(sent, 0.0)
    kinds = list(sent)
    started = time.monotonic()
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
    running.send(signal.SIGUSR1)
    assert running.wait(timeout=60) == 0
    survived(
        signals=SENDS,
        realtime_sent=sum(sent[s] for s in REALTIME),
        realtime_delivered=sum(tally[s][0] for s in REALTIME),
        standard_sent=sum(sent[s] for s in STANDARD),
        standard_delivered=sum(tally[s][0] for s in STANDARD),
        orphans=CHURN, lost=0, storm_seconds=f"{seconds:.2f}", churn_seconds=f"{churned:.2f}",
    )
