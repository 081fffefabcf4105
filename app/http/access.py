"""Who may call the protected routes: the bearer token when one is set, loopback clients otherwise."""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Denial:
    """Why a request may not go on, as the HTTP status and message to answer with."""

    status: int
    message: str


TOKEN_REQUIRED = Denial(401, "this route needs the bearer token: send Authorization: Bearer <token>")
LOOPBACK_ONLY = Denial(
    403, "without a configured token this route answers loopback clients only (see --token-file)"
)
NO_BROWSERS = Denial(
    403, "without a configured token this route refuses browser requests (Origin or a Host "
    "that is not loopback): a web page must not reach it through localhost"
)


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and IPv4-mapped loopback (a dual-stack socket shows 127.0.0.1 so)."""
    if not host:
        return False
    try:
        address = ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def check_access(scope: Mapping[str, Any], token: str | None, *, unix_socket: bool) -> Denial | None:
    """None when the request may call a protected route, else the Denial to answer with.

    With a token every client must present it, loopback included. Without one, the peer
    address decides; over a unix socket the file's permissions already chose who connects.
    The peer is the socket's own (uvicorn runs with proxy headers off), never X-Forwarded-For.
    """
    if token is not None:
        presented = _bearer_token(scope)
        # Header bytes as sent (latin-1 undoes the decoding) against the token's UTF-8.
        if presented is None or not hmac.compare_digest(presented.encode("latin-1"), token.encode()):
            return TOKEN_REQUIRED
        return None
    if unix_socket:
        return None
    client = scope.get("client")
    if not (client and is_loopback(client[0])):
        return LOOPBACK_ONLY
    # A browser on this host is a loopback client too: refuse what only a browser sends, a
    # cross-site POST (Origin) and DNS rebinding (a foreign name in Host), so that a web page
    # cannot signal the workload. A token closes both anyway: pages cannot send it.
    if _header(scope, b"origin") is not None or not _is_loopback_host(_header(scope, b"host")):
        return NO_BROWSERS
    return None


def _header(scope: Mapping[str, Any], wanted: bytes) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return value.decode("latin-1")
    return None


def _is_loopback_host(host: str | None) -> bool:
    """Host names a loopback place: localhost, 127.x, [::1], or no Host at all (HTTP/1.0)."""
    if host is None:
        return True
    name = host.strip().lower()
    if name.startswith("["):
        name = name[1:].partition("]")[0]
    elif name.count(":") == 1:
        name = name.partition(":")[0]
    return name == "localhost" or name.endswith(".localhost") or is_loopback(name)


def _bearer_token(scope: Mapping[str, Any]) -> str | None:
    authorization = _header(scope, b"authorization")
    if authorization is None:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer" and credentials.strip():
        return credentials.strip()
    return None
