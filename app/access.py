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
        if presented is None or not hmac.compare_digest(presented.encode(), token.encode()):
            return TOKEN_REQUIRED
        return None
    if unix_socket:
        return None
    client = scope.get("client")
    return None if client and is_loopback(client[0]) else LOOPBACK_ONLY


def _bearer_token(scope: Mapping[str, Any]) -> str | None:
    for name, value in scope.get("headers", ()):
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").strip().partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return credentials.strip()
            return None
    return None
