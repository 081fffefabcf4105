"""One peer's cheap-to-send, costly-to-serve traffic against pidone, from its own process.

usage: attacker.py HOST PORT KIND COUNT
KIND is one of:
- idle: COUNT connections that send nothing, each opened again as soon as it is closed;
- headers: COUNT connections, each sending heads of HEADERS empty `X:` headers, one after
  the answer to the last, opened again when closed;
- gzip: COUNT connections, each with IN_FLIGHT gzip scrapes of /metrics always asked;
- forge: COUNT requests whose path holds a forged log line and whose chunked body is broken,
  on FORGERS connections at a time; the attacker ends when all are answered or refused;
- census: COUNT connections, each asking /metrics and /processes once a second (costly
  with thousands of processes in the namespace).
Runs until stdin closes (forge: or until done), then prints one JSON line: connections
opened, requests sent, answers seen.
"""

from __future__ import annotations

import json
import resource
import select
import socket
import sys
import time

HEADERS = 3200
HEAVY_HEAD = b"GET /health HTTP/1.1\r\nHost: x\r\n" + b"X:\r\n" * HEADERS + b"\r\n"
SCRAPE = b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n"
IN_FLIGHT = 4
FORGED = (b"GET /x%0Apidone[1]:%20error:%20forged HTTP/1.1\r\nHost: x\r\n"
          b"Transfer-Encoding: chunked\r\n\r\nzz\r\n")
FORGERS = 20
CENSUS = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\nGET /processes HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
ANSWER = b"HTTP/1.1 "
GONE = select.POLLERR | select.POLLHUP | select.POLLRDHUP


class Attacker:
    def __init__(self, address: tuple[str, int], kind: str, count: int) -> None:
        self.address, self.kind, self.count = address, kind, count
        self.poller = select.poll()
        self.sockets: dict[int, socket.socket] = {}
        self.tails: dict[int, bytes] = {}
        self.opened = self.sent = self.answers = 0

    def open_one(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        sock.connect_ex(self.address)
        fd = sock.fileno()
        self.sockets[fd] = sock
        self.tails[fd] = b""
        self.opened += 1
        self.poller.register(fd, select.POLLIN | GONE | (select.POLLOUT if self.kind != "idle" else 0))

    def first_requests(self, fd: int) -> None:
        """Once connected: what this kind asks at once."""
        self.poller.modify(fd, select.POLLIN | GONE)
        payload = {"headers": HEAVY_HEAD, "gzip": SCRAPE * IN_FLIGHT, "forge": FORGED,
                   "census": CENSUS}[self.kind]
        self.send(fd, payload, {"headers": 1, "gzip": IN_FLIGHT, "forge": 1, "census": 2}[self.kind])

    def send(self, fd: int, payload: bytes, requests: int) -> None:
        try:
            self.sockets[fd].sendall(payload)  # small enough for the socket's buffer
            self.sent += requests
        except OSError:
            pass  # closed by pidone: poll says so next

    def receive(self, fd: int) -> bool:
        """Read what came; answer it as this kind does. False when the connection is over."""
        try:
            data = self.sockets[fd].recv(65536)
        except BlockingIOError:
            return True
        except OSError:
            return False
        if not data:
            return False
        seen = self.tails[fd] + data
        answers = seen.count(ANSWER)
        self.tails[fd] = seen[-len(ANSWER):]
        self.answers += answers
        if answers and self.kind == "gzip":
            self.send(fd, SCRAPE * answers, answers)
        elif answers and self.kind == "headers":
            self.send(fd, HEAVY_HEAD, 1)
        return self.kind != "forge" or not answers

    def forget(self, fd: int) -> None:
        self.poller.unregister(fd)
        self.sockets.pop(fd).close()
        del self.tails[fd]

    def ask_census(self) -> None:
        for fd in list(self.sockets):
            self.send(fd, CENSUS, 2)

    def turn(self) -> None:
        for fd, events in self.poller.poll(100):
            if fd not in self.sockets:
                continue
            if events & select.POLLOUT:
                self.first_requests(fd)
            elif events & (select.POLLIN | GONE) and not self.receive(fd):
                self.forget(fd)
                if self.kind != "forge" or self.opened < self.count:
                    self.open_one()


def main(host: str, port: str, kind: str, count: str) -> None:
    total = int(count)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < total + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, total + 64), hard))
    attacker = Attacker((host, int(port)), kind, total)
    for _ in range(min(total, FORGERS) if kind == "forge" else total):
        attacker.open_one()
    next_census = time.monotonic() + 1.0
    while not select.select([sys.stdin], [], [], 0)[0]:
        attacker.turn()
        if kind == "census" and time.monotonic() >= next_census:
            attacker.ask_census()
            next_census += 1.0
        if kind == "forge" and not attacker.sockets:
            break
    print(json.dumps({"opened": attacker.opened, "sent": attacker.sent, "answers": attacker.answers}),
          flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
