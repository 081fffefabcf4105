#!/usr/bin/env python3
"""A badly behaved workload for the demo: makes zombies it never reaps and leaks orphans.

Every tick it forks a short-lived child and does not wait for it (a zombie that
its living parent fails to reap, as /processes shows), and forks a "daemon"
that double-forks and leaves its grandchild to the init (an orphan that
pidone must reap: pidone_zombies_reaped_total moves). SIGHUP and SIGTERM are
reported on stdout, so `curl -X POST .../signal/HUP` and `docker stop` show. With
--hup-init-every it also asks its init for a SIGHUP now and then (kill(getppid())),
which the init forwards back: the signal panels move with no one at the keyboard.

It is bounded, so that running it outside a container cannot exhaust the
host's PIDs: at most --max-zombies unreaped children (then it reaps the lot,
and the zombie gauge falls: a sawtooth), and every orphan exits by itself
within --orphan-life seconds.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import time

HANDLED = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


def main() -> int:
    options = parse_options(sys.argv[1:])
    # Taken synchronously, so that a signal is answered at once, not after the tick's sleep.
    signal.pthread_sigmask(signal.SIG_BLOCK, HANDLED)
    say(f"started as pid {os.getpid()}: one zombie and one orphan every {options.interval:g}s, "
        f"at most {options.max_zombies} zombies at once")
    zombies: list[int] = []
    next_hup = time.monotonic() + options.hup_init_every
    while True:
        if options.hup_init_every and time.monotonic() >= next_hup:
            say(f"asking my parent (pid {os.getppid()}) for a SIGHUP")
            os.kill(os.getppid(), signal.SIGHUP)
            next_hup += options.hup_init_every
        if len(zombies) >= options.max_zombies:
            say(f"{len(zombies)} zombies: reaping them all")
            reap(zombies)
        zombies.append(fork_and_exit())
        leak_orphan(random.uniform(0.2, options.orphan_life))
        received = signal.sigtimedwait(HANDLED, options.interval)
        if received is None:
            continue
        if received.si_signo == signal.SIGHUP:
            say(f"got SIGHUP: reloading (reaping my {len(zombies)} zombies)")
            reap(zombies)
        else:
            say(f"got {signal.Signals(received.si_signo).name}: "
                f"reaping my {len(zombies)} zombies, exiting 0")
            reap(zombies)
            return 0


def parse_options(args: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="zombie-factory", description=__doc__.splitlines()[0])
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between ticks")
    parser.add_argument("--max-zombies", type=int, default=20,
                        help="unreaped children before it reaps them all (default 20)")
    parser.add_argument("--orphan-life", type=float, default=5.0,
                        help="longest an orphan lives, in seconds (default 5)")
    parser.add_argument("--hup-init-every", type=float, default=0, metavar="SECONDS",
                        help="send SIGHUP to the parent, the init under test, this often "
                             "(default 0: never; never use it under a shell)")
    options = parser.parse_args(args)
    if options.interval <= 0 or options.max_zombies < 1 or options.orphan_life <= 0 \
            or options.hup_init_every < 0:
        parser.error("--interval and --orphan-life must be positive, --max-zombies at least 1, "
                     "--hup-init-every zero or more")
    return options


def fork_and_exit() -> int:
    """A child that exits at once; never waited for, it stays a zombie of this process."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    return pid


def leak_orphan(life: float) -> None:
    """A middle child forks a grandchild and exits: the grandchild is re-parented to the init."""
    middle = os.fork()
    if middle == 0:
        if os.fork() == 0:
            # Unblocked, so that the init's SIGTERM on leaving ends it.
            signal.pthread_sigmask(signal.SIG_UNBLOCK, HANDLED)
            time.sleep(life)
        os._exit(0)
    os.waitpid(middle, 0)


def reap(zombies: list[int]) -> None:
    for pid in zombies:
        os.waitpid(pid, 0)
    zombies.clear()


def say(text: str) -> None:
    print(f"zombie-factory: {text}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
