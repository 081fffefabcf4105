"""uvicorn without its command line: its package's __init__ imports uvicorn.main, and with it
click and the supervisors' multiprocessing (pickle, lzma...), 1.2 MiB of resident memory that
pidone, which builds its Config and Server itself, never runs (issue 25)."""

from __future__ import annotations

import importlib.util
import sys


def register_uvicorn() -> None:
    """Register the uvicorn package with what its __init__ exports that pidone and uvicorn's
    own modules use (Config, Server, __version__: uvicorn.lifespan imports Config from the
    package), without running that __init__. Its submodules import as usual. Nothing to do when
    something imported uvicorn already. tests/test_http_weight.py checks the pinned __init__
    exports nothing else that is used."""
    if "uvicorn" in sys.modules:
        return
    spec = importlib.util.find_spec("uvicorn")
    assert spec is not None, "uvicorn is a dependency of pidone"
    package = importlib.util.module_from_spec(spec)
    sys.modules["uvicorn"] = package
    try:
        from uvicorn._version import __version__
        from uvicorn.config import Config
        from uvicorn.server import Server
    except BaseException:
        del sys.modules["uvicorn"]  # a later `import uvicorn` runs the real __init__
        raise
    package.__version__, package.Config, package.Server = __version__, Config, Server  # type: ignore[attr-defined]
