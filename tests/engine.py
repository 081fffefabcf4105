"""A private Docker engine for the tests that build and run images for real.

Other engineers may run a daemon on this machine at the same time and no image registry is
reachable, so the engine belongs to one test session alone: its own `dockerd` with its data,
state, pid file, API socket and containerd namespace under one temporary directory; no
firewall rules, no forwarding, no bridge (containers run with `--network host` or `none`);
base images made here with mmdebstrap from the host's apt sources. It is stopped by its PID
and its directory removed at the end, containers and images with it.

For a test module (fixtures registered by tests/conftest.py):

    engine        session fixture: the running Engine (skips the test when not root)
    base_image    session fixture: tag of a Debian bookworm image with Python 3.11, standing in
                  for the Dockerfile's PYTHON_IMAGE (python:3.12-slim-bookworm)
    pidone_image  session fixture: tag of this checkout's image, built from the Dockerfile

    engine.build(tag, target=..., build_args=..., dockerfile=..., context=...)   docker build
    engine.start(image, *command, options=[...]) -> Container (detached)
    engine.run(image, *command, options=[...]) -> CompletedProcess (to its end, removed)
    engine.docker(*args), engine.compose(*args, files=..., env=...)
    make_base_image(engine, tag, packages=[...])    another Debian bookworm base (minbase + packages)
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

DOCKER = "/usr/bin/docker"
"""The CLI of Debian's docker.io, the daemon's own version (a newer CLI elsewhere on PATH may
have dropped the legacy builder that builds without buildx)."""

BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "python-is-python3", "ca-certificates")
HOST_CA_CERTIFICATES = Path("/usr/local/share/ca-certificates")
"""The host's extra CA certificates: HTTPS to the package index may go through a re-signing
proxy, and pip in a build trusts it only if the image trusts them too."""

NETWORKS = ("host", "none")
"""The only networks a container may use: no bridge, no traffic off this machine's loopback."""


class EngineError(AssertionError):
    """A docker command failed: its command line, status and output."""


@dataclass
class Engine:
    """A dockerd of our own under `root`; `env` points the docker CLI and compose at it."""

    root: Path
    daemon: subprocess.Popen
    env: dict[str, str]

    def docker(self, *args: str, timeout: float = 120, check: bool = True,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
        """The docker CLI against this engine; EngineError with the output when it fails."""
        return self._command([DOCKER, *args], timeout=timeout, check=check, input=input)

    def compose(self, *args: str, files: Sequence[Path], project: str = "pidone",
                env: Mapping[str, str] | None = None,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """docker-compose (1.29, Debian's) with `files`, in the directory of the first one."""
        options = [f"--file={path}" for path in files]
        return self._command(["docker-compose", f"--project-name={project}", *options, *args],
                             timeout=timeout, check=True, env=env, cwd=files[0].parent)

    def build(self, tag: str, *, context: Path | None = ROOT, dockerfile: Path | str | None = None,
              target: str | None = None, build_args: Mapping[str, str] | None = None,
              network: str = "host", timeout: float = 300) -> str:
        """docker build; `dockerfile` is a path or the Dockerfile's text (then without a context
        when `context` is None: COPY --from=IMAGE only). Returns the tag."""
        assert network in NETWORKS, network
        args = ["build", f"--tag={tag}", f"--network={network}"]
        if target:
            args.append(f"--target={target}")
        args += [f"--build-arg={name}={value}" for name, value in (build_args or {}).items()]
        text = None
        if isinstance(dockerfile, str):
            text = dockerfile
            args += ["--file=-", str(context)] if context else ["-"]
        else:
            args += [f"--file={dockerfile}"] if dockerfile else []
            args.append(str(context))
        self.docker(*args, timeout=timeout, input=text)
        return tag

    def start(self, image: str, *command: str, options: Sequence[str] = ()) -> Container:
        """docker run --detach: on --network none unless `options` say host."""
        cid = self.docker("run", "--detach", *self._network(options), *options, image, *command)
        return Container(self, cid.stdout.strip())

    def run(self, image: str, *command: str, options: Sequence[str] = (),
            timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """docker run --rm to its end: its status, stdout and stderr (check them yourself)."""
        return self.docker("run", "--rm", *self._network(options), *options, image, *command,
                           timeout=timeout, check=False)

    def stop(self) -> None:
        """Remove every container, stop the daemon by its PID, remove its directory."""
        try:
            if self.daemon.poll() is None:
                containers = self.docker("ps", "--all", "--quiet").stdout.split()
                if containers:
                    self.docker("rm", "--force", "--volumes", *containers)
        finally:
            _end(self.daemon)
            _end_managed_containerd(self.root)
            _unmount_under(self.root)
            shutil.rmtree(self.root)

    def _command(self, argv: list[str], *, timeout: float, check: bool, input: str | None = None,
                 env: Mapping[str, str] | None = None,
                 cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(argv, env={**self.env, **(env or {})}, cwd=cwd or self.root,
                              input=input, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise EngineError(f"{' '.join(argv)} -> {done.returncode}\n{done.stdout}\n{done.stderr}")
        return done

    @staticmethod
    def _network(options: Sequence[str]) -> list[str]:
        given = [o.split("=", 1)[1] for o in options if o.startswith("--network=")]
        assert all(n in NETWORKS for n in given), f"--network must be one of {NETWORKS}"
        return [] if given else ["--network=none"]


@dataclass
class Container:
    """A container started by Engine.start."""

    engine: Engine
    id: str

    def inspect(self, template: str) -> str:
        return self.engine.docker("inspect", f"--format={template}", self.id).stdout.strip()

    def poll(self) -> int | None:
        """None while it runs, else its exit code: as Popen.poll, for conftest's waits."""
        running, code = self.inspect("{{.State.Running}} {{.State.ExitCode}}").split()
        return None if running == "true" else int(code)

    @property
    def returncode(self) -> int | None:
        return self.poll()

    def exec(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.engine.docker("exec", self.id, *argv, check=check)

    def kill(self, signal_name: str) -> None:
        self.engine.docker("kill", f"--signal={signal_name}", self.id)

    def logs(self) -> str:
        """What the container wrote, stdout and stderr together."""
        done = self.engine.docker("logs", self.id)
        return done.stdout + done.stderr

    def wait_for_log(self, text: str, timeout: float = 30) -> str:
        """Poll the logs until `text` shows: the workload's acknowledgement."""
        deadline = time.monotonic() + timeout
        while text not in (logs := self.logs()):
            if time.monotonic() > deadline:
                raise AssertionError(f"no {text!r} in the logs within {timeout}s:\n{logs}")
            time.sleep(0.1)
        return logs

    def stop(self, timeout: float = 10) -> int:
        """docker stop (SIGTERM, SIGKILL `timeout` seconds later): the exit code."""
        self.engine.docker("stop", f"--time={timeout:g}", self.id, timeout=timeout + 60)
        return int(self.inspect("{{.State.ExitCode}}"))


def start_engine(root: Path, timeout: float = 60) -> Engine:
    """dockerd with everything under `root`, returned once it answers."""
    socket = root / "docker.sock"
    config = root / "daemon.json"
    config.write_text("{}\n")  # not /etc/docker/daemon.json: nothing of the host's daemon
    log = (root / "dockerd.log").open("w")
    daemon = subprocess.Popen(
        ["dockerd", f"--config-file={config}", f"--data-root={root / 'data'}",
         f"--exec-root={root / 'exec'}", f"--pidfile={root / 'dockerd.pid'}", f"--host=unix://{socket}",
         # A containerd at the default socket (someone else's) would be shared: own namespaces.
         f"--containerd-namespace={root.name}", f"--containerd-plugins-namespace={root.name}-plugins",
         "--iptables=false", "--ip-forward=false", "--bridge=none"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
    log.close()
    env = {**os.environ, "DOCKER_HOST": f"unix://{socket}", "DOCKER_BUILDKIT": "0",
           "DOCKER_CONFIG": str(root / "cli"), "COMPOSE_DOCKER_CLI_BUILD": "0"}
    engine = Engine(root, daemon, env)
    deadline = time.monotonic() + timeout
    while engine.docker("version", check=False, timeout=30).returncode != 0:
        if daemon.poll() is not None or time.monotonic() > deadline:
            output = (root / "dockerd.log").read_text()[-3000:]
            engine.stop()
            raise EngineError(f"dockerd did not start (status {daemon.poll()}):\n{output}")
        time.sleep(0.1)
    return engine


def make_base_image(engine: Engine, tag: str, packages: Sequence[str] = BASE_PACKAGES) -> str:
    """A minimal Debian bookworm (minbase: no Python) with `packages`, from the host's apt
    sources: mmdebstrap's tarball piped into docker import. With ca-certificates among the
    packages, the image trusts the host's extra CA certificates too."""
    sources = [path for path in [Path("/etc/apt/sources.list"),
                                 *sorted(Path("/etc/apt/sources.list.d").glob("*.list")),
                                 *sorted(Path("/etc/apt/sources.list.d").glob("*.sources"))]
               if path.is_file() and path.stat().st_size]
    options = [f"--dpkgopt=path-exclude=/usr/share/{folder}/*"
               for folder in ("doc", "man", "info", "locale")]
    if packages:
        options.append(f"--include={','.join(packages)}")
    if "ca-certificates" in packages and list(HOST_CA_CERTIFICATES.glob("*.crt")):
        options.append(f'--customize-hook=cp {HOST_CA_CERTIFICATES}/*.crt "$1{HOST_CA_CERTIFICATES}/"'
                       ' && chroot "$1" update-ca-certificates >&2')
    strap = subprocess.Popen(
        ["mmdebstrap", "--quiet", "--variant=minbase", *options, "bookworm", "-", *map(str, sources)],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        imported = subprocess.run([DOCKER, "import", "-", tag], stdin=strap.stdout, env=engine.env,
                                  capture_output=True, text=True, timeout=600)
    finally:
        strap.stdout.close()
        _, strap_errors = strap.communicate(timeout=600)
    if strap.returncode != 0 or imported.returncode != 0:
        raise EngineError(f"mmdebstrap -> {strap.returncode}: {strap_errors.decode()[-3000:]}\n"
                          f"docker import -> {imported.returncode}: {imported.stderr}")
    return tag


def _end(proc: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM by PID, SIGKILL when it lingers."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _end_managed_containerd(root: Path) -> None:
    """dockerd stops the containerd it started; one left by a killed dockerd is ended by PID."""
    pidfile = root / "exec" / "containerd" / "containerd.pid"
    try:
        pid = int(pidfile.read_text())
        if str(root) in Path(f"/proc/{pid}/cmdline").read_text():
            os.kill(pid, signal.SIGKILL)
    except (FileNotFoundError, ValueError, ProcessLookupError):
        pass


def _unmount_under(root: Path) -> None:
    """Mounts a stopped daemon left under `root` (deepest first), so that rmtree stays inside."""
    mounts = [line.split()[1] for line in Path("/proc/self/mounts").read_text().splitlines()]
    for target in sorted((m for m in mounts if m.startswith(f"{root}/")), key=len, reverse=True):
        subprocess.run(["umount", "--lazy", target], capture_output=True, timeout=30)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    if os.geteuid() != 0:
        pytest.skip("the container engine tests start dockerd, which needs root (make test as root)")
    missing = [tool for tool in ("dockerd", DOCKER, "docker-compose", "mmdebstrap")
               if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"not installed: {', '.join(missing)} (make test installs the Debian packages "
                    "docker.io, docker-compose and mmdebstrap)")
    running = start_engine(Path(tempfile.mkdtemp(prefix="pidone-engine-")))
    yield running
    running.stop()


@pytest.fixture(scope="session")
def base_image(engine: Engine) -> str:
    return make_base_image(engine, "local/python:3.11-bookworm")


@pytest.fixture(scope="session")
def pidone_image(engine: Engine, base_image: str) -> str:
    """This checkout's image, tagged `pidone` as the README builds it."""
    return engine.build("pidone", build_args={"PYTHON_IMAGE": base_image})


WORKLOAD_APP = ("ENV PYTHONPATH=/srv PYTHONWARNINGS=error\n"
                "RUN mkdir -p /srv/app && echo 'WHO = \"the workload\"' > /srv/app/__init__.py\n")
"""Dockerfile lines of a Python image's workload: its own `app` package (pidone's import package
has that name too) in /srv, on its PYTHONPATH. pidone's interpreter must see none of it."""


def documented_dockerfile(page: str, after: str) -> str:
    """The first ```dockerfile block of `page` (README.md, docs/images.md) after the line that
    contains `after`: the recipes users copy are the ones built."""
    text = (Path(__file__).resolve().parent.parent / page).read_text()
    block = re.search(r"```dockerfile\n(.*?)```", text[text.index(after):], re.S)
    assert block, f"no dockerfile block after {after!r} in {page}"
    return block.group(1)

