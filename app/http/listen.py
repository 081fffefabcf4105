"""The HTTP side's listening socket: every address (dual-stack) or one, or a unix socket file
made with its own mode, replacing only a stale socket, removed when pidone leaves. Used by the
HTTP thread, so that the core starts without waiting for the socket module."""

from __future__ import annotations

import os
import socket
import stat

from app.http.address import ListenAddress
from app.config import DEFAULT_HTTP_MODE

BACKLOG = 1024
FILE_DESCRIPTORS = 4096
"""The soft limit pidone asks for; app/http/front.py's budget of connections is what it gets, less
a reserve, so that accept() does not run out of descriptors before room is made."""
FEWEST_FILE_DESCRIPTORS = 16
"""Below this open-files limit the HTTP side is not started: standard streams, the listening
socket, the event loop's selector and self-pipe, a module being imported and a few clients.
With less (`prlimit --nofile=6`), asyncio fails half-way through making its loop."""


class BindError(Exception):
    """The listening socket could not be made: one line on stderr, the child runs on."""


def listen(address: ListenAddress, unix_mode: int = DEFAULT_HTTP_MODE) -> socket.socket:
    """A bound, listening socket for `address`; ":PORT" is dual-stack IPv6 when the host has
    IPv6, else IPv4 0.0.0.0; a unix socket gets the permissions `unix_mode`. Bound here rather
    than by uvicorn, which exits on bind errors."""
    if address.unix_path is not None:
        return _listen_unix(address.unix_path, unix_mode)
    try:
        sock, target = _unbound_socket(address)
    except OSError as failure:
        raise BindError(failure.strerror or str(failure)) from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(target)
        sock.listen(BACKLOG)
    except OSError as failure:
        sock.close()
        raise BindError(failure.strerror or str(failure)) from None
    return sock


def _listen_unix(path: str, mode: int) -> socket.socket:
    """A unix socket at `path`, made with `mode` (the umask for the bind: a chmod afterwards
    would leave a moment with the wider mode, or follow a symlink put there meanwhile)."""
    _remove_stale_socket(path)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Process-wide, but the core and the log writer, which run besides, make no files.
    umask = os.umask(0o777 & ~mode)
    try:
        sock.bind(path)
        sock.listen(BACKLOG)
    except OSError as failure:
        sock.close()
        raise BindError(failure.strerror or str(failure)) from None
    finally:
        os.umask(umask)
    return sock


def _remove_stale_socket(path: str) -> None:
    """Make way at `path` for a new socket when it holds a stale one: a socket nobody listens
    on, left by a pidone that was killed (docker restart). Never another kind of file, and
    never through a symlink: lstat, not stat."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as failure:
        raise BindError(failure.strerror or str(failure)) from None
    if not stat.S_ISSOCK(found.st_mode):
        kind = "a symlink" if stat.S_ISLNK(found.st_mode) else "not a socket"
        raise BindError(f"{path} exists and is {kind}; pidone replaces only a stale socket")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(1.0)  # a listener with a full backlog must not hold pidone up
        try:
            probe.connect(path)
        except ConnectionRefusedError:
            pass  # nobody listens: stale
        except OSError as failure:
            raise BindError(f"{path} is a socket pidone cannot check: "
                            f"{failure.strerror or failure}") from None
        else:
            raise BindError(f"another process listens on {path}")
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass  # gone meanwhile: the bind will tell if something else came
    except OSError as failure:
        raise BindError(f"cannot remove the stale socket {path}: {failure.strerror}") from None


class UnixSocketFile:
    """The socket file pidone made, to remove when it leaves: only if it is still that file."""

    def __init__(self, path: str, identity: tuple[int, int] | None) -> None:
        self.path = path
        self.identity = identity

    @classmethod
    def of(cls, path: str) -> UnixSocketFile:
        return cls(path, _identity(path))

    def remove(self) -> None:
        if self.identity is not None and _identity(self.path) == self.identity:
            try:
                os.unlink(self.path)
            except OSError:
                pass  # leaving anyway; the next pidone replaces a stale socket


def _identity(path: str) -> tuple[int, int] | None:
    try:
        found = os.lstat(path)
    except OSError:
        return None
    return (found.st_dev, found.st_ino) if stat.S_ISSOCK(found.st_mode) else None


def _unbound_socket(address: ListenAddress) -> tuple[socket.socket, object]:
    if address.host is not None:
        family, kind, proto, _, target = socket.getaddrinfo(
            address.host, address.port, type=socket.SOCK_STREAM)[0]
        return socket.socket(family, kind, proto), target
    if socket.has_ipv6:
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            return sock, ("::", address.port)
        except OSError:
            pass  # IPv6 disabled in this container: IPv4 alone
    return socket.socket(socket.AF_INET, socket.SOCK_STREAM), ("0.0.0.0", address.port)


def raise_file_limit() -> int:
    """Raise pidone's own soft RLIMIT_NOFILE to FILE_DESCRIPTORS when the hard limit allows
    (as Go programs do at start), and return the soft limit now in force. A container's soft
    limit is often 1024: a flood of clients then makes accept() fail with EMFILE, and asyncio
    stops accepting for a second at a time, probes included. The child, spawned before, keeps
    the limit it was given."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = FILE_DESCRIPTORS if hard == resource.RLIM_INFINITY else min(hard, FILE_DESCRIPTORS)
    if soft != resource.RLIM_INFINITY and soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass  # not allowed here: the limit stays, and so does the risk above
    return FILE_DESCRIPTORS if soft == resource.RLIM_INFINITY else soft
