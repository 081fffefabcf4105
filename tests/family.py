"""A child with a family, for the signal-target tests: a member of its process group, and a
daemon that double-forked away from both (its own session, its parent gone).

    family.py FD    report on inherited file descriptor FD

Reports "ready CHILD MEMBER DAEMON" once all three run, then "ROLE SIGNAME" (ROLE: child,
member or daemon) for each SIGHUP, SIGUSR1 or SIGUSR2 one of them gets. SIGTERM ends each.
"""

from __future__ import annotations

import os
import signal
import sys

TRAPPED = (signal.SIGHUP, signal.SIGUSR1, signal.SIGUSR2)


def serve(role: str, ack: int) -> None:
    """Report each trapped signal, taken synchronously: none is merged into another's handler."""
    signal.pthread_sigmask(signal.SIG_BLOCK, TRAPPED)
    while True:
        signo = signal.sigwaitinfo(TRAPPED).si_signo
        os.write(ack, f"{role} {signal.Signals(signo).name}\n".encode())


def fork_member(ack: int) -> int:
    pid = os.fork()
    if pid == 0:
        serve("member", ack)
    return pid


def fork_daemon(ack: int) -> int:
    """Double fork and setsid, as a daemon does; return the daemon's PID."""
    read_end, write_end = os.pipe()
    first = os.fork()
    if first == 0:
        os.setsid()
        pid = os.fork()
        if pid == 0:
            os.close(read_end)
            os.close(write_end)
            serve("daemon", ack)
        os.write(write_end, f"{pid}\n".encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as reader:
        daemon = int(reader.readline())
    os.waitpid(first, 0)
    return daemon


def main(ack: int) -> None:
    signal.pthread_sigmask(signal.SIG_BLOCK, TRAPPED)  # until each process waits for them
    member = fork_member(ack)
    daemon = fork_daemon(ack)
    os.write(ack, f"ready {os.getpid()} {member} {daemon}\n".encode())
    serve("child", ack)


if __name__ == "__main__":
    main(int(sys.argv[1]))
