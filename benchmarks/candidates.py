"""chco's mean accuracy against the number of candidate experts per node it reads from the index.

Runs the benchmark's tasks (``--quick``: the quick benchmark's) once through every model, then
chco with ``candidates`` = each N of ``--n`` (``0`` stands for None: every expert), and prints per
N the mean accuracy over tasks with its 95% bootstrap interval, the mean number of experts the
search considered, and the mean selection time.

Usage: .venv/bin/python benchmarks/candidates.py --hub HUB [--quick] [--n 1 2 4 8 16 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np


def sweep(hub: str, quick: bool, ns: list[int | None]) -> dict:
    from mll._io import progress
    from mll.bench.runner import eval_outputs, mean_interval, run_method
    from mll.bench.tasks import standard_tasks
    from mll.selection import LabelTable, Task, build_context

    table = LabelTable(hub)
    tasks = standard_tasks(table.corpus, table.graph, quick=quick, seed=0)
    outputs, contexts = {}, {}
    for t in progress(tasks, "running models on eval images"):
        outputs[t.name] = eval_outputs(table, t)
        contexts[t.name] = build_context(table, Task.create(t.classes, domain=t.domain,
                                                            name=t.name))
    rows = []
    for n in ns:
        correct, seconds, considered = [], [], []
        for t in tasks:
            run_method(table, contexts[t.name], outputs[t.name], t, "chco", {"candidates": n})
            r = run_method(table, contexts[t.name], outputs[t.name], t, "chco", {"candidates": n})
            correct.append(r["correct"])
            seconds.append(r["seconds"])
            considered.append(r["selection"].diagnostics.get("candidate_experts", 0))
        lo, hi = mean_interval(correct, 0)
        rows.append({"candidates": n, "chco_mean": round(float(np.mean([c.mean() for c in correct])),
                                                          4),
                     "interval": [lo, hi], "experts_considered": round(float(np.mean(considered)), 1),
                     "selection_ms": round(1000 * float(np.mean(seconds)), 1)})
    return {"hub": hub, "quick": quick, "tasks": [t.name for t in tasks], "rows": rows,
            "experts": len(table.experts)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub", required=True)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--n", type=int, nargs="+", default=[1, 2, 4, 8, 16, 0])
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    start = time.perf_counter()
    result = sweep(args.hub, args.quick, [n or None for n in args.n])
    result["seconds"] = round(time.perf_counter() - start, 1)
    if args.json:
        print(json.dumps(result, indent=1))
        return
    print(f"{result['experts']} experts; {len(result['tasks'])} tasks")
    print(f"{'N':>6}{'chco mean':>11}{'95% interval':>18}{'experts':>9}{'ms':>8}")
    for r in result["rows"]:
        print(f"{r['candidates'] or 'all':>6}{r['chco_mean']:>11.4f}"
              f"{str(r['interval']):>18}{r['experts_considered']:>9}{r['selection_ms']:>8}")


if __name__ == "__main__":
    main()
