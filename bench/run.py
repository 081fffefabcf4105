"""`make bench`: run every case for every init and write docs/benchmarks.md and .png.

    python -m bench.run [--quick] [--out DIR] [--cases NAME,...] [--inits NAME,...] [--rounds N]
                        [--signals N] [--orphans N] [--idle-seconds S]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench import chart, report
from bench.bundle import SYSTEM_PYTHON, build_bundle
from bench.cases import early_term, idle, leaving, memory, metrics, orphans, scrapes, signals, size, startup
from bench.context import FULL, QUICK, Bench
from bench.inits import bundle, floor, installed_peers, pidone
from bench.interpreter import deployed_python, pidone_command
from bench.namespace import BenchError
from bench.probe import compile_probe
from bench.results import CaseResult


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    run: Callable[[Bench], CaseResult]
    needs: tuple[str, ...] = ()
    """Programs the case runs, beyond unshare and the inits."""


CASES = (
    Case("startup", "Start-up", startup.run, ("hyperfine",)),
    Case("early-term", "First instants", early_term.run),
    Case("signals", "Signal forwarding, idle", signals.run_idle),
    Case("signals-load", "Signal forwarding under HTTP load", signals.run_loaded, ("wrk",)),
    Case("orphans", "Orphan storm", orphans.run),
    Case("memory", "Memory", memory.run),
    Case("idle", "Idle", idle.run),
    Case("leaving", "Leaving", leaving.run),
    Case("metrics", "/metrics throughput", metrics.run, ("wrk",)),
    Case("scrapes-memory", "Memory after scrapes", scrapes.run_memory, ("wrk",)),
    Case("scrapes-cost", "A scrape's cost", scrapes.run_cost),
    Case("size", "Size", size.run),
)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the harness")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="where to write")
    parser.add_argument("--cases", default=",".join(case.name for case in CASES))
    parser.add_argument("--inits", help="only these inits (comma-separated names)")
    parser.add_argument("--signals", type=int, help="signals per round")
    parser.add_argument("--orphans", type=int, help="orphans per storm")
    parser.add_argument("--rounds", type=int, help="rounds of every case (default: by size)")
    parser.add_argument("--idle-seconds", type=float, help="the idle case's window")
    return parser.parse_args(argv)


def run_case(case: Case, bench: Bench) -> CaseResult:
    missing = [tool for tool in case.needs if shutil.which(tool) is None]
    if missing:
        return CaseResult(case.title, "", [], skipped=f"{', '.join(missing)} not installed")
    started, load = time.monotonic(), load_average()
    print(f"bench: {case.name}...", file=sys.stderr, flush=True)
    result = dataclasses.replace(case.run(bench), load=load)
    print(f"bench: {case.name} took {time.monotonic() - started:.1f}s", file=sys.stderr, flush=True)
    return result


def describe_machine() -> list[str]:
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                if line.startswith("model name")), platform.machine())
    facts = [f"{cpu}, {os.cpu_count()} cores, Linux {platform.release()}",
             f"Python {platform.python_version()}, pidone and the Python baselines on a throwaway "
             "venv without the editable-install finder (bench/interpreter.py)",
             f"pidone bundle: /opt/pidone as bundle/build.py makes it (bench/bundle.py), from "
             f"{SYSTEM_PYTHON} ({tool_version(SYSTEM_PYTHON).removeprefix('Python ')}), HTTP on"]
    for tool in ("tini", "dumb-init", "catatonit", "hyperfine", "wrk"):
        facts.append(f"{tool}: {tool_version(tool)}")
    return facts


def tool_version(tool: str) -> str:
    if shutil.which(tool) is None:
        return "not installed"
    flag = "-v" if tool == "wrk" else "--version"
    done = subprocess.run([tool, flag], capture_output=True, text=True)
    text = (done.stdout or done.stderr).strip().splitlines()
    return text[0] if text else "unknown version"


def load_average() -> str:
    return " ".join(open("/proc/loadavg").read().split()[:3])


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    sizes = QUICK if args.quick else FULL
    if args.rounds:
        sizes = dataclasses.replace(sizes, rounds=args.rounds, long_rounds=args.rounds)
    for name in ("idle_seconds", "signals", "orphans"):
        if getattr(args, name):
            sizes = dataclasses.replace(sizes, **{name: getattr(args, name)})
    wanted = set(args.cases.split(","))
    unknown = wanted - {case.name for case in CASES}
    if unknown:
        print(f"bench: unknown case {', '.join(sorted(unknown))}", file=sys.stderr)
        return 2
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        print("bench: needs root and unshare (each init runs as PID 1 of a new PID namespace)",
              file=sys.stderr)
        return 2
    started, load_before = time.monotonic(), load_average()
    started_at = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="pidone-bench-") as scratch:
        try:
            probe = compile_probe(Path(scratch))
            bundled = build_bundle(Path(scratch) / "pidone-bundle")
        except RuntimeError as error:
            print(f"bench: {error}", file=sys.stderr)
            return 2
        python = deployed_python(Path(scratch) / "venv")
        inits = (*installed_peers(), pidone(pidone_command(python), http=False),
                 pidone(pidone_command(python), http=True),
                 bundle(bundled), floor(python))
        if args.inits:
            inits = tuple(init for init in inits if init.name in args.inits.split(","))
        bench = Bench(sizes, inits, probe, python)
        try:
            results = [run_case(case, bench) for case in CASES if case.name in wanted]
        except BenchError as error:
            print(f"bench: {error}", file=sys.stderr)
            return 1
    machine = describe_machine() + [
        f"run at {started_at}, load average (1/5/15 min) {load_before} at the start, "
        f"{load_average()} at the end; the run took {(time.monotonic() - started) / 60:.1f} min",
        f"sizes: {', '.join(f'{k}={v}' for k, v in dataclasses.asdict(sizes).items())}",
    ]
    args.out.mkdir(parents=True, exist_ok=True)
    chart_path = args.out / "benchmarks.png"
    chart.draw(results, chart_path)
    (args.out / "benchmarks.md").write_text(report.render(results, machine, chart_path.name))
    print(f"bench: wrote {args.out / 'benchmarks.md'} and {chart_path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
