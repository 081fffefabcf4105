"""pidone serves HTTP without OpenSSL in its process (app/no_openssl.py): the stand-in `ssl`
holds what the pinned uvicorn, anyio, prometheus_client and asyncio read, and a new pin that
reads more fails here, loudly, before it fails in a pod."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, scrape

HTTP_SIDE = ("app.server", "app.front", "app.guard", "app.quiet_server", "app.web",
             "app.metrics", "uvicorn", "uvicorn.protocols.http.h11_impl", "starlette.applications",
             "prometheus_client")
OPENSSL = ("libssl", "libcrypto")


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


def test_the_http_side_imports_against_the_stand_in() -> None:
    """Every module of the HTTP side imports with the stand-in: a name it lacks raises (its
    __getattr__), and nothing loads the real _ssl or _hashlib."""
    program = ("import sys; from app.no_openssl import keep_out; keep_out(); "
               f"import importlib; [importlib.import_module(m) for m in {HTTP_SIDE!r}]; "
               "import asyncio, http.client, urllib.request, hashlib, random; hashlib.sha256(b'x'); "
               "print(sorted(m for m in ('_ssl', '_hashlib') if sys.modules.get(m)))")
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_the_stand_in_refuses_tls_by_name() -> None:
    from app.no_openssl import stand_in

    ssl = stand_in()
    with pytest.raises(AttributeError, match="no_openssl"):
        ssl.create_default_context  # noqa: B018  # what making TLS would read first
    with pytest.raises(RuntimeError, match="no TLS"):
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
