"""Exit status fidelity, exhaustively: every code 0..255 and every deadly signal, with and without -e.

test_exit_status.py holds the behaviour next to tini and dumb-init on a sample; this file runs the
whole table through pidone's main(), each case as PID 1 of its own PID namespace, forked by
tests/zygote.py so that hundreds of cases do not pay for hundreds of Python start-ups.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from conftest import ROOT

NOT_DEADLY = {signal.SIGCHLD, signal.SIGCONT, signal.SIGSTOP, signal.SIGTSTP, signal.SIGTTIN,
              signal.SIGTTOU, signal.SIGURG, signal.SIGWINCH}
"""Signals whose default action stops, continues or is ignored: they end no process."""
DEADLY = sorted(int(s) for s in signal.valid_signals() if s not in NOT_DEADLY)
ZYGOTES = 2
"""One per core."""


def run_table(cases: list[tuple[list[str], int]]) -> tuple[list[str], float]:
    """Run each (pidone arguments, expected status); the mismatches, and the seconds it took."""

    def run_share(share: list[tuple[list[str], int]]) -> list[str]:
        lines = "".join(json.dumps(["--http", "off", *args]) + "\n" for args, _ in share)
        zygote = subprocess.run([sys.executable, str(ROOT / "tests" / "zygote.py")], input=lines,
                                capture_output=True, text=True, timeout=300,
                                env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
        statuses = [int(word) for word in zygote.stdout.split()]
        assert len(statuses) == len(share), f"the zygote stopped early: {zygote.stderr}"
        return [f"{args}: {status}, expected {expected}"
                for (args, expected), status in zip(share, statuses) if status != expected]

    started = time.monotonic()
    with ThreadPoolExecutor(ZYGOTES) as pool:
        shares = pool.map(run_share, [cases[index::ZYGOTES] for index in range(ZYGOTES)])
        mismatches = [found for share in shares for found in share]
    return mismatches, time.monotonic() - started


@pytest.mark.parametrize("remap", [False, True], ids=["plain", "remapped"])
def test_every_exit_code(survived, remap):
    cases = [([*(["-e", str(code)] if remap else []), "sh", "-c", f"exit {code}"],
              0 if remap else code) for code in range(256)]
    mismatches, seconds = run_table(cases)
    survived(codes=len(cases), remap=remap, mismatches=len(mismatches), seconds=f"{seconds:.1f}")
    assert not mismatches


@pytest.mark.parametrize("remap", [False, True], ids=["plain", "remapped"])
def test_every_deadly_signal(survived, remap):
    # No core files: SIGQUIT, SIGSEGV and the like would dump one by default.
    cases = [([*(["-e", str(128 + signo)] if remap else []),
               "sh", "-c", f"ulimit -c 0; kill -{signo} $$"], 0 if remap else 128 + signo)
             for signo in DEADLY]
    mismatches, seconds = run_table(cases)
    survived(signals=len(cases), remap=remap, mismatches=len(mismatches), seconds=f"{seconds:.1f}")
    assert not mismatches
