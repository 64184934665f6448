"""Wall time of `ferbench demo` as a new user meets it: a fresh data root and results store, nothing cached.

Each round runs `python -m harness demo` in a new temporary folder (drawing the data, building the image
cache, training every repeat, printing the report) and prints its wall time and the machine's load average
before it, since other work on the machine slows the demo down. The figure the README states comes from
here (aim: ≤ 90 s on two idle cores). Run: `python benchmarks/demo_time.py [--rounds R] [--cores 0,1]`;
`--cores` pins the demo to those CPUs with `taskset`, as on a two-core machine.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def one_round(cores: str | None) -> tuple[float, float, float, str]:
    """(wall seconds, CPU seconds of the demo and its workers, 1-minute load average before the start, the
    report's first table)."""
    with tempfile.TemporaryDirectory(prefix="ferbench-demo-") as tmp:
        env = dict(os.environ, FERBENCH_DATA_ROOT=f"{tmp}/datasets", FERBENCH_RESULTS_DIR=f"{tmp}/results",
                   FERBENCH_CONFIG=str(REPO / "benchmark.toml"))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        argv = [sys.executable, "-m", "harness", "demo"]
        if cores:
            argv = [shutil.which("taskset") or "taskset", "--cpu-list", cores, *argv]
        load = os.getloadavg()[0]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        done = subprocess.run(argv, cwd=tmp, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    if done.returncode:
        sys.exit(f"ferbench demo failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, cpu, load, done.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="how many demos to time (default 3)")
    parser.add_argument("--cores", help="CPU list for taskset, e.g. 0,1 (default: all CPUs)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs visible; demo pinned to {args.cores or 'all of them'}")
    times = []
    for round_ in range(1, args.rounds + 1):
        seconds, cpu, load, report = one_round(args.cores)
        times.append(seconds)
        print(f"round {round_}: {seconds:.1f} s wall, {cpu:.1f} s CPU (load average before: {load:.2f})", flush=True)
    print(report)
    print(f"demo wall time: min {min(times):.1f} s, median {statistics.median(times):.1f} s over {len(times)} round(s)")


if __name__ == "__main__":
    main()
