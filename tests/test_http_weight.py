"""What pidone's HTTP side leaves out of its process (issue 25): OpenSSL (app/http/no_openssl.py: the
stand-in `ssl` holds what the pinned uvicorn, anyio, prometheus_client and asyncio read) and
uvicorn's command line (app/http/lean_uvicorn.py: click, multiprocessing). A new pin that reads more
than they provide fails here, loudly, before it fails in a pod."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
import uvicorn

from conftest import ROOT, scrape

HTTP_SIDE = ("app.http.server", "app.http.front", "app.http.guard", "app.http.quiet_server", "app.http.web",
             "app.http.metrics", "uvicorn", "uvicorn.protocols.http.h11_impl", "starlette.applications",
             "prometheus_client")
OPENSSL = ("libssl", "libcrypto")
LEFT_OUT = ("_ssl", "_hashlib", "uvicorn.main", "click", "multiprocessing")


def openssl_mapped(pid: int) -> list[str]:
    return sorted({line.split()[-1] for line in Path(f"/proc/{pid}/maps").read_text().splitlines()
                   if any(name in line for name in OPENSSL)})


def test_pidone_serves_scrapes_without_openssl_mapped(start_pidone) -> None:
    running = start_pidone(["sleep", "1000"])
    for _ in range(3):
        assert scrape(running)  # the scrape path, its gzip and OpenMetrics variants included
    for accept in ("application/openmetrics-text; version=1.0.0", "*/*"):
        answer = running.http.get("/metrics", headers={"Accept": accept, "Accept-Encoding": "gzip"})
        assert answer.status_code == 200
    assert running.http.get("/processes").status_code == 200
    assert openssl_mapped(running.init_pid) == []


def test_the_http_side_imports_without_what_it_leaves_out() -> None:
    """Every module of the HTTP side imports as the HTTP thread prepares it: a name the stand-in
    `ssl` lacks raises (its __getattr__), and nothing loads what is left out."""
    program = ("import sys; from app.http.no_openssl import keep_out; keep_out(); "
               "from app.http.lean_uvicorn import register_uvicorn; register_uvicorn(); "
               f"import importlib; [importlib.import_module(m) for m in {HTTP_SIDE!r}]; "
               "import uvicorn.lifespan.off, uvicorn.lifespan.on; "
               "import asyncio, http.client, urllib.request, hashlib, random; hashlib.sha256(b'x'); "
               f"print(sorted(m for m in {LEFT_OUT!r} if sys.modules.get(m)))")
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_stand_in_refuses_tls_by_name() -> None:
    from app.http.no_openssl import stand_in

    ssl = stand_in()
    with pytest.raises(AttributeError, match="no_openssl"):
        ssl.create_default_context  # noqa: B018  # what making TLS would read first
    with pytest.raises(RuntimeError, match="no TLS"):
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)


def test_uvicorn_exports_nothing_else_that_its_modules_use() -> None:
    """app/http/lean_uvicorn.py gives the package Config, Server and __version__ without running its
    __init__: that must be all the pinned __init__ binds, apart from the command line."""
    tree = ast.parse(Path(uvicorn.__file__).read_text())
    bound = {alias.asname or alias.name for node in tree.body if isinstance(node, ast.ImportFrom)
             for alias in node.names}
    assert bound == {"__version__", "Config", "Server", "main", "run"}, (
        f"uvicorn {uvicorn.__version__}'s __init__ binds {sorted(bound)}: update app/http/lean_uvicorn.py")
