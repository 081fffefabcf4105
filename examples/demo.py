"""`make demo`: pidone over the zombie factory on this machine (no Docker), Prometheus if installed.

As root, pidone runs as PID 1 of a new PID namespace (what a container gives it);
otherwise as a child subreaper (-s). Its HTTP side listens on 127.0.0.1 only.
Ctrl-C or SIGTERM stops everything this script started, by PID; so does the end
of DEMO_SECONDS (or --seconds), which the tests use.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.config import DEFAULT_GRACE, DEFAULT_PORT  # noqa: E402
from app.core.prctl import set_parent_death_signal  # noqa: E402
from app.core.procfs import descendants, read_process, read_processes  # noqa: E402

FACTORY = ROOT / "examples" / "zombie-factory.py"
PROMETHEUS_CONFIG = ROOT / "prometheus" / "prometheus.yml"
PROMETHEUS_PORT = 9090
STARTUP_SECONDS = 20.0
STOP_SECONDS = DEFAULT_GRACE + 10.0


class Started:
    """A process this script started, stopped by its PID and never by name."""

    def __init__(self, name: str, argv: list[str], stop_pid: Callable[[], int | None],
                 url: str = "", **popen: object):
        self.name = name
        self.url = url
        # Its own session: Ctrl-C reaches this script alone, which then stops it in order.
        self.proc = subprocess.Popen(argv, cwd=ROOT, start_new_session=True, **popen)
        self._stop_pid = stop_pid

    def stop(self) -> int:
        """SIGTERM; after STOP_SECONDS, SIGKILL for it and everything below it. Its status."""
        if self.proc.poll() is None:
            pid = self._stop_pid()
            try:
                if pid is not None:
                    os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            try:
                return self.proc.wait(STOP_SECONDS)
            except subprocess.TimeoutExpired:
                print(f"demo: {self.name} did not stop in {STOP_SECONDS:g}s: killing it", flush=True)
                kill_tree(self.proc.pid)
        return self.proc.wait()


def main() -> int:
    options = parse_options()
    stop_requested: list[int] = []
    for signo in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signo, lambda signo, _frame: stop_requested.append(signo))

    port = options.port if options.port is not None else free_port(DEFAULT_PORT)
    base = f"http://127.0.0.1:{port}"
    workdir = tempfile.TemporaryDirectory(prefix="pidone-demo-")
    pidone, mode = start_pidone(port)
    started = [pidone]
    healthy = False
    try:
        healthy = show_health(base, pidone, stop_requested)
        prometheus = start_prometheus(port, Path(workdir.name))
        if prometheus is not None:
            started.append(prometheus)
        print_banner(base, mode, prometheus)
        deadline = time.monotonic() + options.seconds if options.seconds else None
        while not stop_requested and pidone.proc.poll() is None:
            if deadline is not None and time.monotonic() >= deadline:
                print(f"demo: {options.seconds:g}s are up", flush=True)
                break
            time.sleep(0.2)
    finally:
        if stop_requested:
            print(f"demo: got {signal.Signals(stop_requested[0]).name}", flush=True)
        print("demo: stopping", flush=True)
        statuses = {item.name: item.stop() for item in reversed(started)}
        workdir.cleanup()
    print("demo: stopped: " + ", ".join(f"{name} exited {code}" for name, code in statuses.items()),
          flush=True)
    return 0 if healthy and statuses["pidone"] == 0 else 1


def parse_options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="demo", description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("DEMO_SECONDS") or 0),
                        help="stop after this many seconds (default: DEMO_SECONDS, or never)")
    parser.add_argument("--port", type=int, default=None,
                        help=f"pidone's port on 127.0.0.1 (default {DEFAULT_PORT}, or a free one)")
    return parser.parse_args()


def start_pidone(port: int) -> tuple[Started, str]:
    pidone = [sys.executable, "-m", "app", "--http", f"127.0.0.1:{port}"]
    workload = ["--", sys.executable, str(FACTORY), "--hup-init-every", "30"]
    if os.geteuid() == 0:
        # --kill-child, and the kernel's parent-death signal on unshare, end the whole namespace
        # should this script itself be killed.
        unshare = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
        proc = Started("pidone", [*unshare, *pidone, *workload], stop_pid=lambda: pid1_of(proc),
                       preexec_fn=dies_with_parent(signal.SIGKILL))
        return proc, "PID 1 of a new PID namespace"
    proc = Started("pidone", [*pidone, "-s", "-p", "TERM", *workload],
                   stop_pid=lambda: proc.proc.pid)
    return proc, "child subreaper (-s): not root, so no PID namespace"


def pid1_of(unshare: Started) -> int | None:
    """pidone's PID as seen from here: unshare --fork's one child (None if there is none)."""
    pid = unshare.proc.pid
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        try:
            children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except FileNotFoundError:
            break
        if children:
            return int(children[0])
        time.sleep(0.01)
    return None


def show_health(base: str, pidone: Started, stop_requested: list[int]) -> bool:
    """Wait for /health to answer and print its answer; False if it never does."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline and not stop_requested and pidone.proc.poll() is None:
        try:
            with urllib.request.urlopen(f"{base}/health", timeout=2) as answer:
                body = json.loads(answer.read())
                print(f"demo: GET /health -> {answer.status} {json.dumps(body)}", flush=True)
                return True
        except urllib.error.HTTPError as answer:
            print(f"demo: GET /health -> {answer.code} {answer.read().decode()}", flush=True)
            return False
        except (OSError, ValueError):
            time.sleep(0.2)
    print(f"demo: pidone's HTTP side did not answer at {base}/health", flush=True)
    return False


def start_prometheus(pidone_port: int, workdir: Path) -> Started | None:
    """Prometheus with prometheus/'s rules, scraping this pidone; None when not installed."""
    binary = shutil.which("prometheus")
    if binary is None:
        print("demo: prometheus is not installed (Debian package prometheus): skipping it")
        return None
    if not PROMETHEUS_CONFIG.is_file():
        print(f"demo: no {PROMETHEUS_CONFIG.relative_to(ROOT)}: skipping prometheus")
        return None
    try:
        import yaml
    except ImportError:
        print("demo: PyYAML is missing (make venv installs it): skipping prometheus")
        return None
    config = yaml.safe_load(PROMETHEUS_CONFIG.read_text())
    config.setdefault("global", {})["scrape_interval"] = "5s"  # livelier graphs for a demo
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / rule) for rule in config.get("rule_files", [])]
    for job in config["scrape_configs"]:
        for static in job.get("static_configs", []):
            static["targets"] = [f"127.0.0.1:{pidone_port}"]
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port(PROMETHEUS_PORT)
    with open(workdir / "prometheus.log", "wb") as log:  # Popen keeps its own copy
        prometheus = Started(
            "prometheus",
            [binary, f"--config.file={workdir / 'prometheus.yml'}",
             f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stop_pid=lambda: prometheus.proc.pid, url=f"http://127.0.0.1:{port}",
            stdout=log, stderr=subprocess.STDOUT, preexec_fn=dies_with_parent(signal.SIGTERM))
    return prometheus


def print_banner(base: str, mode: str, prometheus: Started | None) -> None:
    lines = [
        f"pidone demo: pidone as {mode}, over examples/zombie-factory.py",
        f"  {base}/health     liveness   {base}/readyz   readiness",
        f"  {base}/metrics    Prometheus text",
        f"  {base}/status     the PID 1 situation (loopback needs no token)",
        "  try:",
        f"    curl -s {base}/health",
        f"    curl -s {base}/metrics | grep ^pidone_",
        f"    curl -s {base}/processes | python3 -m json.tool",
        f"    curl -s -X POST {base}/signal/HUP",
    ]
    if prometheus is not None:
        lines += [f"  Prometheus {prometheus.url}/graph?g0.expr=pidone_processes   "
                  f"alerts: {prometheus.url}/alerts",
                  "  (its log and data live in a temporary directory, removed on exit)"]
    lines += ["Ctrl-C stops everything."]
    print("\n".join(lines), flush=True)


def free_port(preferred: int) -> int:
    """`preferred` when nothing listens on it on 127.0.0.1, else a free port the kernel picks."""
    for port in (preferred, 0):
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return probe.getsockname()[1]
    raise OSError("no free port on 127.0.0.1")


def dies_with_parent(signo: int) -> Callable[[], None]:
    """For Popen: the kernel sends `signo` to the new process when this script dies."""
    return lambda: set_parent_death_signal(signo)


def kill_tree(pid: int) -> None:
    """SIGKILL `pid` and its descendants, each checked by start time against PID reuse."""
    below = descendants(pid, read_processes())
    for info in [read_process(pid), *below]:
        if info is None:
            continue
        current = read_process(info.pid)
        if current is not None and current.start_ticks == info.start_ticks:
            try:
                os.kill(info.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


if __name__ == "__main__":
    sys.exit(main())
