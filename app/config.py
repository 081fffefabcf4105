"""The frozen configuration pidone runs with, parsed once from flags and environment."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

DEFAULT_PORT = 10101
"""Outside Prometheus' 9100-9999 exporter range (all allocated) and the usual app ports."""

DEFAULT_HTTP = f":{DEFAULT_PORT}"
DEFAULT_HTTP_MODE = 0o600
"""A unix socket's permissions: only pidone's user may connect, and so signal the child."""
DEFAULT_GRACE = 3.0
"""Seconds, as s6-overlay's S6_KILL_GRACETIME; pidone leaves at once when nothing is left."""


class Config(NamedTuple):
    """Immutable; a NamedTuple rather than a dataclass, which would cost the start-up path
    the import of `inspect` before the child runs."""

    command: tuple[str, ...]
    single_child: bool = False
    subreaper: bool = False
    pdeathsig: int | None = None
    rewrites: Mapping[int, int] = MappingProxyType({})
    remap_exit: frozenset[int] = frozenset()
    verbosity: int = 0
    warn_on_reap: bool = False
    http: str = DEFAULT_HTTP
    http_mode: int = DEFAULT_HTTP_MODE
    token: str | None = None
    grace: float = DEFAULT_GRACE
    term_delay: float = 0.0
    stop_timeout: float | None = None
    log_format: str = "text"

    def __repr__(self) -> str:
        return f"Config({self.public()!r})"  # never the token

    def public(self) -> dict[str, object]:
        """The effective configuration as a person may see it: never the token."""
        from app.signals import signal_name

        return {
            "command": list(self.command),
            "single_child": self.single_child,
            "subreaper": self.subreaper,
            "pdeathsig": signal_name(self.pdeathsig) if self.pdeathsig else None,
            "rewrites": {
                signal_name(src): (signal_name(dst) if dst else None)
                for src, dst in self.rewrites.items()
            },
            "remap_exit": sorted(self.remap_exit),
            "verbosity": self.verbosity,
            "warn_on_reap": self.warn_on_reap,
            "http": self.http,
            "http_mode": f"{self.http_mode:o}",
            "token_configured": self.token is not None,
            "grace_seconds": self.grace,
            "term_delay_seconds": self.term_delay,
            "stop_timeout_seconds": self.stop_timeout,
            "log_format": self.log_format,
        }
