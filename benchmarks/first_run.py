"""First-run figures: `mll starter --quick` then `mll demo` on a fresh hub, twice, step by step.

What a newcomer's `make demo` does after setup, timed from outside (wall seconds with process
start) and from inside (each step's wall and CPU seconds from the commands' ``--json``). The load
average is printed beside the figures: on a shared machine a step's wall time says little
without it.

Usage: .venv/bin/python benchmarks/first_run.py [--hub DIR] [--keep] [--json]
(without --hub a temporary hub is used and removed afterwards unless --keep; the progress lines
of both commands go to <hub>/first-run.log)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MLL = [sys.executable, "-m", "mll"]


def run(args: list[str], log: Path) -> tuple[dict, float]:
    """Run one mll command with ``--json``; (its report, wall seconds including process start)."""
    start = time.perf_counter()
    with open(log, "a") as err:
        err.write(f"$ mll {' '.join(args)}\n")
        err.flush()
        done = subprocess.run(MLL + args + ["--json"], stdout=subprocess.PIPE, stderr=err,
                              text=True, env=dict(os.environ, RAY_USAGE_STATS_ENABLED="0"))
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"mll {' '.join(args)} failed (exit {done.returncode}); see {log}")
    return json.loads(done.stdout), seconds


def one_round(hub: Path, log: Path) -> dict:
    load_before = os.getloadavg()[0]
    starter, starter_s = run(["starter", "--quick", "--hub", str(hub)], log)
    demo, demo_s = run(["demo", "--hub", str(hub)], log)
    return {
        "starter_seconds": round(starter_s, 1), "demo_seconds": round(demo_s, 1),
        "total_seconds": round(starter_s + demo_s, 1),
        "starter_steps": starter["phases"], "starter_cpu_seconds": starter["cpu_seconds"],
        "starter_background": starter.get("background", {}),
        "demo_steps": demo["steps"]["seconds"], "demo_cpu_seconds": demo["steps"]["cpu_seconds"],
        "demo_accuracy": demo.get("accuracy"),
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
    }


def show(name: str, r: dict) -> None:
    print(f"{name}: {r['total_seconds']:.1f} s (starter {r['starter_seconds']:.1f} s, demo "
          f"{r['demo_seconds']:.1f} s; load average {r['load_average'][0]} -> "
          f"{r['load_average'][1]} on {os.cpu_count()} cores)")
    for step, wall in r["starter_steps"].items():
        print(f"  starter  {step:28} {wall:8.1f} s wall {r['starter_cpu_seconds'][step]:8.1f} s CPU")
    for step, wall in r["starter_background"].items():
        print(f"  starter  {step + ' (background)':28} {wall:8.1f} s wall")
    for step, wall in r["demo_steps"].items():
        print(f"  demo     {step:28} {wall:8.1f} s wall {r['demo_cpu_seconds'][step]:8.1f} s CPU")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hub", type=Path, help="an empty or missing directory (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary hub")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    hub = args.hub or Path(tempfile.mkdtemp(prefix="mll-first-run-"))
    if hub.exists() and any(hub.iterdir()):
        sys.exit(f"{hub} is not empty: the first run needs a fresh hub")
    hub.mkdir(parents=True, exist_ok=True)
    log = hub / "first-run.log"
    try:
        result = {"first": one_round(hub, log), "second": one_round(hub, log)}
    finally:
        if args.hub is None and not args.keep:
            shutil.rmtree(hub, ignore_errors=True)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    show("first run", result["first"])
    show("second run", result["second"])


if __name__ == "__main__":
    main()
