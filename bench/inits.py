"""The inits under test, and how to start each with a command after it."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from dataclasses import dataclass

PEERS = ("tini", "dumb-init", "catatonit")
REFERENCE = "tini"
"""pidone's ratios are taken to this peer."""


@dataclass(frozen=True)
class Init:
    name: str
    argv: tuple[str, ...]
    """The command line before the child's command."""
    http_port: int | None = None
    """Where its /metrics answers on 127.0.0.1, when it serves one."""
    ships: Path | None = None
    """What an image must hold to run it, when that stands alone: a binary, or the bundle."""

    @property
    def is_pidone(self) -> bool:
        return self.name.startswith("pidone")

    def metrics_url(self) -> str:
        assert self.http_port is not None, f"{self.name} serves no HTTP"
        return f"http://127.0.0.1:{self.http_port}/metrics"


def free_port() -> int:
    """A loopback port nobody listens on now (the kernel's pick)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def pidone(command: str, http: bool) -> Init:
    """pidone as its installed command runs it; with HTTP on, on a fresh loopback port."""
    command = (command,)
    if not http:
        return Init("pidone", (*command, "--http", "off", "--"))
    port = free_port()
    return Init("pidone+http", (*command, "--http", f"127.0.0.1:{port}", "--"), port)


def bundle(home: Path) -> Init:
    """The self-contained bundle built into `home`, with HTTP on (its default) on a fresh port."""
    port = free_port()
    return Init("pidone bundle", (str(home / "bin" / "pidone"), "--http", f"127.0.0.1:{port}", "--"),
                port, ships=home)


def peer(name: str, path: str) -> Init:
    return Init(name, (name, "--"), ships=Path(path).resolve())


def installed_peers() -> list[Init]:
    return [peer(name, path) for name in PEERS if (path := shutil.which(name))]


FLOOR = "python3 floor"
"""pidone's start-up, memory and idle targets are ratios to this baseline of the same run."""


def floor(python: str) -> Init:
    """A baseline, not an init to use: bench/floor_init.py, the least a Python PID 1 can do."""
    return Init(FLOOR, (python, str(Path(__file__).with_name("floor_init.py"))))


def prometheus_baseline(python: str) -> Init:
    """Not an init: prometheus_client's start_http_server serving pidone's metrics."""
    port = free_port()
    script = str(Path(__file__).with_name("prometheus_baseline.py"))
    return Init("prometheus_client", (python, script, str(port)), port)
