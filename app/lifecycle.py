"""pidone's life in order: block signals, start the child, start the HTTP side, supervise, leave."""

from __future__ import annotations

import os
import sys
import time

from app.core.child import ExecError, spawn_child
from app.config import Config
from app.output import say
from app.core.signals import block_signals, wake_promptly

TYPE_CHECKING = False  # typing itself is not imported: it costs the start-up path (app.config)
if TYPE_CHECKING:
    from typing import NoReturn

    from app.core.loop import Core
    from app.http.server import HttpServer

NOT_REAPING_WARNING = (
    "pidone is not PID 1 and not a child subreaper: orphaned processes will not be reaped "
    "by it (run it as the container's entrypoint, or pass -s)"
)


def run(config: Config) -> NoReturn:
    block_signals()
    is_pid1 = os.getpid() == 1
    warnings: list[str] = []
    is_subreaper = config.subreaper and _register_subreaper(warnings)
    if config.pdeathsig:
        _set_parent_death_signal(config.pdeathsig, warnings)
    if not is_pid1 and not is_subreaper:
        warnings.append(NOT_REAPING_WARNING)

    take_terminal = _stdin_is_terminal()
    try:
        pid = spawn_child(config.command, take_terminal=take_terminal)
    except ExecError as error:
        for line in (*warnings, str(error)):
            say(f"pidone: {line}")
        _leave_process(error.status)
    started = time.time()
    cwd = _leave_working_directory()

    # The workload runs: only now pay for the log's thread, the core's state and the HTTP stack.
    from app.core.loop import Core, Start
    from app.log import log
    from app.core.state import ChildStatus, CoreState

    log.configure(config.verbosity, config.log_format)
    state = CoreState(
        child=ChildStatus(argv=config.command, pid=pid, start_time=started, running=True),
        is_pid1=is_pid1,
        is_subreaper=is_subreaper,
    )
    state.heartbeat = time.time()
    for warning in warnings:
        log.warning(warning)
    state.warnings.extend(warnings)
    log.info("started child %d: %s", pid, " ".join(config.command))

    core = Core(config, state, Start(take_terminal, cwd))
    http = start_http_side(core)
    if http is not None:
        wake_promptly()  # the core takes the GIL back from the HTTP thread at once (app/core/signals.py)
    status = supervise_and_leave(core)
    if http is not None:
        http.stop()
    log.info("exiting with status %d; reaped %d orphaned processes", status, state.zombies_reaped)
    log.flush()
    _leave_process(status)


def start_http_side(core: Core) -> HttpServer | None:
    """Serve the HTTP API in a thread, unless --http off. Imported here, after the child is
    spawned: the workload must not wait for starlette, uvicorn and prometheus_client. Whatever
    fails here is one line on stderr: an init never drops its workload for its side-car."""
    try:
        from app.http.address import parse_address

        address = parse_address(core.config.http)
        if address.off:
            return None
        from app.http.server import HttpServer

        http = HttpServer(core, address)
        if http.start():
            core.watch("HTTP server (/health, /metrics, /signal)", http.trouble)
        return http
    except Exception as failure:
        from app.log import log

        log.error("HTTP server not started: %s: %s; the child runs on without it",
                  type(failure).__name__, failure)
        return None


def supervise_and_leave(core: Core) -> int:
    """The core's work until pidone exits. PID 1 never dies of its own mistakes: whatever the
    core raises is logged as pidone's bug, and pidone still reaps and exits with the child's
    status."""
    try:
        core.supervise()
    except Exception as bug:
        core.report_bug("the core loop", bug)
        core.reap_until_child_exits()
    try:
        return core.leave()
    except Exception as bug:
        core.report_bug("leaving", bug)
        return core.exit_code()


def _leave_working_directory() -> str | None:
    """As dumb-init, at once after the spawn: the init holds no directory busy (a mount it
    sits in could not be unmounted). Paths given relative were made absolute by app.cli.
    Returns the directory left, for a restarted child (None if it cannot be named)."""
    try:
        cwd = os.getcwd()
    except OSError:
        cwd = None  # removed under us: a restarted child starts in "/"
    try:
        os.chdir("/")
    except OSError:
        pass
    return cwd


def _register_subreaper(warnings: list[str]) -> bool:
    from app.core.prctl import become_subreaper

    try:
        become_subreaper()
    except OSError as error:
        warnings.append(f"cannot register as child subreaper: prctl: {error.strerror}")
        return False
    return True


def _set_parent_death_signal(signo: int, warnings: list[str]) -> None:
    from app.core.prctl import set_parent_death_signal

    try:
        set_parent_death_signal(signo)
    except OSError as error:
        warnings.append(f"cannot set the parent-death signal: prctl: {error.strerror}")


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
