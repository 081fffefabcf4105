"""Who may call the protected routes: the token when set, loopback clients otherwise."""

from __future__ import annotations

import ipaddress
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.http.access import LOOPBACK_ONLY, NO_BROWSERS, TOKEN_REQUIRED, check_access, is_loopback
from app.cli import MAX_TOKEN_FILE_BYTES, parse_config
from conftest import PIDONE, wait_until_live, workload

TOKEN = "s3cret-token-Zq9"
PROTECTED = [("POST", "/signal/USR1"), ("GET", "/status"), ("GET", "/processes"),
             ("POST", "/restart?timeout=5")]
OPEN = [("GET", "/health"), ("GET", "/livez"), ("GET", "/readyz"), ("GET", "/metrics")]


def scope(client: tuple[str, int] | None, authorization: str | None = None, *,
          host: str | None = "127.0.0.1:10101", origin: str | None = None) -> dict:
    headers = []
    for name, value in ((b"host", host), (b"authorization", authorization), (b"origin", origin)):
        if value is not None:
            headers.append((name, value.encode("latin-1")))
    return {"type": "http", "client": client, "headers": headers}


# -- the rule, on ASGI scopes ---------------------------------------------------------------


@pytest.mark.parametrize("host, loopback", [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("::ffff:127.0.0.1", True),
    ("198.51.100.2", False), ("::ffff:198.51.100.2", False), ("10.0.0.1", False), ("::", False),
    ("fe80::1%eth0", False), ("", False), (None, False), ("localhost", False), ("garbage", False),
])
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("client, allowed", [
    (("127.0.0.1", 5000), True), (("::1", 5000), True), (("::ffff:127.0.0.1", 1), True),
    (("198.51.100.2", 5000), False), (("::ffff:198.51.100.2", 1), False), (None, False),
])
def test_without_token_the_peer_address_decides(client, allowed):
    assert check_access(scope(client), None, unix_socket=False) == (None if allowed else LOOPBACK_ONLY)


def test_forwarded_headers_do_not_make_a_remote_client_local():
    spoofed = scope(("198.51.100.2", 1))
    spoofed["headers"] += [(b"x-forwarded-for", b"127.0.0.1"), (b"x-real-ip", b"127.0.0.1")]
    assert check_access(spoofed, None, unix_socket=False) == LOOPBACK_ONLY


@pytest.mark.parametrize("host, allowed", [
    ("127.0.0.1:10101", True), ("localhost:10101", True), ("LOCALHOST", True), ("[::1]:10101", True),
    ("app.localhost:1", True), ("127.0.0.2", True), (None, True),
    ("evil.example:10101", False), ("198.51.100.2:10101", False), ("", False), ("[::2]:1", False),
])
def test_without_token_a_foreign_host_header_is_refused(host, allowed):
    """DNS rebinding: a page's name that resolves to 127.0.0.1 still says its name in Host."""
    expected = None if allowed else NO_BROWSERS
    assert check_access(scope(("127.0.0.1", 1), host=host), None, unix_socket=False) == expected


def test_without_token_a_browsers_cross_site_request_is_refused():
    request = scope(("127.0.0.1", 1), origin="https://evil.example")
    assert check_access(request, None, unix_socket=False) == NO_BROWSERS
    assert check_access(scope(("127.0.0.1", 1), f"Bearer {TOKEN}", origin="https://evil.example"),
                        TOKEN, unix_socket=False) is None  # a page cannot know the token


def test_a_token_beyond_ascii_matches_its_utf8_bytes():
    token = "tök€n"
    sent = f"Bearer {token}".encode().decode("latin-1")  # how the ASGI scope carries it
    assert check_access(scope(("198.51.100.2", 1), sent), token, unix_socket=False) is None
    assert check_access(scope(("198.51.100.2", 1), "Bearer tok?n"), token, unix_socket=False) == TOKEN_REQUIRED


def test_unix_socket_clients_are_local():
    assert check_access(scope(None), None, unix_socket=True) is None


@pytest.mark.parametrize("authorization, allowed", [
    (None, False), ("", False), (f"Bearer {TOKEN}", True), (f"bearer {TOKEN}", True),
    (f"Bearer  {TOKEN} ", True), (f"Bearer {TOKEN}x", False), (f"Bearer {TOKEN[:-1]}", False),
    (f"Basic {TOKEN}", False), ("Bearer", False), ("Bearer ", False), (TOKEN, False),
])
@pytest.mark.parametrize("client", [("127.0.0.1", 1), ("198.51.100.2", 1)])
def test_with_token_every_client_must_present_it(authorization, allowed, client):
    expected = None if allowed else TOKEN_REQUIRED
    assert check_access(scope(client, authorization), TOKEN, unix_socket=False) == expected
    assert check_access(scope(client, authorization), TOKEN, unix_socket=True) == expected


# -- the rule in a running pidone -----------------------------------------------------------


@pytest.mark.parametrize("given", ["env", "file"])
def test_token_protects_the_protected_routes(start_pidone, tmp_path, given):
    if given == "env":
        running = start_pidone(workload("trap=USR1"), "-vv", env={"PIDONE_TOKEN": TOKEN})
    else:
        (tmp_path / "token").write_text(f"{TOKEN}\n")
        running = start_pidone(workload("trap=USR1"), "-vv", "--token-file", str(tmp_path / "token"))
    running.expect_report("ready")
    for method, path in PROTECTED:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
            answer = running.http.request(method, path, headers=headers)
            assert answer.status_code == 401, (path, headers)
            assert answer.headers["www-authenticate"].startswith("Bearer")
            assert TOKEN not in answer.text
        answer = running.http.request(method, path, headers={"Authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200, path
        assert TOKEN not in answer.text
    assert running.read_report() == "SIGUSR1"
    for method, path in OPEN:
        assert running.http.request(method, path).status_code == 200, path
    running.http.post("/signal/KILL", headers={"Authorization": f"Bearer {TOKEN}"})
    assert running.wait() == 137
    assert TOKEN not in running.stderr


def make_token_file(kind: str, path: Path) -> str:
    """A token file of `kind` at `path`, or elsewhere; its name."""
    if kind == "dev-zero":
        return "/dev/zero"
    if kind == "directory":
        path.mkdir()
    elif kind == "fifo":
        os.mkfifo(path)  # with no writer: a blocking open would wait for ever
    elif kind == "too-large":
        path.write_text("a" * (MAX_TOKEN_FILE_BYTES + 1))
    elif kind == "huge":
        path.write_text("a" * 5_000_000)
    elif kind != "absent":
        path.write_text(kind)
    return str(path)


@pytest.mark.parametrize("kind, reason", [
    ("absent", "No such file or directory"), ("", "is empty"), ("  \n\t", "is empty"),
    ("two words", "whitespace"), ("directory", "is a directory, not a regular file"),
    # Finding 3 of issue 11: these hung pidone, ran it out of memory, or were taken as a token.
    ("fifo", "is a FIFO, not a regular file"), ("dev-zero", "is a character device"),
    ("too-large", f"larger than {MAX_TOKEN_FILE_BYTES} bytes"), ("huge", "larger than"),
])
def test_bad_token_file_exits_2_at_start(start_init, tmp_path, kind, reason):
    token_file = make_token_file(kind, tmp_path / "token")
    running = start_init([*PIDONE, "--token-file", token_file, "true"], namespace=False)
    assert running.wait(timeout=20) == 2
    assert running.stderr.count("\n") == 1
    assert reason in running.stderr and "Traceback" not in running.stderr


def test_a_token_file_of_the_largest_size_is_read(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("t" * (MAX_TOKEN_FILE_BYTES - 1) + "\n")
    assert parse_config(["--token-file", str(token_file), "true"], {}).token == "t" * (MAX_TOKEN_FILE_BYTES - 1)


@pytest.mark.parametrize("kind, reason", [("absent", "cannot read token file"), ("fifo", "FIFO")])
def test_token_file_from_the_environment_is_checked_too(start_init, tmp_path, kind, reason):
    running = start_init([*PIDONE, "true"], namespace=False,
                         env={"PIDONE_TOKEN_FILE": make_token_file(kind, tmp_path / "token")})
    assert running.wait(timeout=20) == 2
    assert reason in running.stderr


# -- non-loopback clients for real: a network namespace over a veth pair --------------------


@dataclass(frozen=True)
class Netns:
    name: str
    host_address: str
    """Our end of the veth pair."""
    address: str
    """The namespace's end, where pidone listens."""


def veth_subnet() -> ipaddress.IPv4Network:
    """A /30 of TEST-NET-2 (198.51.100.0/24) that no interface of this machine uses: its own
    network may sit in TEST-NET-1, so this test leaves 192.0.2.0/24 alone."""
    used = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, timeout=30).stdout
    in_use = [ipaddress.ip_interface(word).network for word in used.split() if "/" in word
              and word[0].isdigit()]
    for index in range(os.getpid() % 64, os.getpid() % 64 + 64):
        subnet = ipaddress.ip_network(f"198.51.100.{(index % 64) * 4}/30")
        if not any(subnet.overlaps(network) for network in in_use):
            return subnet
    pytest.skip("no free /30 in 198.51.100.0/24 for a veth pair")


@pytest.fixture
def netns() -> Iterator[Netns]:
    """A network namespace joined to ours by a veth pair, with test-range addresses on both
    ends (inside namespaces this test makes); deleted afterwards."""
    if os.geteuid() != 0 or shutil.which("ip") is None:
        pytest.skip("needs root and iproute2")
    name, tag = f"pidone-test-{os.getpid()}", f"pd{os.getpid() % 100000}"
    host_end, ns_end = f"{tag}h", f"{tag}n"
    subnet = veth_subnet()
    ours, theirs = (f"{host}/{subnet.prefixlen}" for host in subnet.hosts())

    def ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, timeout=30)

    try:
        ip("netns", "add", name)
    except subprocess.CalledProcessError as failure:
        pytest.skip(f"cannot make a network namespace: {failure.stderr.decode().strip()}")
    try:
        ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end)
        ip("link", "set", ns_end, "netns", name)
        ip("addr", "add", ours, "dev", host_end)
        ip("link", "set", host_end, "up")
        ip("-n", name, "addr", "add", theirs, "dev", ns_end)
        ip("-n", name, "link", "set", ns_end, "up")
        ip("-n", name, "link", "set", "lo", "up")
        yield Netns(name, ours.split("/")[0], theirs.split("/")[0])
    finally:
        subprocess.run(["ip", "link", "del", host_end], capture_output=True, timeout=30)
        subprocess.run(["ip", "netns", "del", name], capture_output=True, timeout=30)


def request_inside(netns: Netns, method: str, url: str, headers: dict[str, str] | None = None) -> int:
    """The status of one request made from inside the network namespace."""
    code = ("import httpx, sys; print(httpx.request(sys.argv[1], sys.argv[2], "
            "headers=dict(h.split(':', 1) for h in sys.argv[3:]), timeout=20).status_code)")
    header_args = [f"{key}:{value}" for key, value in (headers or {}).items()]
    result = subprocess.run(["ip", "netns", "exec", netns.name, sys.executable, "-c", code, method, url,
                             *header_args], capture_output=True, text=True, timeout=60, check=True)
    return int(result.stdout)


def start_in_netns(start_init, netns: Netns, *options: str, env: dict[str, str] | None = None):
    """pidone with its default --http (:10101, every address of the namespace) as PID 1."""
    running = start_init(["ip", "netns", "exec", netns.name, *PIDONE, *options, *workload("trap=USR1")],
                         env=env)
    running.expect_report("ready")
    running.url = f"http://{netns.address}:10101"
    running.http = httpx.Client(base_url=running.url, timeout=20)
    wait_until_live(running)
    return running


def test_without_token_only_loopback_clients_may_call_protected_routes(start_init, netns):
    running = start_in_netns(start_init, netns)
    for method, path in PROTECTED:
        remote = running.http.request(method, path)  # from our end of the veth
        assert remote.status_code == 403, path
        assert "loopback" in remote.json()["error"]
        assert request_inside(netns, method, f"http://127.0.0.1:10101{path}") == 200, path
    for method, path in OPEN:
        assert running.http.request(method, path).status_code == 200, path
    browser = {"Origin": "http://evil.example", "Host": "evil.example:10101"}
    assert request_inside(netns, "POST", "http://127.0.0.1:10101/signal/USR1", browser) == 403
    assert running.read_report() == "SIGUSR1"  # the loopback request only


def test_with_token_a_remote_client_that_presents_it_may_call(start_init, netns):
    running = start_in_netns(start_init, netns, env={"PIDONE_TOKEN": TOKEN})
    assert running.http.post("/signal/USR1").status_code == 401
    assert request_inside(netns, "POST", "http://127.0.0.1:10101/signal/USR1") == 401
    answer = running.http.post("/signal/USR1", headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200
    assert running.read_report() == "SIGUSR1"
