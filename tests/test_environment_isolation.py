"""The workload's Python settings are the workload's: the installed `pidone` command reads none of
them (its interpreter runs isolated, -I), and the child gets the environment exactly as pidone
was given it.

Python images set `ENV PYTHONPATH=/srv` with their code in /srv/app, and pidone's own import
package is called `app` too. Each case below is such an image's environment, with files that
would leave a mark (a file written, a line on stderr) if pidone's interpreter ran them."""

from __future__ import annotations

import os
import signal
import sys
import sysconfig
from collections.abc import Callable
from pathlib import Path

import pytest

from conftest import INSTALLED, ROOT
from observe import children_of, wait_until


LEAVE_A_MARK = 'open({marker!r}, "w").write(__name__)\nprint("{name} ran in", __name__, flush=True)\n'


def package(name: str) -> Callable[[Path, Path], dict[str, str]]:
    """A directory on PYTHONPATH holding `name` (a package, or a module when it ends in .py)."""

    def make(directory: Path, marker: Path) -> dict[str, str]:
        path = directory / "srv" / (name if name.endswith(".py") else f"{name}/__init__.py")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(LEAVE_A_MARK.format(marker=str(marker), name=name))
        return {"PYTHONPATH": str(directory / "srv")}

    return make


def user_site(directory: Path, marker: Path) -> dict[str, str]:
    """A usercustomize in the user site of PYTHONUSERBASE (pip install --user puts code there)."""
    scheme = f"{os.name}_user"
    site = Path(sysconfig.get_path("purelib", scheme, vars={"userbase": str(directory)}))
    site.mkdir(parents=True)
    (site / "usercustomize.py").write_text(LEAVE_A_MARK.format(marker=str(marker),
                                                                name="usercustomize"))
    return {"PYTHONUSERBASE": str(directory)}


def startup_file(directory: Path, marker: Path) -> dict[str, str]:
    """PYTHONSTARTUP, read by an interactive interpreter, which PYTHONINSPECT makes of any."""
    startup = directory / "startup.py"
    startup.write_text(LEAVE_A_MARK.format(marker=str(marker), name="PYTHONSTARTUP"))
    return {"PYTHONSTARTUP": str(startup), "PYTHONINSPECT": "1"}


def variables(**settings: str) -> Callable[[Path, Path], dict[str, str]]:
    return lambda directory, marker: settings


SETTINGS = [
    pytest.param(package("app"), id="an-app-package-on-PYTHONPATH"),
    pytest.param(package("sitecustomize.py"), id="sitecustomize-on-PYTHONPATH"),
    pytest.param(package("uvicorn"), id="a-uvicorn-of-its-own-on-PYTHONPATH"),
    pytest.param(user_site, id="usercustomize-in-the-user-site"),
    pytest.param(startup_file, id="PYTHONSTARTUP-and-PYTHONINSPECT"),
    pytest.param(variables(PYTHONHOME="/nonexistent"), id="PYTHONHOME-elsewhere"),
    pytest.param(variables(PYTHONWARNINGS="error"), id="PYTHONWARNINGS-error"),
    pytest.param(variables(PYTHONVERBOSE="1", PYTHONDEVMODE="1"), id="PYTHONVERBOSE-PYTHONDEVMODE"),
    pytest.param(variables(PYTHONSAFEPATH="1", PYTHONDONTWRITEBYTECODE="1",
                           PYTHONASYNCIODEBUG="1", PYTHONMALLOC="debug"), id="more-PYTHON-variables"),
]


@pytest.mark.parametrize("setting", SETTINGS)
def test_the_workloads_python_settings_reach_the_child_and_not_pidone(setting, tmp_path,
                                                                      start_pidone) -> None:
    marker = tmp_path / "pidone-ran-workload-code"
    env = setting(tmp_path, marker)
    running = start_pidone(["sleep", "600"], env=env, pidone=INSTALLED)  # /livez answers
    wait_until(lambda: children_of(running.init_pid), 10, "the child to start")
    child = children_of(running.init_pid)[0]
    given = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    environ = Path(f"/proc/{child.pid}/environ").read_bytes()
    assert dict(entry.decode().split("=", 1) for entry in environ.split(b"\0") if entry) == given

    running.send(signal.SIGTERM)
    assert running.wait() == 128 + signal.SIGTERM, running.stderr
    assert running.stderr == ""
    assert not marker.exists(), f"pidone's interpreter ran {marker.read_text()}"


def test_the_child_still_gets_its_pythonpath(start_init, tmp_path) -> None:
    """The same `app` package that pidone must not import is the workload's to import."""
    marker = tmp_path / "imported"
    env = package("app")(tmp_path, marker)
    # -S: a Python of the workload's, without the venv's finder for pidone's own `app`.
    running = start_init([*INSTALLED, "--http", "off", "--", sys.executable, "-S", "-c",
                          "import app; raise SystemExit(5)"], env=env, cwd=tmp_path)
    assert running.wait() == 5, running.stderr
    assert marker.read_text() == "app"
    assert running.stderr == ""
