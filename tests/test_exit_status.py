"""pidone exits with the child's status: the code, 128+N for signal N, 0 when remapped."""

from __future__ import annotations

import signal

import pytest

from conftest import init_command, workload

CODES = [0, 1, 2, 3, 42, 126, 127, 128, 129, 200, 255]
DEADLY = [signal.SIGTERM, signal.SIGKILL, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1,
          signal.SIGSEGV, signal.SIGABRT, signal.SIGRTMIN]


@pytest.fixture(params=["pidone", "tini", "dumb-init"])
def peer(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.mark.parametrize("code", CODES)
def test_exit_code_passes_through(start_init, peer, code):
    running = start_init([*init_command(peer), "sh", "-c", f"exit {code}"])
    assert running.wait() == code


@pytest.mark.parametrize("signo", DEADLY, ids=lambda s: signal.Signals(s).name)
def test_death_by_signal_is_128_plus_n(start_init, peer, signo):
    running = start_init([*init_command(peer), "sh", "-c", f"kill -{int(signo)} $$"])
    assert running.wait() == 128 + signo


@pytest.mark.parametrize("code", [0, 3, 143])
def test_remapped_code_exits_zero(start_init, code):
    running = start_init([*init_command("pidone"), "-e", str(code), "-e", "7",
                          "sh", "-c", f"exit {code}"])
    assert running.wait() == 0


def test_remap_leaves_other_codes(start_init):
    running = start_init([*init_command("pidone"), "-e", "7", "sh", "-c", "exit 8"])
    assert running.wait() == 8


def test_remap_applies_to_death_by_signal_as_tini_does(start_init):
    running = start_init([*init_command("pidone"), "-e", "143", "sh", "-c", "kill -TERM $$"])
    assert running.wait() == 0


def test_workload_exit_after_report(start_init):
    running = start_init([*init_command("pidone"), *workload("exit=5")])
    running.expect_report("ready")
    assert running.wait() == 5
