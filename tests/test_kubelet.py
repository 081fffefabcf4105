"""The pods of deploy/kubernetes/ run as a kubelet runs them (tests/kubelet.py) in the tests'
container engine: their probes never fail while the workload runs and a real Prometheus scrapes
it as the manifests say; deleting a pod turns /readyz 503 before the workload hears SIGTERM and
ends it within the grace period with the workload's status; with a shared PID namespace a pause
container is PID 1 and pidone, a subreaper, still reaps the orphans; a hung workload fails its
liveness probe and the container is restarted."""

from __future__ import annotations

import json
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from conftest import ROOT, scrape_with
from engine import Engine
from kubelet import (HttpProbe, Pod, logged_at, probe_once, read_pod, read_pod_monitors,
                     scrape_config)
from observe import wait_until
from prometheus_server import PrometheusServer

MANIFESTS = ROOT / "deploy" / "kubernetes"
DEPLOYMENT = MANIFESTS / "deployment.yaml"
SHARED_PID = MANIFESTS / "shared-process-namespace.yaml"
POD_MONITOR = MANIFESTS / "podmonitor.yaml"

SPEED_UP = 5
"""The one place where the manifests' timings are overridden, so that a pod's life takes
seconds: every probe period and initial delay, terminationGracePeriodSeconds, pidone's
--term-delay, --stop-timeout and --grace (PodSpec.scaled) and the PodMonitor's interval run
SPEED_UP times faster than written. Probe timeouts and thresholds stay as written. Every number
is still read from the manifests."""
TOKEN = "stand-in-secret"
"""The data of the Secret `pidone-token` the manifests mount."""
WORKLOAD_ON_SIGTERM = "got SIGTERM"
"""What the zombie factory, the manifests' workload, prints when SIGTERM reaches it."""
LIST_PROCESSES = """
import json, os
found = []
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        continue
    name = stat[stat.index("(") + 1:stat.rindex(")")]
    found.append([int(pid), int(stat[stat.rindex(")") + 2:].split()[1]), name])
print(json.dumps(found))
"""
"""Every process of the container's PID namespace as [pid, ppid, name], run in the container."""


@pytest.fixture(scope="session")
def pause_image(engine: Engine, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The pause container's image: Debian's static catatonit, in its pause mode (-P)."""
    context = tmp_path_factory.mktemp("pause")
    shutil.copy(shutil.which("catatonit") or "/usr/bin/catatonit", context / "catatonit")
    return engine.build("local/pause:catatonit", context=context, network="none", dockerfile=(
        'FROM scratch\nCOPY catatonit /catatonit\nENTRYPOINT ["/catatonit", "-P"]\n'))


@pytest.fixture
def run_pod(engine: Engine, pidone_image: str, base_image: str,
            pause_image: str) -> Iterator[Callable[[Path], Pod]]:
    """Start the pod of a manifest (scaled by SPEED_UP); whatever is left is removed after."""
    pods: list[Pod] = []
    # No registry here: the manifests' images are these local ones.
    images = {"pidone:demo": pidone_image, "busybox:1.36": base_image}

    def run(manifest: Path) -> Pod:
        pod = Pod(engine, read_pod(manifest).scaled(SPEED_UP), images,
                  {"pidone-token": {"token": TOKEN}}, pause_image)
        pods.append(pod)
        return pod

    yield run
    for pod in pods:
        pod.remove()


def pidone_api(pod: Pod) -> httpx.Client:
    """pidone's API in the pod's app container, with the Secret's token."""
    app = pod.containers["app"].spec
    return httpx.Client(base_url=f"http://127.0.0.1:{pod.port(app, 'pidone')}", timeout=10,
                        headers={"Authorization": f"Bearer {TOKEN}"})


def wait_until_ready(pod: Pod, timeout: float = 60) -> None:
    """Until the kubelet's readiness probe of the app has passed."""
    app = pod.containers["app"]
    wait_until(lambda: any(result.ok for result in app.readiness), timeout,
               f"the readiness probe to pass:\n{app.container.logs()}")


class FirstFailure:
    """Asks `path` every 20 ms from its own thread, as an endpoints watcher would, and notes
    when it first fails."""

    def __init__(self, port: int, path: str) -> None:
        self.at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(port, path), daemon=True)
        self._thread.start()

    def _watch(self, port: int, path: str) -> None:
        probe = HttpProbe(path, port, 0, 0, timeout=2, failure_threshold=1)
        while not self._stop.wait(0.02):
            result = probe_once(port, probe)
            if not result.ok:
                self.at = result.at
                return

    def stop(self) -> float | None:
        self._stop.set()
        self._thread.join()
        return self.at


def test_liveness_never_fails_while_the_workload_runs_and_prometheus_scrapes(
        run_pod: Callable[[Path], Pod], tmp_path: Path) -> None:
    pod = run_pod(DEPLOYMENT)
    app = pod.containers["app"]
    scrape = scrape_config(pod, read_pod_monitors(POD_MONITOR))
    prometheus = PrometheusServer(tmp_path, [scrape["target"]], scrape["interval"] / SPEED_UP,
                                  scrape["metrics_path"])
    try:
        prometheus.wait_for('up{job="pidone"}', 1, timeout=60)
        # Orphans reaped, and the count stored by Prometheus: the workload runs as it should.
        wait_until(lambda: (prometheus.value("pidone_zombies_reaped_total") or 0) > 0, 60,
                   "Prometheus to store a reaped orphan")
        threshold = app.spec.liveness.failure_threshold
        wait_until(lambda: len(app.liveness) > threshold, 60,
                   f"{threshold + 1} liveness probes")
    finally:
        prometheus.stop()
    assert [result for result in app.liveness if not result.ok] == []
    assert app.restarts == 0


@pytest.mark.parametrize("manifest", [DEPLOYMENT, SHARED_PID], ids=lambda path: path.stem)
def test_deletion_turns_readyz_503_before_sigterm_and_ends_within_the_grace_period(
        run_pod: Callable[[Path], Pod], manifest: Path) -> None:
    pod = run_pod(manifest)
    app = pod.containers["app"]
    wait_until_ready(pod)
    watcher = FirstFailure(pod.port(app.spec, app.spec.readiness.port), app.spec.readiness.path)
    ended = pod.delete()["app"]
    turned_503 = watcher.stop()
    heard = logged_at(app.container, WORKLOAD_ON_SIGTERM)
    logs = app.container.logs()
    assert turned_503 is not None and heard is not None, logs
    term_delay = float(next(arg for arg in app.spec.command if arg.startswith("--term-delay="))
                       .partition("=")[2])
    # /readyz fails as soon as the kubelet's SIGTERM arrives; the workload hears of it
    # --term-delay later, while the endpoints drain.
    assert ended.term_sent <= turned_503 < heard, logs
    assert heard - ended.term_sent >= term_delay, logs
    # pidone's way out fits in the grace period: no SIGKILL, and the workload's own status (0).
    assert not ended.killed, logs
    assert ended.finished - ended.term_sent < pod.spec.grace_period
    assert ended.exit_code == 0, logs


def test_a_prestop_hook_runs_before_sigterm(run_pod: Callable[[Path], Pod],
                                            tmp_path: Path) -> None:
    """No manifest has a preStop hook (--term-delay does what a `sleep` hook is used for):
    the Deployment with one added shows the stand-in runs it first, as the kubelet does."""
    documents = list(yaml.safe_load_all(DEPLOYMENT.read_text()))
    (app_spec,) = [c for doc in documents if doc["kind"] == "Deployment"
                   for c in doc["spec"]["template"]["spec"]["containers"] if c["name"] == "app"]
    app_spec["lifecycle"] = {"preStop": {"exec": {"command": [
        "sh", "-c", "echo preStop hook > /proc/1/fd/1"]}}}
    manifest = tmp_path / "with-pre-stop.yaml"
    manifest.write_text(yaml.safe_dump_all(documents))
    pod = run_pod(manifest)
    app = pod.containers["app"]
    wait_until_ready(pod)
    ended = pod.delete()["app"]
    # The hook and the workload write to the same pipe (pidone's stdout): its order is theirs.
    lines = app.container.engine.docker("logs", app.container.id).stdout.splitlines()
    assert lines.index("preStop hook") < next(
        index for index, line in enumerate(lines) if WORKLOAD_ON_SIGTERM in line), lines
    assert (ended.killed, ended.exit_code) == (False, 0)


def test_with_a_shared_process_namespace_pause_is_pid1_and_pidone_reaps_the_orphans(
        run_pod: Callable[[Path], Pod]) -> None:
    pod = run_pod(SHARED_PID)
    app = pod.containers["app"]
    wait_until_ready(pod)
    with pidone_api(pod) as api:
        status = api.get("/status").json()
        assert (status["pid1"], status["subreaper"], status["reaps_orphans"]) == (False, True, True)
        pidone = status["pid"]
        # The pause container is PID 1 of the pod, and the sidecar sees pidone's processes.
        assert app.container.exec("cat", "/proc/1/cmdline").stdout.split("\0")[0] == "/catatonit"
        sidecar = pod.containers["sidecar"].container
        assert "pidone" in sidecar.exec("cat", f"/proc/{pidone}/cmdline").stdout

        def orphans() -> list[list]:
            """pidone's children other than the workload: the orphans it adopted."""
            found = json.loads(app.container.exec("python3", "-c", LIST_PROCESSES).stdout)
            assert [p for p in found if p[1] == 1] == [], f"orphans of pause: {found}"
            return [p for p in found if p[1] == pidone and p[0] != status["child"]["pid"]]

        wait_until(lambda: orphans() != [], 60, "an orphan re-parented to pidone")
        reaped = ("pidone_zombies_reaped_total", ())
        wait_until(lambda: scrape_with(api)[reaped] >= 3, 60,
                   "pidone to reap three orphans")
    ended = pod.delete()
    assert (ended["app"].killed, ended["app"].exit_code) == (False, 0), app.container.logs()


def test_a_hung_workload_fails_liveness_and_the_container_is_restarted(
        run_pod: Callable[[Path], Pod]) -> None:
    pod = run_pod(DEPLOYMENT)
    app = pod.containers["app"]
    hung = app.container
    wait_until_ready(pod)
    with pidone_api(pod) as api:
        assert api.post("/signal/STOP").status_code == 200
    liveness = app.spec.liveness
    wait_until(lambda: app.restarts == 1, liveness.period * (liveness.failure_threshold + 2)
               + pod.spec.grace_period + 60, "the kubelet to restart the container")
    failed = [result.detail for result in app.liveness if not result.ok]
    assert failed == ["503"] * liveness.failure_threshold
    (kill,) = app.kills
    assert kill.finished - kill.term_sent <= pod.spec.grace_period + 2, hung.logs()
    assert app.container.id != hung.id
    wait_until(lambda: app.liveness[-1].ok, 60, "the new container to pass its liveness probe")

