"""pidone without a /proc of its PID namespace, as a hardened runtime or a hand-made namespace
can leave it: none at all (an empty file system over /proc), or the host's (a PID namespace
made without --mount-proc, whose PIDs are not pidone's). The child runs and its status comes
back, as with tini; what needs /proc says it cannot, never a wrong zero."""

from __future__ import annotations

import signal

import pytest

from conftest import INSTALLED, PIDONE, scrape

WITHOUT_PROC = {
    "empty": ["unshare", "--mount", "--pid", "--fork", "--kill-child", "sh", "-c",
              'mount -t tmpfs none /proc && exec "$@"', "sh"],
    "the-hosts": ["unshare", "--pid", "--fork", "--kill-child"],
}


@pytest.mark.parametrize("proc", WITHOUT_PROC)
@pytest.mark.parametrize("init", [[*PIDONE, "--http", "off"], ["tini"]], ids=["pidone", "tini"])
def test_the_child_runs_and_its_status_comes_back(start_init, proc, init) -> None:
    running = start_init([*WITHOUT_PROC[proc], *init, "--", "sh", "-c", "exit 5"],
                         namespace=False)
    assert running.wait() == 5, running.stderr
    assert running.stderr == ""


@pytest.mark.parametrize("proc", WITHOUT_PROC)
def test_what_needs_proc_says_it_cannot(start_pidone, proc) -> None:
    running = start_pidone(["sleep", "600"], within=WITHOUT_PROC[proc], namespace=False)
    status = running.http.get("/status").json()
    assert status["pid1"] is True
    assert any("/proc" in warning for warning in status["warnings"]), status["warnings"]
    processes = running.http.get("/processes")
    assert processes.status_code == 503 and "/proc" in processes.json()["error"], processes.text
    names = {name for name, _ in scrape(running)}
    assert "pidone_processes" not in names  # absent, not a row of zeros
    assert "pidone_child_running" in names
    assert running.http.get("/health").status_code == 200

    assert running.http.post("/signal/TERM").status_code == 200
    assert running.wait() == 128 + signal.SIGTERM, running.stderr
    assert running.stderr == ""


@pytest.mark.parametrize("given", [{}, {"LC_CTYPE": "C.UTF-8"}], ids=["no-locale", "LC_CTYPE"])
def test_the_child_gets_the_locale_it_was_given(start_init, given) -> None:
    """In the C locale CPython sets LC_CTYPE=C.UTF-8 for itself; without /proc/self/environ to
    tell what pidone was given, its UTF-8 mode does."""
    clean = ["env", "-i", "PATH=/usr/bin:/bin", *(f"{k}={v}" for k, v in given.items())]
    check = ("printenv LC_CTYPE | grep -qx C.UTF-8" if given
             else "! printenv LC_CTYPE >/dev/null")
    running = start_init([*WITHOUT_PROC["empty"], *clean, *INSTALLED, "--http", "off", "--",
                          "sh", "-c", f"{check} && exit 5"], namespace=False)
    assert running.wait() == 5, running.stderr


def test_a_signal_pidones_parent_ignored_is_at_its_default_in_the_child(start_init) -> None:
    """Without /proc/self/status, the dispositions CPython found at its start tell."""
    ignoring = ["sh", "-c", 'trap "" USR1; exec "$@"', "sh"]
    running = start_init([*WITHOUT_PROC["empty"], *ignoring, *INSTALLED, "--http", "off", "--",
                          "sh", "-c", "kill -USR1 $$; exit 5"], namespace=False)
    assert running.wait() == 128 + signal.SIGUSR1, running.stderr
