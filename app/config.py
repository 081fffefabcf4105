"""The frozen configuration pidone runs with, parsed once from flags and environment."""

from __future__ import annotations

from collections import namedtuple
from types import MappingProxyType

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping

DEFAULT_PORT = 10101
"""Outside Prometheus' 9100-9999 exporter range (all allocated) and the usual app ports."""

DEFAULT_HTTP = f":{DEFAULT_PORT}"
DEFAULT_HTTP_MODE = 0o600
"""A unix socket's permissions: only pidone's user may connect, and so signal the child."""
DEFAULT_GRACE = 3.0
"""Seconds, as s6-overlay's S6_KILL_GRACETIME; pidone leaves at once when nothing is left."""
RESTART_POLICIES = ("never", "on-failure", "always")
DEFAULT_RESTART_MAX = 5
"""Failures in a row after which --restart gives up and pidone leaves with the last status."""

BY_SIGNAL, GROUP, CHILD = "by-signal", "group", "child"
"""The values of Config.signal_target: the default rule (stops to the child's group, the rest
to the child alone, app/core/policy.py), every signal to the group (-g), or to the child (-c)."""


_DEFAULTS = {
    "command": (), "signal_target": BY_SIGNAL, "subreaper": False, "pdeathsig": None,
    "rewrites": MappingProxyType({}), "remap_exit": frozenset(), "verbosity": 0,
    "warn_on_reap": False, "http": DEFAULT_HTTP, "http_mode": DEFAULT_HTTP_MODE, "token": None,
    "grace": DEFAULT_GRACE, "term_delay": 0.0, "stop_timeout": None, "log_format": "text",
    "restart": "never", "restart_max": DEFAULT_RESTART_MAX,
}


class Config(namedtuple("Config", _DEFAULTS, defaults=tuple(_DEFAULTS.values()))):
    """Immutable. A collections.namedtuple (collections comes with `signal` anyway) rather than
    typing.NamedTuple or a dataclass, which would cost the start-up path the import of typing
    (and re) or inspect before the child runs. Fields and defaults: _DEFAULTS; their types:"""

    __slots__ = ()
    command: tuple[str, ...]
    signal_target: str
    subreaper: bool
    pdeathsig: int | None
    rewrites: Mapping[int, int]
    remap_exit: frozenset[int]
    verbosity: int
    warn_on_reap: bool
    http: str
    http_mode: int
    token: str | None
    grace: float
    term_delay: float
    stop_timeout: float | None
    log_format: str
    restart: str
    """One of RESTART_POLICIES."""
    restart_max: int

    def __repr__(self) -> str:
        return f"Config({self.public()!r})"  # never the token

    def public(self) -> dict[str, object]:
        """The effective configuration as a person may see it: never the token."""
        from app.core.signals import signal_name

        return {
            "command": list(self.command),
            "signal_target": self.signal_target,
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
            "restart": self.restart,
            "restart_max": self.restart_max,
        }
