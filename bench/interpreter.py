"""An interpreter like a deployed pidone's, for every Python column of the benchmarks.

`pip install -e` (make venv) adds a finder that every start of the venv's interpreter
imports: about as long again as the interpreter's own start. An installed pidone (the
image's wheel) pays nothing of the kind, so the harness runs pidone, the floor and the
`python3 -c pass` baseline on a throwaway venv whose only .pth lists plain paths: the project
and the development venv's site-packages (a path line adds to sys.path and imports nothing).
"""

from __future__ import annotations

import subprocess
import sys
import sysconfig
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def deployed_python(directory: Path) -> str:
    """Make the venv in `directory`; return its interpreter."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(directory)], check=True)
    python = directory / "bin" / "python"
    ask = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    purelib = subprocess.run([str(python), "-c", ask], capture_output=True, text=True,
                             check=True).stdout.strip()
    paths = [str(ROOT), sysconfig.get_paths()["purelib"]]
    (Path(purelib) / "pidone-bench.pth").write_text("\n".join(paths) + "\n")
    return str(python)
