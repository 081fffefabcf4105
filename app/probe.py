"""`pidone health`: ask a running pidone's /health, exit 0 when ok, 1 (with one line why) otherwise.

For Docker's HEALTHCHECK and Kubernetes exec probes, so it stays light: the standard library
only, no HTTP stack to import.
"""

from __future__ import annotations

import getopt
import http.client
import json
import os
import socket
from collections.abc import Mapping, Sequence
from urllib.parse import urlsplit

from app.http.address import AddressError, check_host_name, parse_address
from app.config import DEFAULT_PORT
from app.numbers import parse_seconds
from app.output import STDERR, STDOUT, say

USAGE = "usage: pidone health [--url URL] [--timeout SECONDS]"
DEFAULT_TIMEOUT = 5.0
HEALTHY, UNHEALTHY, USAGE_ERROR = 0, 1, 2


class ProbeUsageError(Exception):
    pass


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a unix socket, for --http unix:/path."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def main(args: Sequence[str]) -> int:
    try:
        url, timeout = parse_probe_args(args, os.environ)
    except ProbeUsageError as error:
        say(f"pidone health: {error}")
        return USAGE_ERROR
    healthy, line = probe(url, timeout)
    say(f"pidone health: {line}", STDOUT if healthy else STDERR)
    return HEALTHY if healthy else UNHEALTHY


def parse_probe_args(args: Sequence[str], env: Mapping[str, str]) -> tuple[str, float]:
    """The URL (from --url, else from PIDONE_HTTP as pidone itself would read it) and timeout."""
    try:
        options, rest = getopt.getopt(list(args), "h", ["url=", "timeout=", "help"])
    except getopt.GetoptError as error:
        raise ProbeUsageError(f"{error.msg}: {USAGE}") from None
    if rest:
        raise ProbeUsageError(f"unexpected argument {rest[0]!r}: {USAGE}")
    url, timeout = None, DEFAULT_TIMEOUT
    for flag, value in options:
        if flag in ("-h", "--help"):
            raise ProbeUsageError(USAGE)
        if flag == "--url":
            url = value
        elif flag == "--timeout":
            try:
                timeout = parse_seconds(value)
            except ValueError as error:
                raise ProbeUsageError(f"--timeout: {error}") from None
            if timeout <= 0:
                raise ProbeUsageError(f"--timeout: seconds must be more than zero, not {value!r}")
    return url or default_url(env.get("PIDONE_HTTP", "")), timeout


def default_url(http_setting: str) -> str:
    """Where pidone in this container answers /health."""
    base = default_base_url(http_setting)
    return base if base.startswith("unix:") else f"{base}/health"


def default_base_url(http_setting: str) -> str:
    """Where pidone in this container listens: its --http as PIDONE_HTTP says, on loopback;
    `http://HOST:PORT` or `unix:/path`."""
    try:
        address = parse_address(http_setting) if http_setting else None
    except AddressError:
        address = None
    if address is None or address.off:
        return f"http://127.0.0.1:{DEFAULT_PORT}"
    if address.unix_path is not None:
        return f"unix:{address.unix_path}"
    host = address.host
    if host in (None, "", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{address.port}"


class Unreachable(Exception):
    """No answer from pidone at that address: the reason, for a person."""


def ask(url: str, method: str, default_path: str, timeout: float,
        headers: Mapping[str, str] | None = None) -> tuple[int, object]:
    """(HTTP status, the JSON document or None) of one request to pidone at `url`.
    ValueError for a URL that is neither http:// nor unix:; Unreachable when no answer came."""
    connection, path = _connect(url, timeout, default_path)
    try:
        connection.request(method, path, headers={"Accept": "application/json", **(headers or {})})
        answer = connection.getresponse()
        body = answer.read(65536)
    except (OSError, http.client.HTTPException) as error:
        raise Unreachable(getattr(error, "strerror", None) or str(error) or type(error).__name__) \
            from None
    finally:
        connection.close()
    try:
        return answer.status, json.loads(body)
    except ValueError:
        return answer.status, None


def probe(url: str, timeout: float) -> tuple[bool, str]:
    """(healthy, one line saying why) for GET url; `unix:/path` asks /health over that socket."""
    try:
        answered, document = ask(url, "GET", "/health", timeout)
    except ValueError as error:
        return False, f"bad URL {url!r}: {error}"
    except Unreachable as reason:
        return False, f"cannot reach {url}: {reason}"
    try:
        status = document["status"]
    except (TypeError, KeyError):
        return False, f"{url} answered {answered} without a pidone health document"
    if answered == 200 and status == "ok":
        child = document.get("child") or {}
        return True, f"ok: child {child.get('pid')} up {child.get('uptime_seconds')}s"
    return False, f"{url} answered {answered}: {status}"


def _connect(url: str, timeout: float, default_path: str) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the pidone at `url` (`http://HOST:PORT[/PATH]` or `unix:/path`) and the
    path to ask: the URL's own, else `default_path`. ValueError for a URL that is neither."""
    if url.startswith("unix:"):
        path = url[len("unix:"):]
        if not path:
            raise ValueError("unix: needs a socket path")
        return _UnixConnection(path, timeout), default_path
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"expected http://HOST:PORT{default_path} or unix:/path")
    if ":" not in parts.hostname:  # an IPv6 literal needs no resolver
        check_host_name(parts.hostname)
    connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
    return connection, (parts.path or default_path) + (f"?{parts.query}" if parts.query else "")
