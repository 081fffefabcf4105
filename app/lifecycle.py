"""pidone's life in order: block signals, start the child, start the HTTP side, supervise, leave."""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TYPE_CHECKING, NoReturn

from app.address import parse_address
from app.child import ExecError, spawn_child
from app.config import Config
from app.core import Core, block_signals
from app.log import BackgroundLog
from app.state import ChildStatus, CoreState

if TYPE_CHECKING:
    from app.server import HttpServer

log = logging.getLogger("pidone")

NOT_REAPING_WARNING = (
    "pidone is not PID 1 and not a child subreaper: orphaned processes will not be reaped "
    "by it (run it as the container's entrypoint, or pass -s)"
)


def run(config: Config) -> NoReturn:
    background_log = BackgroundLog(config.verbosity, config.log_format)
    block_signals()
    is_pid1 = os.getpid() == 1
    is_subreaper = config.subreaper and _register_subreaper()
    if config.pdeathsig:
        _set_parent_death_signal(config.pdeathsig)

    try:
        pid = spawn_child(config.command, take_terminal=_stdin_is_terminal())
    except ExecError as error:
        background_log.flush()
        print(f"pidone: {error}", file=sys.stderr, flush=True)
        os._exit(error.status)
    background_log.start_writer()

    state = CoreState(
        child=ChildStatus(argv=config.command, pid=pid, start_time=time.time(), running=True),
        is_pid1=is_pid1,
        is_subreaper=is_subreaper,
    )
    state.heartbeat = time.time()
    if not is_pid1 and not is_subreaper:
        state.warnings.append(NOT_REAPING_WARNING)
        log.warning(NOT_REAPING_WARNING)
    log.info("started child %d: %s", pid, " ".join(config.command))

    core = Core(config, state)
    http = start_http_side(core)
    core.supervise()
    status = core.leave()
    if http is not None:
        http.stop()
    log.info("exiting with status %d; reaped %d orphaned processes", status, state.zombies_reaped)
    background_log.flush()
    _leave_process(status)


def start_http_side(core: Core) -> HttpServer | None:
    """Serve the HTTP API in a thread, unless --http off. Imported here, after the child is
    spawned: the workload must not wait for starlette, uvicorn and prometheus_client."""
    address = parse_address(core.config.http)
    if address.off:
        return None
    from app.server import HttpServer

    http = HttpServer(core, address)
    http.start()
    return http


def _register_subreaper() -> bool:
    from app.prctl import become_subreaper

    try:
        become_subreaper()
    except OSError as error:
        log.warning("cannot register as child subreaper: prctl: %s", error.strerror)
        return False
    return True


def _set_parent_death_signal(signo: int) -> None:
    from app.prctl import set_parent_death_signal

    try:
        set_parent_death_signal(signo)
    except OSError as error:
        log.warning("cannot set the parent-death signal: prctl: %s", error.strerror)


def _stdin_is_terminal() -> bool:
    try:
        return os.isatty(0)
    except OSError:
        return False


def _leave_process(status: int) -> NoReturn:
    """Exit without joining threads that might hang (the HTTP server, a blocked log writer)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # None: pidone was started with that fd closed
                stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(status)
