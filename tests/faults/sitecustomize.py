"""Fault injection and knobs for the tests, loaded by Python's start-up (site) when this
directory is on PYTHONPATH: pidone's code is untouched.
- PIDONE_TEST_HTTP_FAULT=PATH: once that file exists, the server's main loop fails the way the
  file says: "raise" makes it crash with an exception; "quit" makes it stop as if asked to; "hang"
  blocks its event loop for good, the thread alive.
- PIDONE_TEST_HTTP_START_FAULT=1: starting the HTTP side raises an exception no code expects.
- PIDONE_TEST_KILL_FAULT=SIGNO:ERRNO: os.kill and os.killpg fail with ERRNO for signal SIGNO.
- PIDONE_TEST_WATCH_FAULT=1: the core's watch of the HTTP server raises when asked.
- PIDONE_TEST_LOOP_FAULT=PATH: once that file exists, every sigtimedwait and sigwaitinfo raises:
  no turn of the core loop can succeed any more.
- PIDONE_TEST_HEAD_TIMEOUT=SECONDS: app/http/guard.py's deadline for a request head, shortened.
- PIDONE_TEST_STALL_AFTER=SECONDS: app/http/server.py's time before a silent event loop is stuck.
"""

import os
import signal
import time

if "PIDONE_TEST_HEAD_TIMEOUT" in os.environ:
    import app.http.guard

    app.http.guard.HEAD_TIMEOUT = float(os.environ["PIDONE_TEST_HEAD_TIMEOUT"])

if "PIDONE_TEST_STALL_AFTER" in os.environ:
    import app.http.server

    app.http.server.STALL_AFTER = float(os.environ["PIDONE_TEST_STALL_AFTER"])

if "PIDONE_TEST_HTTP_FAULT" in os.environ:
    import asyncio

    import app.http.quiet_server

    _trigger = os.environ["PIDONE_TEST_HTTP_FAULT"]
    _main_loop = app.http.quiet_server.QuietServer.main_loop

    async def _main_loop_with_fault(self: app.http.quiet_server.QuietServer) -> None:
        # The server's own main loop sleeps until stopped: watch for the trigger beside it.
        serving = asyncio.ensure_future(_main_loop(self))
        while not os.path.exists(_trigger):
            done, _ = await asyncio.wait([serving], timeout=0.05)
            if done:
                return serving.result()
        with open(_trigger) as trigger:
            fault = trigger.read()
        if fault == "raise":
            raise RuntimeError("injected fault: the event loop crashed")
        if fault == "hang":
            time.sleep(3600)
        serving.cancel()  # "quit": the main loop ends as if asked to

    app.http.quiet_server.QuietServer.main_loop = _main_loop_with_fault

if os.environ.get("PIDONE_TEST_HTTP_START_FAULT") == "1":
    import app.http.server

    def _start_with_fault(self: object) -> bool:
        raise LookupError("injected fault: nobody expects this one")

    app.http.server.HttpServer.start = _start_with_fault

if "PIDONE_TEST_KILL_FAULT" in os.environ:
    _signo, _errno = (int(part) for part in os.environ["PIDONE_TEST_KILL_FAULT"].split(":"))

    def _with_fault(real):
        def call(target: int, signo: int) -> None:
            if signo == _signo:
                raise OSError(_errno, os.strerror(_errno))
            real(target, signo)
        return call

    os.kill = _with_fault(os.kill)
    os.killpg = _with_fault(os.killpg)

if os.environ.get("PIDONE_TEST_WATCH_FAULT") == "1":
    import app.http.server

    def _trouble_with_fault(self: object) -> str | None:
        raise ValueError("injected fault: the watch broke")

    app.http.server.HttpServer.trouble = _trouble_with_fault

if "PIDONE_TEST_LOOP_FAULT" in os.environ:
    _loop_trigger = os.environ["PIDONE_TEST_LOOP_FAULT"]

    def _wait_with_fault(wait):
        def call(*args: object):
            if os.path.exists(_loop_trigger):
                raise RuntimeError(f"injected fault: {wait.__name__} broke")
            return wait(*args)
        return call

    signal.sigtimedwait = _wait_with_fault(signal.sigtimedwait)
    signal.sigwaitinfo = _wait_with_fault(signal.sigwaitinfo)
