"""The self-contained bundle (/opt/pidone from the Dockerfile's bundle stage) as PID 1 of images
without Python: Debian bookworm minbase, a root without a shell or a C library, Debian bullseye
(an older C library), and an image whose own Python must not reach pidone, nor pidone's it.

Each root is a directory standing in for an image; the bundle is built in a bookworm root with
Python by the stage's own RUN lines, as `docker build --target bundle` builds it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bench.probe import compile_probe
from conftest import ROOT, scrape
from dockerfile_stages import copy_into, copy_sources, read_stages
from rootfs import CONTAINER_PATH, DebianRoot, exec_in, in_root, make_static_root, run_in_root

pytestmark = pytest.mark.skipif(os.geteuid() != 0,
                                reason="the bundle's roots need root (mmdebstrap, mount, chroot)")

HOME = Path("/opt/pidone")
PIDONE = [str(HOME / "bin" / "pidone")]
PROBE = "/usr/local/bin/probe"
BUILD_PACKAGES = ("python3", "python3-pip", "patchelf")
"""The build root: Debian's Python and pip stand in for PYTHON_IMAGE's; patchelf is what the
stage installs with apt-get."""
ORPHANS = 50


@dataclass(frozen=True)
class Roots:
    build: Path
    """bookworm with Python: the bundle is built here, and a workload with its own Python runs here."""
    bookworm: Path
    bullseye: Path
    static: Path


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
def roots() -> Iterator[Roots]:
    """The roots, made once: mmdebstrap downloads all three at once while the wheels build."""
    base = Path(tempfile.mkdtemp(prefix="pidone-roots-"))
    debian = {"build": DebianRoot("bookworm", base / "build", BUILD_PACKAGES),
              "bookworm": DebianRoot("bookworm", base / "bookworm"),
              "bullseye": DebianRoot("bullseye", base / "bullseye")}
    try:
        wheels = make_wheelhouse(base / "wheels")
        probe = compile_probe(base, static=True)
        build_bundle(debian["build"].wait(), wheels)
        made = Roots(debian["build"].path, debian["bookworm"].wait(), debian["bullseye"].wait(),
                     make_static_root(debian["bookworm"].path, base / "static"))
        for root in (made.bookworm, made.bullseye, made.static):
            subprocess.run(["cp", "-a", str(made.build / "opt" / "pidone"), str(root / "opt")],
                           check=True)
        for root in (made.build, made.bookworm, made.bullseye, made.static):
            shutil.copy(probe, root / PROBE.lstrip("/"))
        yield made
    finally:
        for root in debian.values():
            root.stop()
        shutil.rmtree(base, ignore_errors=True)


def make_wheelhouse(wheels: Path) -> Path:
    """What the Dockerfile's build stage leaves in /wheels: pidone and its pinned dependencies."""
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-cache-dir",
                           "-c", "constraints.txt", "--wheel-dir", str(wheels), "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return wheels


def build_bundle(root: Path, wheels: Path) -> None:
    """The bundle stage's COPY and RUN lines, in the build root (its apt-get is mmdebstrap's)."""
    stage = next(stage for stage in read_stages() if stage.name == "bundle-build")
    for args in stage.all("COPY"):
        sources, destination = copy_sources(args)
        if "--from=build" in args:
            assert sources == ["/wheels"], args
            shutil.copytree(wheels, root / destination.lstrip("/"))
            continue
        for source in sources:
            copy_into(ROOT / source, root / destination.lstrip("/"), source)
    env = {"PATH": CONTAINER_PATH, "HOME": "/root"}
    for run in stage.all("RUN"):
        if "apt-get install" in run:
            assert set(run.split("--no-install-recommends")[1].split("&&")[0].split()) \
                <= set(BUILD_PACKAGES), run
            continue
        done = run_in_root(root, run, env)
        assert done.returncode == 0, f"RUN {run}\n{done.stdout}\n{done.stderr}"


def test_the_bundle_stage_builds_from_the_images_pinned_wheels() -> None:
    stages = {stage.name: stage for stage in read_stages()}
    assert any("-c constraints.txt --wheel-dir /wheels" in run for run in stages["build"].all("RUN"))
    assert "--from=build /wheels /wheels" in stages["bundle-build"].all("COPY")
    assert any(f"--wheels /wheels {HOME}" in run for run in stages["bundle-build"].all("RUN"))
    bundle = stages["bundle"]
    assert bundle.base == "scratch"
    assert bundle.all("COPY") == [f"--from=bundle-build {HOME} {HOME}"], "nothing but the bundle"


def test_the_bundle_carries_its_loader_and_never_rereads_its_sources(roots) -> None:
    bundle = roots.build / "opt" / "pidone"
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
    for path in [roots.build / "opt" / "pidone", *(roots.build / "opt" / "pidone").rglob("*")]:
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
    library = roots.build / "srv" / "workload-lib" / "app"
    library.mkdir(parents=True, exist_ok=True)
    (library / "__init__.py").write_text("")
    (roots.build / "srv" / "report.py").write_text(REPORT_ENVIRONMENT)
    env = {"PATH": CONTAINER_PATH, "PYTHONPATH": "/srv/workload-lib", "PYTHONHOME": "/usr"}
    running = start_init([*in_root(roots.build, env), *PIDONE, "--http", "off", "--",
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
