"""A child for the tests: reports on a pipe what it received, makes orphans, exits on cue.

Arguments are KEY=VALUE words, acted on in order:
  ack=FD          write reports to this inherited file descriptor
  trap=all|SIG,.. report each of these signals as "SIGNAME" when it arrives
  ignore=SIG,..   ignore these signals
  block=SIG,..    block these signals: what arrives stays pending, for a test to read in
                  /proc/PID/status; report "blocked PID"
  note=TEXT       nothing: puts TEXT in the command line
  zombie          leave one child that exits and is never waited for; report "zombie PID"
  zombies=N       leave N such children (fewer if fork fails); report "zombies N"
  recycle         once this process is reaped, a newcomer takes its PID and process group
                  (via ns_last_pid; PID 1 of a namespace must be the init), reports
                  "newcomer PID PGID", counts the SIGUSR1s it gets, and reports "strays N"
                  when a line arrives on stdin
  orphans=N       leave N zombie orphans for the init to reap (from `makers` processes at once)
  makers=M        later orphans= and churn= words fork from M processes at once (default 1)
  churn=N         like orphans=, in a detached process that reports "churned N" when done and
                  then exits, itself an orphan: the init reaps N+1
  exhaust         fork sleeping orphans until fork fails; report "exhausted N"
  release         end the sleepers of every exhaust so far; report "released"
  await=SIG       report "awaiting SIGNAME", then wait for SIG
  tally=SIG,..    report "tallying", count these signals until SIGRTMAX comes, then report
                  "tally SIGNAME=COUNT@LAST ..." (LAST: CLOCK_MONOTONIC of the last one)
  storm=N         on each SIGUSR1, leave N zombie orphans, then report "storm N"
  state           report "state sigblk=HEX sigign=HEX pgid=N pid=N fg=N"
  exit=N          exit with status N (after the words before it)
  exit-on=SIG     exit 0 once SIG has been reported
  sleep=S         sleep S seconds
The workload reports "ready PID" after the words before `exit`, then waits for signals.
"""

from __future__ import annotations

import os
import signal
import sys
import time

ack_fd: int | None = None
exit_on: int | None = None
makers = 1
sleepers_hold: list[int] = []
"""Write ends of the pipes the sleepers of `exhaust` wait on: closing one ends them."""
storm_size = 0


def report(line: str) -> None:
    if ack_fd is not None:
        os.write(ack_fd, (line + "\n").encode())


def name_of(signo: int) -> str:
    if signal.SIGRTMIN <= signo <= signal.SIGRTMAX:
        return f"SIGRTMIN+{signo - signal.SIGRTMIN}"
    return signal.Signals(signo).name


def parse_signals(spec: str) -> list[int]:
    if spec == "all":
        return [s for s in signal.valid_signals()
                if s not in (signal.SIGKILL, signal.SIGSTOP, signal.SIGCHLD)]
    found = []
    for word in spec.split(","):
        word = word.upper()
        if word.startswith("RTMIN+"):
            found.append(signal.SIGRTMIN + int(word[6:]))
        elif word == "RTMAX":
            found.append(signal.SIGRTMAX)
        else:
            found.append(signal.Signals[word if word.startswith("SIG") else "SIG" + word])
    return found


def on_storm(_signo: int, _frame: object) -> None:
    make_orphans(storm_size)
    report(f"storm {storm_size}")


def on_signal(signo: int, _frame: object) -> None:
    report(name_of(signo))
    if signo == exit_on:
        os._exit(0)


def spawn_recycler() -> None:
    """Fork a watcher that waits for our reaping, then forks the newcomer into our PID."""
    old_pid = os.getpid()
    if os.fork() != 0:
        return
    os.setpgid(0, 0)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the init's leaving TERM is not a stray
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    while os.path.exists(f"/proc/{old_pid}"):
        time.sleep(0.001)
    with open("/proc/sys/kernel/ns_last_pid", "w") as last_pid:
        last_pid.write(str(old_pid - 1))
    if os.fork() == 0:
        become_newcomer()
    os._exit(0)


def become_newcomer() -> None:
    strays = 0

    def count(_signo: int, _frame: object) -> None:
        nonlocal strays
        strays += 1

    os.setpgid(0, 0)
    signal.signal(signal.SIGUSR1, count)
    report(f"newcomer {os.getpid()} {os.getpgrp()}")
    sys.stdin.buffer.readline()
    report(f"strays {strays}")
    os._exit(0)


def fork_quiet(job) -> int:
    """Fork a helper that runs job() and exits; it ignores every signal but TERM and KILL.

    Group signals meant for the workload reach its helpers too: ignored (and not blocked) they
    are dropped at once, instead of running our handlers or queueing against RLIMIT_SIGPENDING.
    """
    pid = os.fork()
    if pid == 0:
        code = 0
        try:
            for signo in parse_signals("all"):
                signal.signal(signo, signal.SIG_DFL if signo == signal.SIGTERM else signal.SIG_IGN)
            signal.pthread_sigmask(signal.SIG_SETMASK, ())
            job()
        except BaseException:
            code = 1
        os._exit(code)
    return pid


# Each orphan's parent exits at once, without waiting. (A parent that lives on, even sh, reaps
# some of its children itself.) In sh, as forking from Python is several times slower.
LEAVE_ORPHANS = """
n=$0
while [ "$n" -gt 0 ]; do
    ( (exit 0) & )
    n=$((n - 1))
done
"""


def leave_orphans(count: int) -> None:
    os.execvp("sh", ["sh", "-c", LEAVE_ORPHANS, str(count)])


def leave_zombies(count: int) -> int:
    """Children that exit at once and are never waited for: processes in /proc for as long as
    this one lives (a careless workload's thousands)."""
    for made in range(count):
        try:
            pid = os.fork()
        except OSError:
            return made
        if pid == 0:
            os._exit(0)
    return count


def make_orphans(count: int) -> None:
    shares = [count // makers + (index < count % makers) for index in range(makers)]
    for pid in [fork_quiet(lambda share=share: leave_orphans(share)) for share in shares]:
        os.waitpid(pid, 0)


def churn(count: int) -> None:
    def detached() -> None:
        make_orphans(count)
        report(f"churned {count}")

    os.waitpid(fork_quiet(lambda: fork_quiet(detached)), 0)


def exhaust() -> None:
    """Fork sleepers until the kernel refuses (EAGAIN: pids.max or ulimit -u); they outlive
    their parent, so they are the init's to reap once `release` ends them."""
    read_end, write_end = os.pipe()
    sleepers_hold.append(write_end)

    def fork_sleepers() -> None:
        os.close(write_end)
        made = 0
        while True:
            try:
                pid = os.fork()
            except BlockingIOError:
                break
            if pid == 0:
                os.read(read_end, 1)  # returns at EOF: when `release` closes the write end
                os._exit(0)
            made += 1
        report(f"exhausted {made}")

    pid = None
    while pid is None:
        try:
            pid = fork_quiet(fork_sleepers)
        except BlockingIOError:  # the last round's sleepers are not all reaped yet
            time.sleep(0.01)
    os.close(read_end)
    os.waitpid(pid, 0)


def release() -> None:
    while sleepers_hold:
        os.close(sleepers_hold.pop())
    report("released")


def await_signal(signo: int) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, {signo})
    report(f"awaiting {name_of(signo)}")
    signal.sigwait({signo})
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signo})


def tally(signals: list[int]) -> None:
    """Take the signals synchronously: a Python handler would run once for several arrivals."""
    cue = signal.SIGRTMAX
    counts = dict.fromkeys(signals, 0)
    last = dict.fromkeys(signals, 0.0)
    waited = {*signals, cue}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    report("tallying")
    while True:
        signo = signal.sigwaitinfo(waited).si_signo
        if signo == cue:
            break
        counts[signo] += 1
        last[signo] = time.monotonic()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, waited)
    report("tally " + " ".join(f"{name_of(s)}={counts[s]}@{last[s]:.6f}" for s in signals))


def proc_status_field(name: str) -> str:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(name + ":"):
                return line.split()[1]
    return ""


def foreground_group() -> int:
    try:
        return os.tcgetpgrp(0)
    except OSError:
        return -1


def main(words: list[str]) -> None:
    global ack_fd, exit_on, makers, storm_size
    for word in words:
        key, _, value = word.partition("=")
        if key == "ack":
            ack_fd = int(value)
        elif key == "trap":
            for signo in parse_signals(value):
                signal.signal(signo, on_signal)
        elif key == "ignore":
            for signo in parse_signals(value):
                signal.signal(signo, signal.SIG_IGN)
        elif key == "block":
            signal.pthread_sigmask(signal.SIG_BLOCK, parse_signals(value))
            report(f"blocked {os.getpid()}")
        elif key == "exit-on":
            exit_on = parse_signals(value)[0]
            signal.signal(exit_on, on_signal)
        elif key == "orphans":
            make_orphans(int(value))
        elif key == "note":
            pass
        elif key == "zombie":
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            report(f"zombie {pid}")
        elif key == "zombies":
            report(f"zombies {leave_zombies(int(value))}")
        elif key == "recycle":
            spawn_recycler()
        elif key == "makers":
            makers = int(value)
        elif key == "churn":
            churn(int(value))
        elif key == "exhaust":
            exhaust()
        elif key == "release":
            release()
        elif key == "await":
            await_signal(parse_signals(value)[0])
        elif key == "tally":
            tally(parse_signals(value))
        elif key == "storm":
            storm_size = int(value)
            signal.signal(signal.SIGUSR1, on_storm)
        elif key == "state":
            report(f"state sigblk={proc_status_field('SigBlk')} sigign={proc_status_field('SigIgn')}"
                   f" pgid={os.getpgrp()} pid={os.getpid()} fg={foreground_group()}")
        elif key == "sleep":
            time.sleep(float(value))
        elif key == "exit":
            report(f"ready {os.getpid()}")
            if sys.stdout is not None:  # None when started with stdout closed
                sys.stdout.flush()
            os._exit(int(value))
        else:
            raise SystemExit(f"workload: unknown word {word!r}")
    report(f"ready {os.getpid()}")
    while True:
        signal.pause()


if __name__ == "__main__":
    main(sys.argv[1:])
