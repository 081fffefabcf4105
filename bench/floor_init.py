"""A baseline for the benchmarks, not an init to use: the least a Python PID 1 can do.

Block the signals, spawn the command in its own group, then only sigtimedwait -> killpg and
waitpid(-1, WNOHANG) until the command exits; no state, no logging, no HTTP. What pidone
costs beyond this is what its design costs; what this costs beyond tini is CPython's.
"""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    waited = signal.valid_signals() - {signal.SIGKILL, signal.SIGSTOP}
    signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    child = os.posix_spawnp(argv[0], argv, os.environ, setpgroup=0, setsigmask=(),
                            setsigdef=waited)
    while True:
        info = signal.sigtimedwait(waited, 1.0)
        if info is None:
            continue
        if info.si_signo != signal.SIGCHLD:
            os.killpg(child, info.si_signo)
            continue
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                break
            if pid == 0:
                break
            if pid == child:
                code = os.waitstatus_to_exitcode(status)
                return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
