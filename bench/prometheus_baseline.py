"""The /metrics baseline: prometheus_client's own start_http_server serving pidone's registry.

    python bench/prometheus_baseline.py PORT COMMAND [ARG...]

Run as PID 1 of a namespace like pidone, it spawns COMMAND and serves the very collectors
pidone serves (app.http.metrics.build_registry over a core state of that child), so the two
servers differ only in the HTTP stack: uvicorn + starlette against the standard library's.
"""

from __future__ import annotations

import os
import signal
import sys
import time

from prometheus_client import start_http_server

from app.http.metrics import build_registry
from app.core.state import ChildStatus, CoreState


def main(argv: list[str]) -> int:
    port, command = int(argv[0]), argv[1:]
    child = os.posix_spawnp(command[0], command, os.environ)
    state = CoreState(child=ChildStatus(tuple(command), child, time.time(), True),
                      is_pid1=os.getpid() == 1, is_subreaper=False)
    state.heartbeat = time.time()
    start_http_server(port, addr="127.0.0.1", registry=build_registry(state.snapshot))
    while True:
        signal.pause()  # the namespace's end (SIGKILL) ends it


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
