"""Keep OpenSSL out of pidone's process: pidone serves plain HTTP (TLS belongs to the mesh), and
libssl and libcrypto mapped in cost 4.6 MiB of resident memory in every pod (issue 25).

uvicorn's config and main, anyio and prometheus_client's exposition `import ssl` at the top,
though none of them uses TLS unless asked to; asyncio and http.client import it when they can,
and hashlib loads OpenSSL's digests through _hashlib when it can. Before the HTTP side imports
any of them, `keep_out` registers a stand-in `ssl` that holds what the pinned versions read
when they are imported (constants, and classes for their `isinstance` checks and `except`
clauses) and nothing else: a name it lacks raises an AttributeError that names this module,
and making a TLS context raises. _hashlib it marks missing, so hashlib falls back on CPython's
own digests. tests/test_no_openssl.py fails as soon as a pinned version reads more.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import NoReturn

WHY = "pidone serves plain HTTP and keeps OpenSSL out of its process (app/http/no_openssl.py)"


class SSLError(OSError):
    """Never raised here: no TLS runs. The classes are there for `except` clauses."""


class SSLWantReadError(SSLError):
    pass


class SSLSyscallError(SSLError):
    pass


class Unavailable:
    """What uvicorn, anyio and asyncio name in annotations and `isinstance` checks; never made."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        raise RuntimeError(f"no TLS: {WHY}")


class SSLContext(Unavailable):
    pass


class SSLSocket(Unavailable):
    pass


class SSLObject(Unavailable):
    pass


class TLSVersion(Unavailable):
    pass


def _missing(name: str) -> NoReturn:
    raise AttributeError(f"module 'ssl' has no attribute {name!r}: {WHY}")


def stand_in() -> ModuleType:
    """The `ssl` module pidone's HTTP side sees: the names the pinned libraries read."""
    module = ModuleType("ssl", WHY)
    for value in (SSLError, SSLWantReadError, SSLSyscallError, SSLContext, SSLSocket, SSLObject,
                  TLSVersion):
        setattr(module, value.__name__, value)
    # The values of CPython's ssl module, read for uvicorn's and prometheus_client's defaults.
    module.PROTOCOL_TLS_CLIENT, module.PROTOCOL_TLS_SERVER, module.CERT_NONE = 16, 17, 0
    module.__getattr__ = _missing  # type: ignore[attr-defined]  # PEP 562
    return module


def keep_out() -> None:
    """Register the stand-in `ssl` and mark _hashlib missing, each unless something in this
    process imported it already (then it is mapped in anyway, and the real module serves)."""
    if "ssl" not in sys.modules:
        sys.modules["ssl"] = stand_in()
    if "_hashlib" not in sys.modules:
        sys.modules["_hashlib"] = None  # type: ignore[assignment]  # its import raises ImportError
