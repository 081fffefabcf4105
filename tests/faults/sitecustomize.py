"""Fault injection for tests/test_http_faults.py, loaded by Python's start-up (site) when this
directory is on PYTHONPATH: pidone's code is untouched. Once the file named by
PIDONE_TEST_HTTP_FAULT exists, uvicorn's main loop ends the way the file says:
"raise" makes it crash with an exception; "quit" makes it stop as if asked to."""

import os

import uvicorn

_trigger = os.environ["PIDONE_TEST_HTTP_FAULT"]
_on_tick = uvicorn.Server.on_tick


async def _on_tick_with_fault(self: uvicorn.Server, counter: int) -> bool:
    if os.path.exists(_trigger):
        with open(_trigger) as trigger:
            if trigger.read() == "raise":
                raise RuntimeError("injected fault: the event loop crashed")
        return True
    return await _on_tick(self, counter)


uvicorn.Server.on_tick = _on_tick_with_fault
