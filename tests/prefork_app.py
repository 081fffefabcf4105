"""The application the pre-fork server tests serve, as WSGI (gunicorn) and ASGI (uvicorn).

GET /slow reports "request PID" on stderr (the test's log: uvicorn's spawned workers keep no
other inherited descriptor), then holds the answer until the file RELEASE exists: a request in
flight for as long as the test needs, without a timer.
Every other path answers at once. The answer's body is the serving worker's PID.
"""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import Callable, Iterable

HOLD_LIMIT = 30.0
"""Seconds a /slow request waits for its release at most, so that a failed test ends."""
POLL = 0.01


def report(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def released() -> bool:
    return os.path.exists(os.environ["RELEASE"])


def wsgi(environ: dict, start_response: Callable) -> Iterable[bytes]:
    if environ["PATH_INFO"] == "/slow":
        report(f"request {os.getpid()}")
        deadline = time.monotonic() + HOLD_LIMIT
        while not released() and time.monotonic() < deadline:
            time.sleep(POLL)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [str(os.getpid()).encode()]


async def asgi(scope: dict, receive: Callable, send: Callable) -> None:
    assert scope["type"] == "http"
    if scope["path"] == "/slow":
        report(f"request {os.getpid()}")
        deadline = time.monotonic() + HOLD_LIMIT
        while not released() and time.monotonic() < deadline:
            await asyncio.sleep(POLL)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
