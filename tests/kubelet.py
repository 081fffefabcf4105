"""A kubelet stand-in: the pods of deploy/kubernetes/ run in the tests' container engine as a
kubelet runs them, so that `make test` proves the manifests rather than only validating them.

What it takes from a manifest, and does as the kubelet does (kubernetes.io, "Pod Lifecycle",
"Configure Liveness, Readiness and Startup Probes", "Container Lifecycle Hooks"):
- each container's image, command (the image's ENTRYPOINT replaced), args (its CMD replaced),
  env, ports, securityContext (the pod's and the container's: user, group, fsGroup, read-only
  root, capabilities, no privilege escalation), memory and CPU limits, and secret volumes
  (files of mode `defaultMode`, group `fsGroup`, mounted read-only at `mountPath`);
- `shareProcessNamespace: true`: a pause container is started first and is PID 1 of the
  pod's PID namespace, every container joins it (`--pid=container:ID`). catatonit in its pause
  mode (`-P`) stands in for the `pause` image, as podman's pods use it;
- httpGet probes from outside the container, each with its own `initialDelaySeconds`,
  `periodSeconds`, `timeoutSeconds` and `failureThreshold`: a new connection per probe, a
  status from 200 to 399 is a success. The startup probe runs first and alone; liveness and
  readiness begin once it has passed. `failureThreshold` startup or liveness failures in a row
  restart the container (killed as below, then a new one: its restart count goes up);
- deleting the pod, or killing a container: the preStop exec hook, then SIGTERM (docker kill),
  then SIGKILL once `terminationGracePeriodSeconds` have passed since the start (the hook's
  time counts). Readiness is probed until the container has exited; liveness stops.

Where it departs from a cluster, on purpose: the pod's network is the host's (the tests' engine
has no bridge), so each container port is moved to a free loopback port, told to pidone through
PIDONE_HTTP (an env entry added to the container's); probes and scrapes use that port. Images
are mapped to local ones (no registry). Docker's HEALTHCHECK is off, as the kubelet ignores it.
"""

from __future__ import annotations

import dataclasses
import datetime
import http.client
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from conftest import free_loopback_port
from engine import Container, Engine, EngineError

PROBE_DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "timeoutSeconds": 1,
                  "failureThreshold": 3}
"""Kubernetes' defaults for the fields a probe leaves out."""
DEFAULT_GRACE_PERIOD = 30
PROBES = ("startup", "liveness", "readiness")
RESTARTING_PROBES = ("startup", "liveness")
"""The probes whose failures restart the container."""
RECHECK = 0.05
"""Seconds between looks at whether a probe may run (startup passed, or not yet)."""
PACE_FLAGS = ("--term-delay=", "--stop-timeout=", "--grace=")
"""pidone's flags that are durations of a pod's way out: scaled with the pod's timings."""


@dataclass(frozen=True)
class HttpProbe:
    """An httpGet probe, with Kubernetes' defaults for what the spec leaves out."""

    path: str
    port: int | str
    initial_delay: float
    period: float
    timeout: float
    failure_threshold: int

    @classmethod
    def from_spec(cls, spec: Mapping) -> HttpProbe:
        assert set(spec) - set(PROBE_DEFAULTS) == {"httpGet"}, f"only httpGet probes: {spec}"
        fields = {**PROBE_DEFAULTS, **spec}
        return cls(spec["httpGet"]["path"], spec["httpGet"]["port"], fields["initialDelaySeconds"],
                   fields["periodSeconds"], fields["timeoutSeconds"], fields["failureThreshold"])


@dataclass(frozen=True)
class ContainerSpec:
    """One container of a pod spec, as far as the kubelet acts on it."""

    name: str
    image: str
    command: tuple[str, ...]
    args: tuple[str, ...]
    env: Mapping[str, str]
    ports: Mapping[str, int]
    """containerPort by port name (a port without a name under its number)."""
    startup: HttpProbe | None
    liveness: HttpProbe | None
    readiness: HttpProbe | None
    pre_stop: tuple[str, ...]
    """The preStop exec hook's command; empty when there is none."""
    mounts: Mapping[str, str]
    """mountPath by volume name (read-only)."""
    options: tuple[str, ...]
    """docker run options for its securityContext and limits."""

    def port_number(self, port: int | str) -> int:
        return port if isinstance(port, int) else self.ports[port]


@dataclass(frozen=True)
class PodSpec:
    """A pod template of a manifest: what the kubelet is given."""

    name: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    containers: tuple[ContainerSpec, ...]
    grace_period: float
    share_process_namespace: bool
    secrets: Mapping[str, tuple[str, int]]
    """(secretName, defaultMode) by volume name."""
    fs_group: int | None

    def scaled(self, speed_up: float) -> PodSpec:
        """The same pod with every period, delay and grace period, and pidone's own durations of
        leaving (--term-delay, --stop-timeout, --grace), divided by `speed_up`. Probe timeouts
        and thresholds stay: they are tolerances, not paces."""
        def faster(probe: HttpProbe | None) -> HttpProbe | None:
            return probe and dataclasses.replace(
                probe, initial_delay=probe.initial_delay / speed_up, period=probe.period / speed_up)

        def flag(arg: str) -> str:
            for name in PACE_FLAGS:
                if arg.startswith(name):
                    return f"{name}{float(arg[len(name):]) / speed_up:g}"
            return arg

        containers = tuple(dataclasses.replace(
            c, command=tuple(map(flag, c.command)), args=tuple(map(flag, c.args)),
            startup=faster(c.startup), liveness=faster(c.liveness),
            readiness=faster(c.readiness)) for c in self.containers)
        return dataclasses.replace(self, containers=containers,
                                   grace_period=self.grace_period / speed_up)


def read_pod(manifest: Path) -> PodSpec:
    """The pod template of the one Deployment in `manifest`."""
    (deployment,) = [doc for doc in yaml.safe_load_all(manifest.read_text())
                     if doc and doc["kind"] == "Deployment"]
    template = deployment["spec"]["template"]
    spec = template["spec"]
    security = spec.get("securityContext", {})
    secrets = {volume["name"]: (volume["secret"]["secretName"],
                                volume["secret"].get("defaultMode", 0o644))
               for volume in spec.get("volumes", []) if "secret" in volume}
    return PodSpec(
        name=deployment["metadata"]["name"],
        labels=template["metadata"].get("labels", {}),
        annotations=template["metadata"].get("annotations", {}),
        containers=tuple(read_container(c, security) for c in spec["containers"]),
        grace_period=spec.get("terminationGracePeriodSeconds", DEFAULT_GRACE_PERIOD),
        share_process_namespace=spec.get("shareProcessNamespace", False),
        secrets=secrets,
        fs_group=security.get("fsGroup"),
    )


def read_container(spec: Mapping, pod_security: Mapping) -> ContainerSpec:
    hook = spec.get("lifecycle", {}).get("preStop")
    assert hook is None or set(hook) == {"exec"}, f"only exec preStop hooks: {hook}"
    return ContainerSpec(
        name=spec["name"],
        image=spec["image"],
        command=tuple(spec.get("command", ())),
        args=tuple(spec.get("args", ())),
        env={entry["name"]: entry["value"] for entry in spec.get("env", [])},
        ports={port.get("name", str(port["containerPort"])): port["containerPort"]
               for port in spec.get("ports", [])},
        startup=probe_of(spec, "startupProbe"),
        liveness=probe_of(spec, "livenessProbe"),
        readiness=probe_of(spec, "readinessProbe"),
        pre_stop=tuple(hook["exec"]["command"]) if hook else (),
        mounts={mount["name"]: mount["mountPath"] for mount in spec.get("volumeMounts", [])},
        options=run_options(pod_security, spec.get("securityContext", {}),
                            spec.get("resources", {}).get("limits", {})),
    )


def probe_of(container: Mapping, kind: str) -> HttpProbe | None:
    return HttpProbe.from_spec(container[kind]) if kind in container else None


def run_options(pod: Mapping, container: Mapping, limits: Mapping) -> tuple[str, ...]:
    """docker run's options for a securityContext (the container's over the pod's) and limits."""
    security = {**pod, **container}
    options = []
    if "runAsUser" in security:
        assert not (security.get("runAsNonRoot") and security["runAsUser"] == 0), "runAsNonRoot"
        options.append(f"--user={security['runAsUser']}:{security.get('runAsGroup', 0)}")
    if "fsGroup" in pod:
        options.append(f"--group-add={pod['fsGroup']}")
    if security.get("readOnlyRootFilesystem"):
        options.append("--read-only")
    options += [f"--cap-drop={cap}" for cap in security.get("capabilities", {}).get("drop", [])]
    if security.get("allowPrivilegeEscalation") is False:
        options.append("--security-opt=no-new-privileges")
    if "memory" in limits:
        options.append(f"--memory={int(quantity(limits['memory']))}")
    if "cpu" in limits:
        options.append(f"--cpus={quantity(limits['cpu']):g}")
    return tuple(options)


def quantity(text: str | int) -> float:
    """A Kubernetes quantity: 500m -> 0.5, 128Mi -> 134217728."""
    suffixes = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "k": 1e3, "M": 1e6, "G": 1e9}
    text = str(text)
    for suffix, factor in sorted(suffixes.items(), key=lambda item: -len(item[0])):
        if text.endswith(suffix):
            return float(text[:-len(suffix)]) * factor
    return float(text)


def read_pod_monitors(manifest: Path) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(manifest.read_text())
            if doc and doc["kind"] == "PodMonitor"]


@dataclass(frozen=True)
class ProbeResult:
    at: float
    """time.time() when the answer (or the failure) came."""
    ok: bool
    detail: str


def probe_once(port: int, probe: HttpProbe) -> ProbeResult:
    """One httpGet as the kubelet makes it: a new connection, `timeoutSeconds` for all of it."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=probe.timeout)
    try:
        connection.request("GET", probe.path, headers={"User-Agent": "kube-probe/stand-in",
                                                       "Connection": "close"})
        status = connection.getresponse().status
        return ProbeResult(time.time(), 200 <= status < 400, str(status))
    except OSError as error:
        return ProbeResult(time.time(), False, repr(error))
    finally:
        connection.close()


@dataclass
class RunningContainer:
    """A container of the pod as it runs now, and what the kubelet saw of it."""

    spec: ContainerSpec
    container: Container
    started: threading.Event
    """Set once this container's startup probe has passed (at once without one)."""
    restarts: int = 0
    startup: list[ProbeResult] = field(default_factory=list)
    liveness: list[ProbeResult] = field(default_factory=list)
    readiness: list[ProbeResult] = field(default_factory=list)
    kills: list[Kill] = field(default_factory=list)


@dataclass(frozen=True)
class Kill:
    """How a container was ended: when SIGTERM went, whether SIGKILL was needed, its status."""

    term_sent: float
    killed: bool
    exit_code: int
    finished: float
    """When the engine saw it exit (time.time() scale)."""


class Pod:
    """A pod spec running in `engine`; `images` maps the manifest's images to local tags,
    `secrets` gives each Secret's data. Its container ports are served on `ports` (container
    port -> free loopback port)."""

    def __init__(self, engine: Engine, spec: PodSpec, images: Mapping[str, str],
                 secrets: Mapping[str, Mapping[str, str]], pause_image: str | None = None) -> None:
        self.engine = engine
        self.spec = spec
        self.images = images
        self.ports = {number: free_loopback_port()
                      for c in spec.containers for number in c.ports.values()}
        self.workdir = Path(tempfile.mkdtemp(prefix=f"kubelet-{spec.name}-"))
        self.volumes = {name: self._write_secret(name, secrets[secret], mode)
                        for name, (secret, mode) in spec.secrets.items()}
        self.pause: Container | None = None
        if spec.share_process_namespace:
            assert pause_image, "shareProcessNamespace needs a pause image"
            self.pause = engine.start(pause_image, options=[f"--name={spec.name}-pause"])
        self.containers = {c.name: RunningContainer(c, self._start(c, 0), self._started(c))
                           for c in spec.containers}
        self._deleting = threading.Event()
        self._removed = False
        self._lock = threading.Lock()
        self._probers = [threading.Thread(target=self._probe_loop, args=(name, kind), daemon=True)
                         for name, running in self.containers.items()
                         for kind in PROBES if getattr(running.spec, kind)]
        for prober in self._probers:
            prober.start()

    def port(self, container: ContainerSpec, port: int | str) -> int:
        """The loopback port that serves `port` of `container`."""
        return self.ports[container.port_number(port)]

    def delete(self) -> dict[str, Kill]:
        """Delete the pod as the kubelet does: liveness stops, every container is killed at once
        (preStop, SIGTERM, SIGKILL at the grace period), readiness is probed until each has
        exited; then the pause container goes. How each container ended, by name."""
        self._deleting.set()
        ends: dict[str, Kill] = {}
        killers = [threading.Thread(target=lambda n=name: ends.__setitem__(n, self._kill(n)))
                   for name in self.containers]
        with self._lock:  # a restart under way finishes first; then its new container goes
            for killer in killers:
                killer.start()
            for killer in killers:
                killer.join()
        for prober in self._probers:
            prober.join()
        if self.pause:
            self.engine.docker("rm", "--force", self.pause.id)
        return ends

    def remove(self) -> None:
        """Whatever is left of the pod, gone (for a test's cleanup; delete() is the kubelet's)."""
        self._deleting.set()
        self._removed = True
        ids = [running.container.id for running in self.containers.values()]
        self.engine.docker("rm", "--force", *ids, *([self.pause.id] if self.pause else []),
                           check=False)
        for prober in self._probers:
            prober.join(timeout=30)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _start(self, spec: ContainerSpec, restarts: int) -> Container:
        options = [f"--name={self.spec.name}-{spec.name}-{restarts}", "--network=host",
                   "--no-healthcheck", *spec.options]
        if self.pause:
            options.append(f"--pid=container:{self.pause.id}")
        env = dict(spec.env)
        if spec.ports:
            # The one departure: the pod's network is the host's, so pidone is moved to a free
            # loopback port (see the module's docstring).
            (number,) = set(spec.ports.values())
            env["PIDONE_HTTP"] = f"127.0.0.1:{self.ports[number]}"
        options += [f"--env={name}={value}" for name, value in env.items()]
        options += [f"--mount=type=bind,source={self.volumes[name]},target={path},readonly"
                    for name, path in spec.mounts.items()]
        command = list(spec.args)
        if spec.command:
            options.append(f"--entrypoint={spec.command[0]}")
            command = [*spec.command[1:], *command]
        return self.engine.start(self.images[spec.image], *command, options=options)

    def _write_secret(self, volume: str, data: Mapping[str, str], mode: int) -> Path:
        """A secret volume: one file per key, of `defaultMode`, group fsGroup (as the kubelet's)."""
        directory = self.workdir / volume
        directory.mkdir(mode=0o755)
        for key, value in data.items():
            path = directory / key
            path.write_text(value)
            os.chown(path, 0, self.spec.fs_group if self.spec.fs_group is not None else 0)
            path.chmod(mode)
        return directory

    @staticmethod
    def _started(spec: ContainerSpec) -> threading.Event:
        started = threading.Event()
        if spec.startup is None:
            started.set()
        return started

    def _probe_loop(self, name: str, kind: str) -> None:
        """One probe of one container, every `periodSeconds` after `initialDelaySeconds`, until
        the pod is deleted (readiness: until the container has exited too); the startup probe
        until it passes, the others once it has. Startup or liveness failing `failureThreshold`
        times in a row restarts the container."""
        running = self.containers[name]
        probe: HttpProbe = getattr(running.spec, kind)
        port = self.port(running.spec, probe.port)
        failures = 0
        next_at = time.monotonic() + probe.initial_delay
        while True:
            delay = max(0.0, next_at - time.monotonic())
            if kind in RESTARTING_PROBES:
                if self._deleting.wait(delay):
                    return
            else:
                time.sleep(delay)
                if self._deleting.is_set() and self._exited(running.container):
                    return
            if running.started.is_set() == (kind == "startup"):
                next_at = time.monotonic() + RECHECK
                continue
            next_at = time.monotonic() + probe.period
            result = probe_once(port, probe)
            getattr(running, kind).append(result)
            failures = 0 if result.ok else failures + 1
            if kind == "startup" and result.ok:
                running.started.set()
            if kind in RESTARTING_PROBES and failures >= probe.failure_threshold:
                with self._lock:
                    if self._deleting.is_set():
                        return
                    self._restart(name)
                failures = 0
                next_at = time.monotonic() + probe.initial_delay

    def _exited(self, container: Container) -> bool:
        """Whether the container has exited (or was removed by remove())."""
        if self._removed:
            return True
        try:
            return container.poll() is not None
        except EngineError:
            return True

    def _restart(self, name: str) -> None:
        """What the kubelet does when liveness or startup fails: kill the container, start anew."""
        running = self.containers[name]
        running.kills.append(self._kill(name))
        running.started = self._started(running.spec)
        running.container = self._start(running.spec, running.restarts + 1)
        running.restarts += 1

    def _kill(self, name: str) -> Kill:
        """preStop, SIGTERM, and SIGKILL when the grace period is over (the hook's time counts)."""
        running = self.containers[name]
        container = running.container
        deadline = time.monotonic() + self.spec.grace_period
        if running.spec.pre_stop and container.poll() is None:
            container.engine.docker("exec", container.id, *running.spec.pre_stop, check=False,
                                    timeout=self.spec.grace_period)
        term_sent = time.time()
        container.engine.docker("kill", "--signal=TERM", container.id, check=False)
        while container.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        killed = container.poll() is None
        if killed:
            container.engine.docker("kill", "--signal=KILL", container.id, check=False)
            container.engine.docker("wait", container.id)
        finished = container_time(container.inspect("{{.State.FinishedAt}}"))
        return Kill(term_sent, killed, int(container.inspect("{{.State.ExitCode}}")), finished)


def container_time(stamp: str) -> float:
    """An engine's RFC 3339 time stamp (nanoseconds) as time.time() would give it."""
    day, _, rest = stamp.rstrip("Z").partition("T")
    clock, _, fraction = rest.partition(".")
    moment = datetime.datetime.fromisoformat(f"{day}T{clock}+00:00")
    return moment.timestamp() + float(f"0.{fraction or 0}")


def logged_at(container: Container, text: str) -> float | None:
    """When the engine received the container's first line holding `text` (None: not yet)."""
    done = container.engine.docker("logs", "--timestamps", container.id)
    for line in (done.stdout + done.stderr).splitlines():
        stamp, _, rest = line.partition(" ")
        if text in rest:
            return container_time(stamp)
    return None


def scrape_config(pod: Pod, monitors: list[dict]) -> dict:
    """Prometheus' scrape settings for `pod` as the manifests give them: the prometheus.io
    annotations (port, path) and the PodMonitor that selects the pod (the same port by name and
    path, and the interval). Returns the target, metrics_path and interval."""
    annotations = pod.spec.annotations
    assert annotations.get("prometheus.io/scrape") == "true", annotations
    (monitor,) = [m for m in monitors if m["spec"]["selector"]["matchLabels"].items()
                  <= dict(pod.spec.labels).items()]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    (container,) = [c for c in pod.spec.containers if endpoint["port"] in c.ports]
    assert container.port_number(endpoint["port"]) == int(annotations["prometheus.io/port"])
    assert endpoint["path"] == annotations["prometheus.io/path"]
    return {"target": f"127.0.0.1:{pod.port(container, endpoint['port'])}",
            "metrics_path": endpoint["path"],
            "interval": quantity_seconds(endpoint["interval"])}


def quantity_seconds(duration: str) -> float:
    """A Prometheus duration of seconds or minutes: 15s -> 15, 1m -> 60."""
    units = {"s": 1, "m": 60}
    return float(duration[:-1]) * units[duration[-1]]

