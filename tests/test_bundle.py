"""The self-contained bundle (/opt/pidone from `docker build --target bundle`) as PID 1 of images
without Python: Debian bookworm minbase, a root without a shell or a C library, Debian bullseye
(an older C library), and an image whose own Python must not reach pidone, nor pidone's it.

The bundle is built by the real engine (tests/engine.py) from the Dockerfile. The behaviours
run under `unshare` in roots that stand in for images (a pipe to acknowledge each step, the
init's PID from outside); the recipes of docs/images.md are then built and run in the engine too."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.probe import compile_probe
from conftest import free_loopback_port, scrape
from dockerfile_stages import read_stages
from engine import DOCKER, WORKLOAD_APP, Engine, documented_dockerfile
from observe import wait_until
from rootfs import CONTAINER_PATH, DebianRoot, exec_in, in_root, make_static_root

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="the bundle's roots need root (mmdebstrap, mount, chroot)")

HOME = Path("/opt/pidone")
PIDONE = [str(HOME / "bin" / "pidone")]
PROBE = "/usr/local/bin/probe"
BUNDLE_IMAGE = "pidone-bundle"
"""The tag the README gives it: its recipes say COPY --from=pidone-bundle."""
ORPHANS = 50


@dataclass(frozen=True)
class Roots:
    python: Path
    """The engine's base image (bookworm with Python): a workload with its own Python."""
    bookworm: Path
    bullseye: Path
    static: Path
    probe: Path
    """The C workload, static: it runs in every root."""


@dataclass(frozen=True)
class Image:
    """How a test runs pidone in a root: which root, as which user, read-only or not."""
    root: str
    user: str
    read_only: bool

    def within(self, roots: Roots, env: dict[str, str]) -> list[str]:
        return in_root(getattr(roots, self.root), env, user=self.user, read_only=self.read_only)


WITHOUT_PYTHON = [
    pytest.param(Image("bookworm", "4242:4242", read_only=True), id="bookworm-readonly-uid4242"),
    pytest.param(Image("static", "65532:65532", read_only=True), id="no-shell-no-libc-nonroot"),
    pytest.param(Image("bullseye", "0:0", read_only=False), id="bullseye-glibc2.31-root"),
]


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    directory = Path(tempfile.mkdtemp(prefix="pidone-roots-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="module")
def downloads(scratch: Path) -> Iterator[dict[str, DebianRoot]]:
    """mmdebstrap of bookworm and bullseye, started before the engine builds (they run at once)."""
    started = {suite: DebianRoot(suite, scratch / suite) for suite in ("bookworm", "bullseye")}
    yield started
    for root in started.values():
        root.stop()


@pytest.fixture(scope="module")
def bundle_image(engine: Engine, base_image: str) -> str:
    return engine.build(BUNDLE_IMAGE, target="bundle", build_args={"PYTHON_IMAGE": base_image})


@pytest.fixture(scope="module")
def roots(downloads, bundle_image: str, engine: Engine, base_image: str,
          scratch: Path) -> Roots:
    """The roots, each holding the bundle the engine built and the static C workload."""
    bundle = copy_out(engine, bundle_image, str(HOME), scratch / "bundle")
    made = Roots(export(engine, base_image, scratch / "python"), downloads["bookworm"].wait(),
                 downloads["bullseye"].wait(),
                 make_static_root(downloads["bookworm"].path, scratch / "static"),
                 compile_probe(scratch, static=True))
    for root in (made.python, made.bookworm, made.bullseye, made.static):
        subprocess.run(["cp", "-a", str(bundle), str(root / "opt" / "pidone")], check=True)
        shutil.copy(made.probe, root / PROBE.lstrip("/"))
    return made


def copy_out(engine: Engine, image: str, path: str, target: Path) -> Path:
    """`path` of `image`, copied to `target` as `docker cp` copies it out of a container."""
    container = engine.docker("create", image).stdout.strip()
    try:
        engine.docker("cp", f"{container}:{path}", str(target))
    finally:
        engine.docker("rm", container)
    return target


def export(engine: Engine, image: str, target: Path) -> Path:
    """`image`'s whole file system, unpacked into `target`."""
    container = engine.docker("create", image, "true").stdout.strip()
    archive = target.with_suffix(".tar")
    try:
        engine.docker("export", f"--output={archive}", container, timeout=300)
    finally:
        engine.docker("rm", container)
    target.mkdir()
    subprocess.run(["tar", "-xf", str(archive), "-C", str(target)], check=True)
    archive.unlink()
    return target


def test_the_bundle_stage_builds_from_the_images_pinned_wheels() -> None:
    stages = {stage.name: stage for stage in read_stages()}
    assert any("-c constraints.txt --wheel-dir /wheels" in run for run in stages["build"].all("RUN"))
    assert "--from=build /wheels /wheels" in stages["bundle-build"].all("COPY")
    assert any(f"--wheels /wheels {HOME}" in run for run in stages["bundle-build"].all("RUN"))
    bundle = stages["bundle"]
    assert bundle.base == "scratch"
    assert bundle.all("COPY") == [f"--from=bundle-build {HOME} {HOME}"], "nothing but the bundle"


def test_the_bundle_carries_its_loader_and_never_rereads_its_sources(roots) -> None:
    bundle = roots.static / "opt" / "pidone"
    interpreter = subprocess.run(["patchelf", "--print-interpreter", str(bundle / "bin" / "python3")],
                                 capture_output=True, text=True, check=True).stdout.strip()
    assert interpreter.startswith(f"{HOME}/lib/ld-")
    assert (bundle / interpreter.removeprefix(f"{HOME}/")).is_file()
    sources = list(bundle.glob("lib/python3*/**/*.py"))
    assert len(sources) > 500
    for source in sources:
        cached = list((source.parent / "__pycache__").glob(f"{source.stem}.*.pyc"))
        assert cached, f"{source} has no byte code"
        # PEP 552: flags 0b01 = hash-based, not checked against the source.
        assert int.from_bytes(cached[0].read_bytes()[4:8], "little") == 0b01, cached[0]


def test_no_file_of_the_bundle_is_writable_but_by_its_owner(roots) -> None:
    """A workload running as another user cannot change its init; any user can run it."""
    bundle = roots.static / "opt" / "pidone"
    for path in [bundle, *bundle.rglob("*")]:
        mode = path.lstat().st_mode
        assert not mode & 0o022, f"{path} is writable by group or others ({mode:o})"
        assert path.is_symlink() or mode & 0o004, f"{path} is not readable by others ({mode:o})"


@pytest.mark.parametrize("image", WITHOUT_PYTHON)
def test_exit_status_passes_through(roots, start_init, image: Image) -> None:
    running = start_init([*image.within(roots, {"PATH": CONTAINER_PATH}), *PIDONE, "--http", "off",
                          "--", PROBE, "exit", "7"])
    assert running.wait() == 7, running.stderr


@pytest.mark.parametrize("image", WITHOUT_PYTHON)
def test_reaps_orphans_answers_http_passes_health_and_sigterm(roots, start_pidone,
                                                              image: Image) -> None:
    env = {"PATH": CONTAINER_PATH}
    running = start_pidone([PROBE, "orphans", "{ack}", "0", str(ORPHANS)],
                           within=image.within(roots, env), pidone=PIDONE, stdin=subprocess.PIPE)
    running.proc.stdin.write(b"go")
    running.proc.stdin.flush()
    running.expect_report("start")
    running.expect_report("end")
    assert wait_for_reaped(running, ORPHANS) == ORPHANS

    health = running.http.get("/health")
    assert health.status_code == 200 and health.json()["status"] == "ok", health.text
    # HEALTHCHECK CMD ["/opt/pidone/bin/pidone", "health"]: exec'd in the container, no shell.
    check = exec_in(running.init_pid, [*PIDONE, "health"],
                    {**env, "PIDONE_HTTP": running.url.removeprefix("http://")}, user=image.user)
    assert check.returncode == 0 and check.stdout.startswith("pidone health: ok"), check

    running.send(signal.SIGTERM)
    assert running.wait() == 128 + signal.SIGTERM, running.stderr


def wait_for_reaped(running, count: int, timeout: float = 20.0) -> float:
    """pidone_zombies_reaped_total once it reaches `count` (or what it is at the deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        reaped = scrape(running)[("pidone_zombies_reaped_total", ())]
        if reaped >= count or time.monotonic() > deadline:
            return reaped
        time.sleep(0.05)


REPORT_ENVIRONMENT = """\
import json, os, sys
import app
with open("/proc/self/environ", "rb") as given:
    environ = dict(entry.decode().split("=", 1) for entry in given.read().split(b"\\0") if entry)
report = json.dumps({"environ": environ, "app": app.__file__, "executable": sys.executable})
os.write(int(sys.argv[1]), report.encode() + b"\\n")
"""


def test_a_workload_with_its_own_python_keeps_its_environment(roots, start_init) -> None:
    """Its PYTHONPATH holds a package called `app`, like pidone's, and its PYTHONHOME is its own
    Python's: pidone reads neither, and adds nothing to what the workload gets (no LANG given, so
    not even the C.UTF-8 that Python sets for itself in the C locale)."""
    library = roots.python / "srv" / "workload-lib" / "app"
    library.mkdir(parents=True, exist_ok=True)
    (library / "__init__.py").write_text("")
    (roots.python / "srv" / "report.py").write_text(REPORT_ENVIRONMENT)
    env = {"PATH": CONTAINER_PATH, "PYTHONPATH": "/srv/workload-lib", "PYTHONHOME": "/usr"}
    running = start_init([*in_root(roots.python, env), *PIDONE, "--http", "off", "--",
                          "python3", "/srv/report.py", "{ack}"])
    report = json.loads(running.read_report())
    assert running.wait() == 0, running.stderr
    assert report["environ"] == env
    assert report["app"] == "/srv/workload-lib/app/__init__.py"
    assert report["executable"] == "/usr/bin/python3"


def test_an_images_ld_library_path_cannot_load_its_older_libc_into_pidone(roots,
                                                                          start_pidone) -> None:
    """Bundled libraries are found through DT_RPATH, which comes before LD_LIBRARY_PATH."""
    libc = next(roots.bullseye.glob("lib/*-linux-gnu/libc.so.6"))
    directory = "/" + str(libc.parent.relative_to(roots.bullseye))
    env = {"PATH": CONTAINER_PATH, "LD_LIBRARY_PATH": directory}
    running = start_pidone(["sh", "-c", 'echo "$LD_LIBRARY_PATH" >/dev/fd/{ack}; exec sleep 600'],
                           within=in_root(roots.bullseye, env), pidone=PIDONE)
    assert running.read_report() == directory, "the workload gets the image's LD_LIBRARY_PATH"
    assert running.http.get("/health").status_code == 200
    running.send(signal.SIGTERM)
    assert running.wait() == 128 + signal.SIGTERM, running.stderr


@pytest.fixture(scope="module")
def app_context(roots: Roots, scratch: Path) -> Path:
    """A build context holding `myapp`, the recipes' workload: the static C probe."""
    context = scratch / "context"
    context.mkdir()
    shutil.copy(roots.probe, context / "myapp")
    return context


def test_the_recipe_from_scratch_runs_in_the_engine(engine: Engine, bundle_image: str,
                                                    app_context: Path) -> None:
    recipe = documented_dockerfile("docs/images.md", "**An image without a shell or a C library**")
    assert f"COPY --from={bundle_image} {HOME} {HOME}" in recipe
    image = engine.build("recipe-scratch", context=app_context, network="none", dockerfile=recipe)
    assert engine.run(image, "/myapp", "exit", "7").returncode == 7
    address = f"127.0.0.1:{free_loopback_port()}"
    container = engine.start(image, "/myapp", "pause", options=[
        "--network=host", f"--env=PIDONE_HTTP={address}", "--read-only", "--health-interval=1s"])
    try:
        # The recipe's HEALTHCHECK, exec form: `pidone health` with no shell in the image.
        wait_until(lambda: container.inspect("{{.State.Health.Status}}") == "healthy", 30,
                   "the HEALTHCHECK to pass")
        assert container.stop() == 128 + signal.SIGTERM, container.logs()
    finally:
        engine.docker("rm", "--force", container.id)


def test_the_recipe_for_debian_runs_in_the_engine(engine: Engine, bundle_image: str,
                                                  roots: Roots) -> None:
    """On the bookworm root without Python, imported as an image; the child's environment is
    Docker's alone (PATH, HOSTNAME, HOME), nothing of pidone's."""
    debian = import_root(engine, roots.bookworm, "local/debian:bookworm-minbase")
    recipe = documented_dockerfile("docs/images.md", "**Debian, Ubuntu**")
    recipe = recipe.replace("debian:bookworm-slim", debian)
    image = engine.build("recipe-debian", context=None, network="none", dockerfile=recipe)
    assert engine.run(image, "sh", "-c", "exit 5").returncode == 5
    listed = engine.run(image, "env")
    assert listed.returncode == 0, listed.stderr
    assert sorted(line.split("=")[0] for line in listed.stdout.splitlines()) == \
        ["HOME", "HOSTNAME", "PATH"]

    # A workload's PYTHONPATH with its own `app` package: the bundle's Python reads none of it.
    workload = engine.build("recipe-debian-app", context=None, network="none",
                            dockerfile=f"FROM {image}\n{WORKLOAD_APP}")
    done = engine.run(workload, "sh", "-c", 'echo "$PYTHONPATH"; exit 5')
    assert (done.returncode, done.stdout, done.stderr) == (5, "/srv\n", "")
    address = f"127.0.0.1:{free_loopback_port()}"
    container = engine.start(workload, "sleep", "300",
                             options=["--network=host", f"--env=PIDONE_HTTP={address}"])
    try:
        wait_until(lambda: container.exec(*PIDONE, "health", check=False).returncode == 0, 30,
                   "pidone health to pass with the workload's PYTHONPATH")
        assert container.stop() == 128 + signal.SIGTERM, container.logs()
        assert container.logs() == ""
    finally:
        engine.docker("rm", "--force", container.id)


def import_root(engine: Engine, root: Path, tag: str) -> str:
    """`root`, without the bundle the tests put in it, as an image."""
    archive = subprocess.Popen(["tar", "-C", str(root), "--exclude=./opt/pidone", "-c", "."],
                               stdout=subprocess.PIPE)
    imported = subprocess.run([DOCKER, "import", "-", tag], stdin=archive.stdout,
                              env=engine.env, capture_output=True, text=True, timeout=300)
    archive.stdout.close()
    assert archive.wait() == 0 and imported.returncode == 0, imported.stderr
    return tag
