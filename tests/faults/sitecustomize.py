"""Fault injection and knobs for the tests, loaded by Python's start-up (site) when this
directory is on PYTHONPATH: pidone's code is untouched.
- PIDONE_TEST_HTTP_FAULT=PATH: once that file exists, uvicorn's main loop fails the way the file
  says: "raise" makes it crash with an exception; "quit" makes it stop as if asked to; "hang"
  blocks its event loop for good, the thread alive.
- PIDONE_TEST_HEAD_TIMEOUT=SECONDS: app/guard.py's deadline for a request head, shortened.
- PIDONE_TEST_STALL_AFTER=SECONDS: app/server.py's time before a silent event loop is stuck.
"""

import os
import time

import uvicorn

if "PIDONE_TEST_HEAD_TIMEOUT" in os.environ:
    import app.guard

    app.guard.HEAD_TIMEOUT = float(os.environ["PIDONE_TEST_HEAD_TIMEOUT"])

if "PIDONE_TEST_STALL_AFTER" in os.environ:
    import app.server

    app.server.STALL_AFTER = float(os.environ["PIDONE_TEST_STALL_AFTER"])

if "PIDONE_TEST_HTTP_FAULT" in os.environ:
    _trigger = os.environ["PIDONE_TEST_HTTP_FAULT"]
    _on_tick = uvicorn.Server.on_tick

    async def _on_tick_with_fault(self: uvicorn.Server, counter: int) -> bool:
        if os.path.exists(_trigger):
            with open(_trigger) as trigger:
                fault = trigger.read()
            if fault == "raise":
                raise RuntimeError("injected fault: the event loop crashed")
            if fault == "hang":
                time.sleep(3600)
            return True
        return await _on_tick(self, counter)

    uvicorn.Server.on_tick = _on_tick_with_fault
