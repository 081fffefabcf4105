"""Size: what each init adds to an image, on disk and as the compressed layer a registry sends."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from bench.context import Bench
from bench.results import CaseResult, Measurement

GZIP_LEVEL = 6
"""gzip's own default, and what image layers are packed with."""


def run(bench: Bench) -> CaseResult:
    disk = Measurement("on disk", "MiB")
    layer = Measurement("tar.gz", "MiB")
    for init in bench.inits:
        if init.ships is not None:
            disk.add(init.name, bytes_on_disk(init.ships) / 2**20)
            layer.add(init.name, gzipped_tar_bytes(init.ships) / 2**20)
    return CaseResult(
        "Size",
        "What an image must hold for each init that stands alone: the peers' binaries as Debian "
        "ships them (tini and dumb-init linked against the image's C library; `tini-static` "
        "is some 0.8 MiB), and the bundle's whole directory, its Python and C library included. "
        "Sizes of the files' contents; tar.gz as `tarfile` packs them at gzip's default level (6).",
        [disk, layer])


def files_of(shipped: Path) -> list[Path]:
    return [shipped] if shipped.is_file() else sorted(p for p in shipped.rglob("*") if p.is_file())


def bytes_on_disk(shipped: Path) -> int:
    return sum(path.stat().st_size for path in files_of(shipped))


def gzipped_tar_bytes(shipped: Path) -> int:
    packed = io.BytesIO()
    with tarfile.open(fileobj=packed, mode="w:gz", compresslevel=GZIP_LEVEL) as tar:
        tar.add(shipped, arcname=shipped.name)
    return packed.tell()
