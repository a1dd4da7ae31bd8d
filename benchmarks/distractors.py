"""Does selection quality hold as the hub grows? The quick benchmark's chco on a labelled hub, alone
and with N synthetic distractor experts added.

A private copy of ``--hub`` is made under ``--work`` (immutable files hard-linked, the database
copied: the source is never written), then for each N in ``--distractors`` (ascending; one hub
grows, the same seed draws the same first models) ``mll.bench.synthetic`` adds experts drawn from
the hub's own experts. Synthetic experts are runnable (family ``synthetic``: their source model's
outputs through a seeded transformation), so when chco picks one, the benchmark runs it on the
eval images like any expert.

Per size: the quick benchmark's tasks (``standard_tasks(quick=True)``), chco's plan for each (the
same context and selector as ``mll bench``), its accuracy through the predictor's combination
code, the mean over tasks with its 95% bootstrap interval (``mean_interval``), the paired
difference to the run without distractors with its interval, and how many of the plans' models
are synthetic. Only the planned models are run on the eval images (the benchmark runs every model,
which a 100k hub cannot).

Usage: .venv/bin/python benchmarks/distractors.py [--hub QUICK_HUB] --distractors 1000 10000 100000
       [--work DIR] [--seed 0] [--json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

CODE = """
import json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[3])
from distractors import evaluate
print(json.dumps(evaluate(sys.argv[1], int(sys.argv[2]))))
"""


def evaluate(hub: str, seed: int) -> dict:
    """chco on the quick benchmark's tasks over the hub at ``hub``: per-task accuracy, the mean and
    its interval, per-image correctness (for paired differences) and the plans' models."""
    from mll._io import progress
    from mll.bench.runner import _correct, mean_interval
    from mll.bench.tasks import standard_tasks
    from mll.selection import LabelTable, Task, build_context, make_selector

    start = time.perf_counter()
    table = LabelTable(hub)
    tasks = standard_tasks(table.corpus, table.graph, quick=True, seed=seed)
    feats, load = table.hub.features, table.corpus.load
    rows, correct = [], []
    for t in progress(tasks, f"chco on the quick tasks ({len(table.models)} labelled models)"):
        ctx = build_context(table, Task.create(t.classes, domain=t.domain, name=t.name))
        t0 = time.perf_counter()
        sel = make_selector("chco").fit(table).select(ctx.task, ctx)
        seconds = time.perf_counter() - t0
        outputs = {}
        for c in sel.plan.components:
            if c.source in outputs:
                continue
            outputs[c.source] = (feats.get(c.source, keys=t.image_ids, load=load)
                                 if c.source == table.proto_backbone else
                                 feats.outputs(table.adapter(c.source), keys=t.image_ids, load=load))
        ok = _correct(sel.plan, outputs, t.truth)
        correct.append(ok)
        families = [table.models[m].info.family for m in sel.models if m in table.models]
        rows.append({"task": t.name, "accuracy": round(float(ok.mean()), 4),
                     "predicted": sel.predicted_accuracy, "select_seconds": round(seconds, 3),
                     "models": len(sel.models),
                     "synthetic_models": sum(f == "synthetic" for f in families)})
    mean = float(np.mean([r["accuracy"] for r in rows]))
    return {"labelled_models": len(table.models), "tasks": len(tasks),
            "chco_mean": round(mean, 4), "interval": list(mean_interval(correct, seed)),
            "plans_with_synthetic": sum(r["synthetic_models"] > 0 for r in rows),
            "per_task": rows, "correct": [c.astype(int).tolist() for c in correct],
            "seconds": round(time.perf_counter() - start, 1)}


def run(hub: Path, distractors: list[int], work: Path, seed: int, as_json: bool) -> list[dict]:
    from scale import copy_hub

    from mll.bench.runner import paired_bootstrap
    from mll.bench.synthetic import build_synthetic_hub

    dest = work / "hub"
    if not (dest / "mll.db").is_file():
        copy_hub(hub, dest)
    results = []
    base = None
    for n in [0, *sorted(set(distractors))]:
        built = None
        if n:
            built = build_synthetic_hub(hub, dest, n, seed=seed, vlm_share=0.0).seconds
        out = subprocess.run([sys.executable, "-c", CODE, str(dest), str(seed),
                              str(Path(__file__).parent)], check=True, stdout=subprocess.PIPE,
                             text=True)  # stderr (progress lines) passes through
        r = json.loads(out.stdout.strip().splitlines()[-1])
        correct = [np.array(c, dtype=bool) for c in r.pop("correct")]
        if base is None:
            base = correct
        diff, lo, hi = paired_bootstrap(correct, base, seed)
        r = {"distractors": n, "build_seconds": built} | r | {
            "difference": {"mean": diff, "low": lo, "high": hi}}
        r["within_baseline_interval"] = bool(results[0]["interval"][0] <= r["chco_mean"]
                                             <= results[0]["interval"][1]) if results else True
        results.append(r)
        if not as_json:
            print(f"{n:>7} distractors  {r['labelled_models']:>7} labelled  chco mean "
                  f"{r['chco_mean']:.4f} [{r['interval'][0]:.4f}, {r['interval'][1]:.4f}]  "
                  f"vs none {diff:+.4f} [{lo:+.4f}, {hi:+.4f}]  plans with synthetic "
                  f"{r['plans_with_synthetic']}/{r['tasks']}", flush=True)
    return results


def main() -> None:
    from _hubarg import add_hub_argument, hub_problem

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    add_hub_argument(parser)
    parser.add_argument("--distractors", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--work", type=Path, default=None, help="where the copy grows (default: "
                        "a temporary directory, removed at the end)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if problem := hub_problem(args.hub):
        sys.exit(problem)
    if any(n < 1 for n in args.distractors):
        parser.error("--distractors takes positive whole numbers")
    if args.work is not None and args.work.resolve() == args.hub.resolve():
        parser.error("--work must not be the hub itself")
    work = args.work or Path(tempfile.mkdtemp(prefix="mll-distractors-"))
    try:
        results = run(args.hub, args.distractors, work, args.seed, args.json)
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
