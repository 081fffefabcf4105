"""What pidone's HTTP side takes from uvicorn's and h11's internals, checked so that a new pin
in constraints.txt fails here, loudly, rather than in a probe under attack.

app/http/guard.py reads h11's receive buffer before it parses (`_receive_buffer._data`) and its
`their_state`; it sets asyncio's transport `max_size`. app/http/quiet_server.py starts uvicorn's
Server with no socket and builds its protocol itself (`server_state`, `lifespan.state`,
`http_protocol_class`, H11Protocol's `_loop`). Unit checks of what the front door decides
from a head's bytes, and of who counts as one peer, ride along.
"""

from __future__ import annotations

import inspect
from pathlib import Path

import h11
import pytest
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from app.http import guard, quiet_server
from app.http.front import probe_request
from app.http.head import MAX_HEAD_BYTES, MAX_HEADERS, HeadRefused, head_end
from app.http.shares import UNIX_PEER, peer_of

ROOT = Path(__file__).resolve().parent.parent


def pinned(name: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line.startswith(f"{name}=="):
            return line.partition("==")[2]
    raise AssertionError(f"{name} is not pinned in constraints.txt")


@pytest.mark.parametrize("module, name", [(uvicorn, "uvicorn"), (h11, "h11")])
def test_the_versions_leaned_on_are_the_pinned_ones(module, name):
    assert module.__version__ == pinned(name), (
        f"{name} {module.__version__} is not the pinned {pinned(name)}: check app/http/guard.py and "
        "app/http/quiet_server.py against its internals, then move the pin")


def test_h11_keeps_an_unparsed_buffer_of_bytes_we_can_measure():
    connection = guard.HeadLimitedConnection(h11.SERVER, max_incomplete_event_size=MAX_HEAD_BYTES)
    assert connection.their_state is h11.IDLE
    connection.receive_data(b"GET / HTTP/1.1\r\nHost: x\r\n")
    assert isinstance(connection._receive_buffer._data, bytearray)
    assert bytes(connection._receive_buffer._data) == b"GET / HTTP/1.1\r\nHost: x\r\n"
    assert connection.next_event() is h11.NEED_DATA


def test_uvicorn_starts_without_sockets_and_builds_protocols_as_we_do():
    startup = inspect.getsource(uvicorn.Server.startup)
    assert "http_protocol_class" in startup and "app_state=self.lifespan.state" in startup
    assert "_loop" in inspect.signature(H11Protocol.__init__).parameters
    assert {"server_state", "config"} <= set(vars(uvicorn.Server(uvicorn.Config(app=None))))
    assert "self.lifespan = config.lifespan_class(config)" in inspect.getsource(uvicorn.Server)
    assert "self.conn = h11.Connection(" in inspect.getsource(H11Protocol.__init__)
    assert "def adopt" in inspect.getsource(quiet_server.QuietServer)


@pytest.mark.parametrize("received, refused", [
    (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", False),
    (b"GET / HTTP/1.1\r\n" + b"X:\r\n" * MAX_HEADERS + b"\r\n", False),
    (b"GET / HTTP/1.1\r\n" + b"X:\r\n" * (MAX_HEADERS + 1) + b"\r\n", True),
    (b"GET / HTTP/1.1\r\n" + b"X:\r\n" * 3200, True),  # incomplete, already too many
    (b"GET / HTTP/1.1\r\nX1: a" + b" " * 16_000 + b"\r\nX2: a" + b" " * 16_000, True),  # padding counts
    (b"GET / HTTP/1.1\r\nX: " + b"a" * (MAX_HEAD_BYTES - 30) + b"\r\n\r\n", False),
])
def test_heads_are_measured_as_received(received, refused):
    if refused:
        with pytest.raises(HeadRefused):
            head_end(received)
    else:
        assert head_end(received) in (-1, len(received))


@pytest.mark.parametrize("head, path", [
    (b"GET /health HTTP/1.1\r\nHost: 10.0.0.5:10101\r\nUser-Agent: kube-probe/1.31\r\n"
     b"Accept: */*\r\nConnection: close\r\n\r\n", "/health"),
    (b"HEAD /livez?verbose HTTP/1.1\r\nHost: x\r\n\r\n", "/livez"),
    (b"GET /readyz HTTP/1.0\r\n\r\n", "/readyz"),
    (b"GET /health HTTP/1.1\r\n\r\n", None),  # no Host: h11's 400
    (b"POST /health HTTP/1.1\r\nHost: x\r\n\r\n", None),  # 405 with Allow
    (b"GET /health HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\n", None),  # a body
    (b"GET /health HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", None),
    (b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n", None),
    (b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", None),
])
def test_the_front_door_answers_plain_probes_only(head, path):
    probe = probe_request(head)
    assert (probe.path if probe else None) == path


@pytest.mark.parametrize("host, peer", [
    ("10.0.0.7", "10.0.0.7"), ("::ffff:10.0.0.7", "10.0.0.7"), (None, UNIX_PEER), ("", UNIX_PEER),
    ("2001:db8:1:2::5", "20010db800010002::/64"), ("2001:db8:1:2:ffff::9", "20010db800010002::/64"),
    ("2001:db8:1:3::5", "20010db800010003::/64"), ("fe80::1%eth0", "fe80000000000000::/64"),
])
def test_a_peer_is_an_ipv4_address_or_an_ipv6_64(host, peer):
    assert peer_of(host) == peer
