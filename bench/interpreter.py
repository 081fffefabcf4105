"""An interpreter and a pidone like a deployed pidone's, for every Python column of the benchmarks.

`pip install -e` (make venv) adds a finder that every start of the venv's interpreter
imports: about as long again as the interpreter's own start. An installed pidone (the
image's wheel) pays nothing of the kind, so the harness runs pidone, the floor and the
`python3 -c pass` baseline on a throwaway venv whose only .pth lists plain paths: the project
and the development venv's site-packages (a path line adds to sys.path and imports nothing).
pidone runs as its installed command does: bin/pidone with the venv's interpreter, its
modules byte-compiled as pip compiles them at install time.
"""

from __future__ import annotations

import compileall
import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def deployed_python(directory: Path) -> str:
    """Make the venv in `directory`, with pidone's command in its bin/; return its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    python = directory / "bin" / "python"
    ask = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([str(python), "-c", ask], capture_output=True, text=True,
                             check=True).stdout.strip()
    paths = [str(ROOT), sysconfig.get_paths()["purelib"]]
    (Path(purelib) / "pidone-bench.pth").write_text("\n".join(paths) + "\n")
    shebang, script = (ROOT / "bin" / "pidone").read_text().split("\n", 1)
    command = directory / "bin" / "pidone"
    # As an install leaves the #!python line: the venv's interpreter, the flags kept (-I).
    command.write_text(f"#!{python}{shebang.removeprefix('#!python')}\n{script}")
    command.chmod(0o755)
    # Even where PYTHONDONTWRITEBYTECODE is set: pip writes these when it installs pidone.
    compileall.compile_dir(ROOT / "app", quiet=1)
    return str(python)


def pidone_command(python: str) -> str:
    """The installed `pidone` beside a deployed_python."""
    return str(Path(python).with_name("pidone"))
