"""Clients that ask and never read, from their own process: the slow-reader attack on pidone.

usage: slow_readers.py HOST PORT COUNT SECONDS [mixed|metrics|metrics-half-closed]
Keeps COUNT connections open for SECONDS, each with a tiny receive buffer and segment size
set before connect() (as on a real network path), pipelining requests and never reading a byte
of the answers; a connection the server resets is opened again at once, and one older than
RECYCLE_SECONDS is closed and opened again (pidone may have closed it: behind answers never
read, its FIN never arrives), so the pressure stays as long as the attack. "mixed" (the default):
most ask for a dozen 404s of a 15 KB path, one in ten for /metrics many times; "metrics": all
ask for /metrics many times, more than a socket's buffers hold; "-half-closed": and then shut
down their sending side. After SECONDS it opens no more and keeps what is left until stdin
closes, so that the test can watch the server end those too. Prints "holding" at that moment,
then one JSON line: connections opened, how many the server was seen to reset, the longest
that took, and how many were still open at the end.
"""

from __future__ import annotations

import json
import resource
import select
import socket
import sys
import time

RECEIVE_BUFFER = 2048
SEGMENT_SIZE = 536
LONG_PATH = b"/" + b"a" * 15_000
LONG_404S = (b"GET " + LONG_PATH + b" HTTP/1.1\r\nHost: x\r\n\r\n") * 12
"""A dozen 404s that once echoed the 15 KB path: 180 KB of answers a connection."""
METRICS = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 20
"""Answers of about 5 KB each, more than the socket's buffers take: the server's end waits."""
METRICS_EVERY = 10
"""In "mixed", one connection in this many asks for METRICS (they cost the server CPU)."""
RECYCLE_SECONDS = 8.0
GONE = select.POLLERR | select.POLLHUP | select.POLLRDHUP


class Attacker:
    def __init__(self, address: tuple[str, int], pattern: str) -> None:
        self.address = address
        self.pattern = pattern
        self.poller = select.poll()
        self.sockets: dict[int, socket.socket] = {}
        self.unsent: dict[int, bytes] = {}
        self.opened_at: dict[int, float] = {}
        self.opened = 0
        self.reset = 0
        self.longest = 0.0

    def pipeline(self) -> bytes:
        if self.pattern == "mixed" and self.opened % METRICS_EVERY:
            return LONG_404S
        return METRICS

    def open_one(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, SEGMENT_SIZE)
        sock.setblocking(False)
        sock.connect_ex(self.address)
        fd = sock.fileno()
        self.sockets[fd] = sock
        self.unsent[fd] = self.pipeline()
        self.opened_at[fd] = time.monotonic()
        self.opened += 1
        self.poller.register(fd, select.POLLOUT | GONE)

    def turn(self, reopen: bool) -> None:
        for fd, events in self.poller.poll(100):
            if events & GONE:
                self.forget(fd, reset=True)
                if reopen:
                    self.open_one()
            elif events & select.POLLOUT:
                self.send_more(fd)
        if reopen:
            too_old = time.monotonic() - RECYCLE_SECONDS
            for fd in [fd for fd, opened in self.opened_at.items() if opened < too_old]:
                self.forget(fd, reset=False)
                self.open_one()

    def send_more(self, fd: int) -> None:
        sock = self.sockets[fd]
        try:
            sent = sock.send(self.unsent[fd])
        except BlockingIOError:
            return
        except OSError:
            return  # reset: poll reports it next
        self.unsent[fd] = self.unsent[fd][sent:]
        if not self.unsent[fd]:
            if self.pattern.endswith("-half-closed"):
                sock.shutdown(socket.SHUT_WR)
            self.poller.modify(fd, GONE)  # all asked: from now on, only wait to be cut off

    def forget(self, fd: int, reset: bool) -> None:
        self.poller.unregister(fd)
        if reset:
            self.reset += 1
            self.longest = max(self.longest, time.monotonic() - self.opened_at[fd])
        self.sockets.pop(fd).close()
        del self.unsent[fd], self.opened_at[fd]


def main(host: str, port: str, count: str, seconds: str, pattern: str = "mixed") -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = int(count) * 2 + 64
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))
    attacker = Attacker((host, int(port)), pattern)
    for _ in range(int(count)):
        attacker.open_one()
    until = time.monotonic() + float(seconds)
    while time.monotonic() < until:
        attacker.turn(reopen=True)
    print("holding", flush=True)
    while not select.select([sys.stdin], [], [], 0)[0]:
        attacker.turn(reopen=False)
    still_open = len(attacker.sockets)
    for fd in list(attacker.sockets):
        attacker.forget(fd, reset=False)
    print(json.dumps({"opened": attacker.opened, "reset_by_server": attacker.reset,
                      "longest_seconds": round(attacker.longest, 2), "still_open": still_open}),
          flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
