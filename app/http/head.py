"""A request head's limits, checked on the bytes as received, before anything parses them.

Parsing is what costs: h11 and uvicorn spend about 3 µs a header, so a 12.8 KB head of 3,200
empty `X:` headers took 9-13 ms of pidone's CPU where a probe's takes 0.3 ms (issue 22). These
checks count bytes and line feeds only (C loops over at most MAX_HEAD_BYTES), so a head is
refused before it is parsed: by app/http/front.py for a connection's first head and by
app/http/guard.py for the heads that follow on a kept-alive connection.
"""

from __future__ import annotations

import re

MAX_HEAD_BYTES = 16 * 1024
"""Request line plus headers as received, whitespace padding included."""
MAX_HEADERS = 100
"""Header lines in one head (a kubelet sends 4, Prometheus 6, curl 3)."""

HEAD_END = re.compile(rb"\n\r?\n")
"""Where a head ends: a blank line, CRLF or bare LF, as h11 reads it."""


class HeadRefused(Exception):
    """A head over a limit: answered with `status` and the connection closed. 400 for all,
    as uvicorn answers what h11 refuses, so that a limit reads the same on every request."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


TOO_LARGE = "request head too large"
TOO_MANY_HEADERS = "too many header lines"
AMBIGUOUS_LENGTH = "Content-Length with Transfer-Encoding"
"""What each refusal says. An exception is made anew for each: one raised again keeps every
traceback it was raised with, and with them every frame's locals (a leak per request)."""


def head_end(received: bytes | bytearray, start: int = 0) -> int:
    """The index just past the blank line that ends the head starting at `start`, or -1 while
    the head is incomplete. Raises HeadRefused when what is there is already over a limit,
    counting every byte received (padding too), complete or not."""
    found = HEAD_END.search(received, start)
    end = -1 if found is None else found.end()
    size = (len(received) if end < 0 else end) - start
    if size > MAX_HEAD_BYTES:
        raise HeadRefused(400, TOO_LARGE)
    if received.count(b"\n", start, start + size) > MAX_HEADERS + 2:  # + request line, blank line
        raise HeadRefused(400, TOO_MANY_HEADERS)
    return end
