"""Fair shares per peer: who a client is, and how many connections each peer holds.

A flood comes from few peers; the kubelet probes from the node's address and Prometheus from
its own. Counting by peer lets pidone refuse a peer more than its share without touching
anyone else's connections, as nginx's limit_conn and HAProxy's stick tables do.
"""

from __future__ import annotations

import socket
import threading

UNIX_PEER = "unix"
"""Every client of a unix socket: the socket file's permissions chose them, one share."""


def peer_of(host: str | None) -> str:
    """The share a client counts against, from its address: its IPv4 address, its IPv6 /64
    (one host is given a whole /64 and may use any address in it), one for all unix clients."""
    if not host:
        return UNIX_PEER
    if host.startswith("::ffff:"):
        return host[7:]
    if ":" in host:
        try:
            return socket.inet_pton(socket.AF_INET6, host.partition("%")[0])[:8].hex() + "::/64"
        except OSError:
            return host
    return host


class ConnectionShares:
    """Open connections by peer, wherever they are served: taken by the front door when it
    accepts, given back by whichever thread closes the connection."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[str, int] = {}
        self.total = 0

    def take(self, peer: str) -> int:
        """One more connection of `peer`; how many it holds now."""
        with self._lock:
            held = self._held[peer] = self._held.get(peer, 0) + 1
            self.total += 1
            return held

    def give_back(self, peer: str) -> None:
        with self._lock:
            held = self._held.get(peer, 0) - 1
            if held > 0:
                self._held[peer] = held
            else:
                self._held.pop(peer, None)
            self.total -= 1

    def held_by(self, peer: str) -> int:
        return self._held.get(peer, 0)
