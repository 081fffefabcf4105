"""`pidone signal` and `pidone restart` from inside the container: the local API found as
`pidone health` finds it, the token from pidone's own variables, one line of output, and a
documented exit status per failure (docs/SPEC.md, "Command line")."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import LINGERER, PIDONE, ROOT, free_loopback_port, wait_for_status, workload

TOKEN = "s3cret-token"


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    inherited = {key: value for key, value in os.environ.items()
                 if key not in ("PIDONE_HTTP", "PIDONE_TOKEN", "PIDONE_TOKEN_FILE")}
    return subprocess.run([*PIDONE, *args], env={**inherited, "PYTHONPATH": str(ROOT), **(env or {})},
                          capture_output=True, text=True, timeout=120)


def at(running) -> dict[str, str]:
    """The environment a `docker exec` into pidone's container would have."""
    return {"PIDONE_HTTP": running.url.removeprefix("http://")}


def one_line(result: subprocess.CompletedProcess) -> str:
    output = (result.stdout + result.stderr).strip().splitlines()
    assert len(output) == 1, output
    return output[0]


def test_signal_reaches_the_child_and_says_so(start_pidone):
    running = start_pidone(workload("trap=HUP"))
    child = int(running.expect_report("ready").split()[1])
    result = run("signal", "hup", env=at(running))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"pidone signal: sent SIGHUP to the child (pid {child})\n"
    assert running.read_report() == "SIGHUP"


def test_signal_with_a_target_and_a_url(start_pidone):
    running = start_pidone(workload("trap=USR1"))
    running.expect_report("ready")
    result = run("signal", "--target", "all", "USR1", "--url", running.url)
    assert result.returncode == 0, result.stderr
    assert one_line(result) == "pidone signal: sent SIGUSR1 to 1 process"
    assert running.read_report() == "SIGUSR1"


def test_restart_answers_once_the_new_child_runs(start_pidone):
    running = start_pidone(workload())
    old = int(running.expect_report("ready").split()[1])
    result = run("restart", "--timeout", "5", env=at(running))
    assert result.returncode == 0, result.stderr
    new = int(running.expect_report("ready").split()[1])
    assert one_line(result) == (f"pidone restart: restarted: child {old} ended (killed by SIGTERM), "
                                f"child {new} runs")


@pytest.mark.parametrize("args", [
    ("signal",), ("signal", "NOPE"), ("signal", "HUP", "USR1"), ("signal", "HUP", "--target", "nobody"),
    ("signal", "HUP", "--timeout", "3"), ("restart", "--timeout", "soon"), ("restart", "now"),
    ("restart", "--target", "all"), ("signal", "HUP", "--url", "ftp://x"),
])
def test_usage_errors_exit_2_before_asking(args):
    # Nothing listens there: a usage error must be found before pidone is asked.
    result = run(*args, env={"PIDONE_HTTP": f"127.0.0.1:{free_loopback_port()}"})
    assert result.returncode == 2, result
    assert one_line(result).startswith(f"pidone {args[0]}: ")


def test_nothing_listening_exits_3():
    result = run("restart", env={"PIDONE_HTTP": f"127.0.0.1:{free_loopback_port()}"})
    assert result.returncode == 3
    assert "cannot reach pidone" in one_line(result)


def test_the_token_comes_from_pidones_own_variables(start_pidone, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    running = start_pidone(workload("trap=USR2"), "--token-file", str(token_file))
    running.expect_report("ready")
    for env, status in [({}, 4), ({"PIDONE_TOKEN": "wrong"}, 4),
                        ({"PIDONE_TOKEN_FILE": str(token_file)}, 0), ({"PIDONE_TOKEN": TOKEN}, 0)]:
        result = run("signal", "USR2", env={**at(running), **env})
        assert result.returncode == status, (env, result.stderr)
        one_line(result)
    assert [running.read_report(), running.read_report()] == ["SIGUSR2", "SIGUSR2"]
    unreadable = run("signal", "USR2", env={**at(running), "PIDONE_TOKEN_FILE": str(tmp_path / "none")})
    assert unreadable.returncode == 2 and "cannot read token file" in one_line(unreadable)


@pytest.mark.parametrize("args", [("signal", "HUP"), ("restart",)])
def test_no_child_to_steer_exits_5(start_pidone, args):
    running = start_pidone(LINGERER, "--grace", "30")
    wait_for_status(running, "/health", 503)
    result = run(*args, env=at(running))
    assert result.returncode == 5
    assert one_line(result).startswith(f"pidone {args[0]}: pidone answered 409: ")
