"""A child for the tests: reports on a pipe what it received, makes orphans, exits on cue.

Arguments are KEY=VALUE words, acted on in order:
  ack=FD          write reports to this inherited file descriptor
  trap=all|SIG,.. report each of these signals as "SIGNAME" when it arrives
  ignore=SIG,..   ignore these signals
  orphans=N       leave N zombie orphans for the init to reap
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


def make_orphans(count: int) -> None:
    middle = os.fork()
    if middle == 0:
        for _ in range(count):
            if os.fork() == 0:
                os._exit(0)
        os._exit(0)  # without waiting: its children become the init's zombies
    os.waitpid(middle, 0)


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
    global ack_fd, exit_on, storm_size
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
        elif key == "exit-on":
            exit_on = parse_signals(value)[0]
            signal.signal(exit_on, on_signal)
        elif key == "orphans":
            make_orphans(int(value))
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
            sys.stdout.flush()
            os._exit(int(value))
        else:
            raise SystemExit(f"workload: unknown word {word!r}")
    report(f"ready {os.getpid()}")
    while True:
        signal.pause()


if __name__ == "__main__":
    main(sys.argv[1:])
