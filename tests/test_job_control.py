"""SIGTSTP/TTIN/TTOU stop the child; when pidone is not PID 1 it stops with it, and SIGCONT
resumes both: Ctrl-Z, `fg` and `bg` in an interactive bash work as with dumb-init."""

from __future__ import annotations

import errno
import os
import pty
import select
import shlex
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.core.procfs import descendants, read_processes
from conftest import ROOT, init_command, workload


def process_state(pid: int) -> str:
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().rpartition(")")[2].split()[0]


def wait_for_state(pid: int, wanted: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while process_state(pid) != wanted:
        assert time.monotonic() < deadline, f"pid {pid} never reached state {wanted}"
        time.sleep(0.005)


@pytest.mark.parametrize("signo", [signal.SIGTSTP, signal.SIGTTIN, signal.SIGTTOU],
                         ids=lambda s: signal.Signals(s).name)
def test_stop_and_continue_when_not_pid1(start_init, signo):
    running = start_init([*init_command("pidone"), "-s", *workload("trap=USR1")], namespace=False)
    child_pid = int(running.expect_report("ready").split()[1])
    running.send(signo)
    wait_for_state(child_pid, "T")
    wait_for_state(running.init_pid, "T")  # pidone stopped itself, as dumb-init does
    running.send(signal.SIGCONT)
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"
    assert process_state(child_pid) != "T"


@pytest.mark.parametrize("options", [[], ["-w"]], ids=["", "naming-what-it-reaps"])
@pytest.mark.parametrize("stop, pidone_stops", [(signal.SIGTSTP, True), (signal.SIGSTOP, False)],
                         ids=["TSTP", "STOP"])
def test_pidone_stops_when_its_child_stops_for_job_control(start_init, options, stop,
                                                           pidone_stops):
    """The stop sent to the child alone, as Ctrl-Z sends it to the terminal's foreground group:
    pidone follows a job-control stop, not a SIGSTOP, which nothing would undo for it."""
    running = start_init([*init_command("pidone"), "-s", *options, *workload("trap=USR1")],
                         namespace=False)
    child_pid = int(running.expect_report("ready").split()[1])
    os.kill(child_pid, stop)
    wait_for_state(child_pid, "T")
    if pidone_stops:
        wait_for_state(running.init_pid, "T")
        running.send(signal.SIGCONT)  # fg or bg: pidone forwards it
    else:
        os.kill(child_pid, signal.SIGCONT)
    running.send(signal.SIGUSR1)  # forwarded only by a pidone that runs
    assert running.read_report() == "SIGUSR1"


def test_pid1_forwards_tstp_but_keeps_running(start_init):
    running = start_init([*init_command("pidone"), *workload("trap=TSTP,USR1")])
    running.expect_report("ready")
    running.send(signal.SIGTSTP)
    assert running.read_report() == "SIGTSTP"
    running.send(signal.SIGUSR1)
    assert running.read_report() == "SIGUSR1"


class InteractiveShell:
    """bash -i on a pty of its own (its session's controlling terminal), driven as a person
    types: lines, Ctrl-Z; `expect` waits for text on the screen."""

    PROMPT = "prompt$ "

    def __init__(self, cwd: str) -> None:
        env = {**os.environ, "PS1": self.PROMPT, "PYTHONPATH": str(ROOT), "TERM": "dumb"}
        self.pid, self.master = pty.fork()
        if self.pid == 0:  # pragma: no cover - the child execs
            os.chdir(cwd)
            os.execvpe("bash", ["bash", "--norc", "--noprofile", "--noediting", "-i"], env)
        self.screen = ""
        self._seen = 0
        self.expect(self.PROMPT)

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def expect(self, text: str, timeout: float = 20.0) -> str:
        """Wait until `text` shows after what the last expect saw; return the screen up to it."""
        deadline = time.monotonic() + timeout
        while (found := self.screen.find(text, self._seen)) < 0:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"{text!r} never showed; the screen:\n{self.screen}"
            readable, _, _ = select.select([self.master], [], [], remaining)
            if readable:
                self.screen += os.read(self.master, 4096).decode(errors="replace")
        shown, self._seen = self.screen[self._seen:found], found + len(text)
        return shown

    def run(self, line: str) -> str:
        """Type `line`; what it printed before the next prompt."""
        self.type(line + "\n")
        return self.expect(self.PROMPT)

    def close(self) -> None:
        """SIGKILL the shell and every process below it, by PID."""
        for pid in [info.pid for info in descendants(self.pid, read_processes())] + [self.pid]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.close(self.master)
        os.waitpid(self.pid, 0)


JOB_INITS = ["pidone", "dumb-init"]
READER = "sh -c 'echo \"st\"arted; read line; echo \"fin\"ished $line'"
"""A child that needs the terminal after `fg`: it reads a line from it. (What it prints is
quoted apart on its command line, which the terminal echoes.)"""
WAITER = "sh -c 'echo \"st\"arted; read line < {fifo}; echo \"fin\"ished $line'"
"""A child that runs on in the background after `bg` until the test writes to {fifo} (no fork
on the way: a shell stopped in vfork would wait for its stopped child)."""


@pytest.fixture
def shell(tmp_path) -> Iterator[InteractiveShell]:
    started = InteractiveShell(str(tmp_path))
    yield started
    started.close()


def start_and_stop_a_job(shell: InteractiveShell, init: str, child: str) -> None:
    """Type `init child` and, once it runs, Ctrl-Z; return once the shell has its prompt back
    and every process of the job is stopped."""
    shell.type(f"{shlex.join(init_command(init))} {child}\n")
    shell.expect("started")
    shell.type("\x1a")  # Ctrl-Z: the terminal sends SIGTSTP to its foreground group
    shell.expect("Stopped")
    shell.expect(shell.PROMPT)  # the shell has its terminal back
    # dumb-init stops itself as soon as it has sent its child (in a session of its own) SIGSTOP
    for info in descendants(shell.pid, read_processes()):
        wait_for_state(info.pid, "T")


@pytest.mark.parametrize("init", JOB_INITS)
def test_ctrl_z_stops_the_job_and_fg_resumes_it_with_the_terminal(shell, init):
    start_and_stop_a_job(shell, init, READER)
    assert "Stopped" in shell.run("jobs")
    shell.type("fg\n")
    shell.type("hello\n")  # read by the child: the terminal is its again
    shell.expect("finished hello")
    shell.expect(shell.PROMPT)
    assert "status=0" in shell.run('echo "status=$?"')


@pytest.mark.parametrize("init", JOB_INITS)
def test_ctrl_z_then_bg_runs_the_job_on_in_the_background(shell, init, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    start_and_stop_a_job(shell, init, WAITER.format(fifo=fifo))
    assert "&" in shell.run("bg")  # bash echoes the job it resumed: "[1]+ COMMAND &"
    assert "Running" in shell.run("jobs")
    write_when_read(fifo, b"go\n")
    shell.expect("finished go")
    assert "status=0" in shell.run('wait %1; echo "status=$?"')


def write_when_read(fifo: Path, data: bytes, timeout: float = 20.0) -> None:
    """Write `data` to `fifo` once a reader has it open (ENXIO until then)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            break
        except OSError as error:
            if error.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
