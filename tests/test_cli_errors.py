"""Bad input gets one line on stderr and a documented status, never a traceback."""

from __future__ import annotations

import os
import subprocess

import pytest

from conftest import PIDONE, ROOT

ENV = {**os.environ, "PYTHONPATH": str(ROOT)}


def run_pidone(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*PIDONE, *args], capture_output=True, text=True, timeout=30,
                          env={**ENV, **(env or {})}, cwd=ROOT)


def assert_one_line_error(result: subprocess.CompletedProcess, status: int, *words: str) -> None:
    assert result.returncode == status, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("pidone: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0]


@pytest.mark.parametrize("args, words", [
    (["--no-such-flag", "true"], ["--no-such-flag"]),
    (["-x", "true"], ["-x"]),
    ([], ["no command"]),
    (["--"], ["no command"]),
    (["-r", "FOO:TERM", "true"], ["FOO"]),
    (["-r", "TERM", "true"], ["FROM:TO"]),
    (["-r", "TERM:", "true"], ["FROM:TO"]),
    (["-r", "KILL:TERM", "true"], ["SIGKILL"]),
    (["-p", "NOPE", "true"], ["NOPE"]),
    (["-e", "256", "true"], ["0 to 255"]),
    (["-e", "-1", "true"], ["0 to 255"]),
    (["-e", "abc", "true"], ["0 to 255"]),
    (["--grace", "-1", "true"], ["--grace"]),
    (["--grace", "soon", "true"], ["--grace"]),
    (["--stop-timeout", "nan", "true"], ["--stop-timeout"]),
    (["--term-delay", "-3", "true"], ["--term-delay"]),
    (["--log-format", "xml", "true"], ["xml"]),
    (["--http", "nowhere", "true"], ["--http"]),
    (["--http", "127.0.0.1:99999", "true"], ["port"]),
    (["--http", ".:8080", "true"], ["not a valid host name"]),
    (["--http", "a..b:8080", "true"], ["'a..b'"]),
    (["--http", f"{'a' * 64}.example:8080", "true"], ["longer than 63"]),
    (["--token-file", "/nonexistent/token", "true"], ["/nonexistent/token"]),
    (["-p"], ["-p"]),
    # Finding 5 of issue 11: numbers and signal names are plain ASCII, nothing stripped.
    (["-p", "١٥", "true"], ["-p", "ASCII"]),
    (["-p", "sıgusr2", "true"], ["-p", "ASCII"]),
    (["-p", " TERM", "true"], ["-p"]),
    (["-r", "TERM:ＱＵＩＴ", "true"], ["-r"]),
    (["-r", "15: 3", "true"], ["-r"]),
    (["-e", "٣", "true"], ["0 to 255"]),
    (["-e", " 3", "true"], ["0 to 255"]),
    (["--grace", "١", "true"], ["--grace"]),
    (["--grace", " 1", "true"], ["--grace"]),
    (["--grace", "1_0", "true"], ["--grace"]),
    (["--grace", "inf", "true"], ["--grace"]),
    (["--term-delay", "1e3", "true"], ["--term-delay"]),
    (["--http-mode", "999", "true"], ["--http-mode", "octal"]),
    (["--http-mode", "1777", "true"], ["--http-mode"]),
    (["--http-mode", "٦٠٠", "true"], ["--http-mode"]),
    (["--restart", "sometimes", "true"], ["--restart", "on-failure"]),
    (["--restart", "Always", "true"], ["--restart"]),
    (["--restart-max", "0", "true"], ["--restart-max", "1 or more"]),
    (["--restart-max", "-2", "true"], ["--restart-max"]),
    (["--restart-max", "٣", "true"], ["--restart-max"]),
])
def test_usage_errors_exit_2(args, words):
    assert_one_line_error(run_pidone(*args), 2, *words)


def test_a_usage_error_never_runs_the_child(tmp_path):
    trace = tmp_path / "ran"
    assert_one_line_error(run_pidone("--http", ".:8080", "touch", str(trace)), 2, "--http")
    assert not trace.exists()


@pytest.mark.parametrize("env, words", [
    ({"PIDONE_GRACE": "x"}, ["PIDONE_GRACE"]),
    ({"PIDONE_LOG_LEVEL": "loud"}, ["PIDONE_LOG_LEVEL"]),
    ({"PIDONE_LOG_FORMAT": "yaml"}, ["PIDONE_LOG_FORMAT"]),
    ({"PIDONE_HTTP": "garbage"}, ["PIDONE_HTTP"]),
    ({"PIDONE_TOKEN": "  "}, ["PIDONE_TOKEN"]),
    ({"PIDONE_GRACE": "١"}, ["PIDONE_GRACE"]),
    ({"PIDONE_STOP_TIMEOUT": "2 "}, ["PIDONE_STOP_TIMEOUT"]),
    ({"PIDONE_HTTP_MODE": "rw-------"}, ["PIDONE_HTTP_MODE"]),
    ({"PIDONE_RESTART": "yes"}, ["PIDONE_RESTART"]),
    ({"PIDONE_RESTART_MAX": "many"}, ["PIDONE_RESTART_MAX"]),
])
def test_bad_environment_exits_2(env, words):
    assert_one_line_error(run_pidone("true", env=env), 2, *words)


def test_flag_wins_over_environment():
    result = run_pidone("--grace", "1", "--http", "off", "true", env={"PIDONE_GRACE": "x"})
    # The bad variable is never read: the flag decided.
    assert result.returncode == 0, result.stderr


def test_empty_token_file_exits_2(tmp_path):
    token = tmp_path / "token"
    token.write_text("\n")
    assert_one_line_error(run_pidone("--token-file", str(token), "true"), 2, "empty")


@pytest.mark.parametrize("command, status, words", [
    (["no-such-command-anywhere"], 127, ["no-such-command-anywhere", "not found"]),
    (["/no/such/path"], 127, ["/no/such/path", "no such file"]),
    (["/etc"], 126, ["/etc", "directory"]),
    (["{not_executable}"], 126, ["not-executable", "Permission denied"]),
])
def test_exec_failures(tmp_path, command, status, words):
    not_executable = tmp_path / "not-executable"
    not_executable.write_text("#!/bin/sh\n")
    not_executable.chmod(0o644)
    command = [word.format(not_executable=not_executable) for word in command]
    result = run_pidone("--http", "off", *command)
    # The warning about not being PID 1 may come first; the exec error is the last line.
    assert result.returncode == status
    assert "Traceback" not in result.stderr
    last = result.stderr.splitlines()[-1]
    assert last.startswith("pidone: cannot run")
    for word in words:
        assert word in last


def test_exec_failure_as_pid1_is_one_line(start_init):
    from conftest import init_command

    running = start_init([*init_command("pidone"), "no-such-command-anywhere"])
    assert running.wait() == 127
    assert running.stderr.strip() == "pidone: cannot run 'no-such-command-anywhere': command not found"


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag):
    from app import __version__

    result = run_pidone(flag)
    assert result.returncode == 0
    assert result.stdout.strip() == f"pidone {__version__}"


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help(flag):
    result = run_pidone(flag)
    assert result.returncode == 0
    assert "usage: pidone" in result.stdout
    for option in ("--single-child", "--subreaper", "--rewrite", "--grace", "--http"):
        assert option in result.stdout


def test_json_log_lines(start_init):
    import json

    from conftest import init_command, workload

    running = start_init([*init_command("pidone"), "-v", "--log-format", "json",
                          *workload("exit=3")])
    running.expect_report("ready")
    assert running.wait() == 3
    lines = [json.loads(line) for line in running.stderr.splitlines()]
    assert lines and all({"time", "level", "message"} <= set(line) for line in lines)
    assert any("exited with status 3" in line["message"] for line in lines)


def test_quiet_by_default(start_init):
    from conftest import init_command, workload

    running = start_init([*init_command("pidone"), *workload("exit=0")])
    running.expect_report("ready")
    assert running.wait() == 0
    assert running.stderr == ""
