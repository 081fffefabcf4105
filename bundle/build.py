"""Build /opt/pidone: a Python, pidone and its dependencies that run in an image without Python.

    python3 bundle/build.py [--wheels DIR] [--constraints FILE] [--home PATH] DEST

Run it with the Python to bundle (3.11 or newer, with pip; `ldd` and `patchelf` on PATH). It
copies that interpreter and its standard library, less what pidone never imports, into DEST;
installs pidone (the project this script belongs to, or its wheel from --wheels) and the pinned
dependencies beside them; copies every shared library they load, the C library and its loader
included, and points the interpreter and each library at the copies (`patchelf`), so nothing
outside DEST is loaded. `bin/pidone` runs it all with `#!HOME/bin/python3 -I`.

HOME (default /opt/pidone) is where the bundle will live: the kernel finds the interpreter and
its loader by absolute path, so the bundle runs from HOME only. DEST may be elsewhere (a root
file system being assembled); it is then copied to HOME unchanged.
"""

from __future__ import annotations

import argparse
import compileall
import os
import py_compile
import re
import shutil
import site
import subprocess
import sys
import sysconfig
from collections.abc import Iterable
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
LAUNCHER = Path(__file__).resolve().parent.parent / "bin" / "pidone"
DEFAULT_HOME = Path("/opt/pidone")

PRUNED_STDLIB = {
    # What pidone never imports and costs the most: tests, GUIs, installers, databases.
    "test", "idlelib", "tkinter", "turtledemo", "turtle.py", "ensurepip", "lib2to3",
    "pydoc_data", "distutils", "venv", "unittest", "sqlite3", "curses", "dbm",
    # Not standard library: the distribution's hooks and whatever was installed beside it.
    "site-packages", "dist-packages", "sitecustomize.py", "usercustomize.py",
    "EXTERNALLY-MANAGED", "__pycache__",
}
PRUNED_STDLIB_PATTERNS = ("config-*",)
"""The static library and Makefile for embedding Python: only C builds read them."""

PRUNED_EXTENSIONS = re.compile(
    r"(_tkinter|_sqlite3|_curses|_curses_panel|_dbm|_gdbm|readline|nis|_crypt|ossaudiodev"
    r"|_test\w*|_ctypes_test|_xx\w*|xxlimited\w*|xxsubtype)(\.|$)")
"""Extension modules of the pruned packages, test modules, and those linking libraries pidone
never needs (readline, libnsl, libcrypt)."""

LOADER = re.compile(r"^ld(-linux[\w.-]*|64)\.so\.\d$")
"""The dynamic loader's name, as ldd lists it: ld-linux-x86-64.so.2, ld-linux-aarch64.so.1..."""


class BuildError(Exception):
    """A step failed; the message says which and why."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("dest", type=Path, help="where to assemble the bundle (empty or absent)")
    parser.add_argument("--home", type=Path, default=DEFAULT_HOME,
                        help="where the bundle will live (default %(default)s)")
    parser.add_argument("--wheels", type=Path,
                        help="install offline from this wheelhouse (pidone's wheel and its deps)")
    parser.add_argument("--constraints", type=Path, default=PROJECT / "constraints.txt",
                        help="the runtime pins (default: the project's constraints.txt)")
    args = parser.parse_args(argv)
    try:
        build(args.dest.resolve(), args.home, args.wheels, args.constraints)
    except BuildError as error:
        print(f"bundle: {error}", file=sys.stderr)
        return 1
    return 0


def build(dest: Path, home: Path, wheels: Path | None, constraints: Path) -> None:
    if not home.is_absolute():
        raise BuildError(f"--home must be an absolute path, not {home}")
    if sys.version_info < (3, 11):
        raise BuildError(f"pidone needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    for tool in ("ldd", "patchelf"):
        if shutil.which(tool) is None:
            raise BuildError(f"{tool} not found on PATH")
    if dest.exists() and any(dest.iterdir()):
        raise BuildError(f"{dest} is not empty")
    stdlib = dest / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    copy_interpreter(dest / "bin" / "python3")
    copy_stdlib(Path(sysconfig.get_paths()["stdlib"]), stdlib)
    site_packages = bundled_site_packages(dest, stdlib)
    install_pidone(site_packages, wheels, constraints)
    bundle_libraries(dest, home)
    precompile(stdlib, dest, home)
    write_launcher(dest / "bin" / "pidone", home)
    if dest == home.resolve():
        check_runs(dest / "bin" / "pidone")


def copy_interpreter(target: Path) -> None:
    """The real executable, not a venv's link to it."""
    target.parent.mkdir(parents=True)
    shutil.copy2(os.path.realpath(sys.executable), target)


def copy_stdlib(source: Path, target: Path) -> None:
    def ignored(directory: str, names: list[str]) -> set[str]:
        dropped = {name for name in names if name in PRUNED_STDLIB}
        dropped.update(name for name in names
                       if any(Path(name).match(pattern) for pattern in PRUNED_STDLIB_PATTERNS))
        if Path(directory).name == "lib-dynload":
            dropped.update(name for name in names if PRUNED_EXTENSIONS.match(name))
        return dropped

    # Links followed: a distribution's stdlib links into /etc or beside itself.
    shutil.copytree(source, target, ignore=ignored, symlinks=False)
    if not (target / "lib-dynload").is_dir():
        raise BuildError(f"no lib-dynload in {source}: a layout this script does not know")


def bundled_site_packages(dest: Path, stdlib: Path) -> Path:
    """The directory that `site` of this Python adds for prefix DEST: site-packages upstream,
    dist-packages on Debian. The bundled interpreter computes the same from its own prefix."""
    for candidate in map(Path, site.getsitepackages([str(dest)])):
        if candidate.parent == stdlib:
            return candidate
    raise BuildError(f"this Python's site adds no directory under {stdlib}")


def install_pidone(site_packages: Path, wheels: Path | None, constraints: Path) -> None:
    source = ["--no-index", "--find-links", str(wheels), "pidone"] if wheels else [str(PROJECT)]
    run([sys.executable, "-m", "pip", "install", "--quiet", "--no-cache-dir", "--no-compile",
         "--disable-pip-version-check", "--target", str(site_packages),
         "--constraint", str(constraints), *source], "installing pidone with pip")
    # Console scripts written for the build's Python; bin/pidone replaces them.
    shutil.rmtree(site_packages / "bin", ignore_errors=True)


def bundle_libraries(dest: Path, home: Path) -> None:
    """Copy what the interpreter and extension modules load into lib/, and point every ELF file
    at lib/ with DT_RPATH: searched before LD_LIBRARY_PATH, so an image's LD_LIBRARY_PATH cannot
    slip its own libc or libssl into pidone (DT_RUNPATH comes after it)."""
    lib = dest / "lib"
    interpreter = dest / "bin" / "python3"
    modules = sorted(path for path in lib.rglob("*.so") if path.is_file())
    loader: Path | None = None
    pending, copied = [interpreter, *modules], set[str]()
    while pending:
        for name, path in linked_libraries(pending.pop()):
            if name in copied:
                continue
            copied.add(name)
            shutil.copy2(path, lib / name)
            (lib / name).chmod(0o755)
            if LOADER.match(name):
                loader = lib / name
            pending.append(lib / name)
    if loader is None:
        raise BuildError(f"ldd names no dynamic loader for {interpreter}")
    patchelf(interpreter, "--set-interpreter", str(home / "lib" / loader.name))
    for path in [interpreter, *modules, *(lib / name for name in copied)]:
        if path == loader or path.name == "libc.so.6":
            continue  # they need nothing but each other
        rpath = "$ORIGIN/" + os.path.relpath(lib, path.parent)
        patchelf(path, "--force-rpath", "--set-rpath", rpath.removesuffix("/."))


LDD_LINE = re.compile(r"^\s*(?:(\S+) => )?(/\S+) \(0x[0-9a-f]+\)$")


def linked_libraries(elf: Path) -> Iterable[tuple[str, Path]]:
    """(name as the object asks for it, file ldd found) for every library `elf` loads."""
    done = subprocess.run(["ldd", str(elf)], capture_output=True, text=True)
    if "not a dynamic executable" in done.stdout + done.stderr or "statically linked" in done.stdout:
        return []
    if done.returncode != 0:
        raise BuildError(f"ldd {elf}: {done.stderr.strip() or done.stdout.strip()}")
    found = []
    for line in done.stdout.splitlines():
        if "=> not found" in line:
            raise BuildError(f"{elf} needs {line.split()[0]}, which is not installed")
        match = LDD_LINE.match(line)
        if match:
            path = Path(match.group(2))
            found.append((match.group(1) or path.name, Path(os.path.realpath(path))))
    return found


def patchelf(path: Path, *options: str) -> None:
    run(["patchelf", *options, str(path)], f"patchelf {' '.join(options)} {path.name}")


def precompile(stdlib: Path, dest: Path, home: Path) -> None:
    """Byte code that is never checked against its source (no stat per import) and never
    rewritten (a read-only root): the bundle's files do not change once built."""
    compiled = compileall.compile_dir(
        stdlib, quiet=1, workers=0, stripdir=str(dest), prependdir=str(home),
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    if not compiled:
        raise BuildError(f"byte-compiling {stdlib} failed (see above)")


def write_launcher(target: Path, home: Path) -> None:
    """The project's bin/pidone with the bundle's interpreter. -I: the workload's PYTHONPATH,
    PYTHONHOME and the like are for the workload's own Python, not this one; the child still
    gets the whole environment."""
    _, script = LAUNCHER.read_text().split("\n", 1)
    target.write_text(f"#!{home}/bin/python3 -I\n{script}")
    target.chmod(0o755)


def check_runs(pidone: Path) -> None:
    done = subprocess.run([str(pidone), "--version"], env={}, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"{pidone} --version failed: {done.stderr.strip()}")


def run(argv: list[str], what: str) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise BuildError(f"{what} failed:\n{done.stdout}{done.stderr}".rstrip())


if __name__ == "__main__":
    sys.exit(main())
