"""Photo tasks built from the sample role, to fit and check the style transfer without the benchmark.

The sample role's photographed concepts are cut (seeded) into tasks of ``--classes`` concepts. For
each task, the photos of its concepts are hidden: the labels are restricted to the other sample
images (so neither the proxy task nor the style counts see them), selection runs as for a user
with photos ("photo cut-out on white"), and the plan is measured on the hidden photos through the
same combination code the predictor uses. Reported per setting: mean accuracy, and the mean
absolute error of the predicted accuracy, for chco and the VLM alone, with the style machinery off
and with it on for each cell prior. No benchmark (eval) image is read.

Usage: ``python benchmarks/style_transfer_tasks.py --hub HUB [--seeds 3] [--classes 20]``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from mll.bench.calibrate import hidden_view
from mll.selection import LabelTable, Task, build_context, make_selector, style
from mll.selection.plan import combine

DOMAIN = "photo cut-out on white"
PRIORS = (0.0, 1.0, 2.0, 4.0, 8.0)


def photo_nodes(table) -> list[str]:
    styles = table.image_styles.tolist()
    return sorted({v for v, s in zip(table.image_nodes.tolist(), styles, strict=True)
                   if style.style_group(s) == "photo"})


def measured(table, plan, rows: np.ndarray, truth: np.ndarray) -> float:
    outputs = {m: label.outputs[rows] for m, label in table.models.items()}
    outputs[table.proto_backbone] = table.proto_features[rows]
    probas = [c.proba(outputs[c.source]) for c in plan.components]
    return float((combine(plan, probas).argmax(axis=1) == truth).mean())


def run_task(table, nodes: list[str]) -> dict[str, tuple[float, float | None]]:
    groups = np.array([style.style_group(s) for s in table.image_styles.tolist()])
    index = {v: k for k, v in enumerate(nodes)}
    hide = (groups == "photo") & np.isin(table.image_nodes, nodes)
    rows = np.flatnonzero(hide)
    truth = np.array([index[v] for v in table.image_nodes[rows].tolist()])
    view = hidden_view(table, hide)
    names = [f"{view.graph.name(v)} ({v})" for v in nodes]
    task = Task.create(names, domain=DOMAIN, pinned=dict(zip(names, nodes, strict=True)))
    out: dict[str, tuple[float, float | None]] = {}
    for setting in ("off", *[f"prior={p:g}" for p in PRIORS]):
        ctx = build_context(view, task)
        if setting == "off":
            ctx.target_style, ctx.style_gap = None, np.zeros(len(ctx.proxy_index), dtype=bool)
        else:
            style.CELL_PRIOR = float(setting.split("=")[1])
        for method in ("chco", "vlm"):
            sel = make_selector(method).fit(view).select(task, ctx)
            out[f"{method} {setting}"] = (measured(table, sel.plan, rows, truth),
                                         sel.predicted_accuracy)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--classes", type=int, default=20)
    args = ap.parse_args()
    table = LabelTable.open(args.hub)
    nodes = photo_nodes(table)
    results: dict[str, list[tuple[float, float | None]]] = {}
    for seed in range(args.seeds):
        order = np.random.default_rng(seed).permutation(nodes).tolist()
        for i in range(0, len(order) - args.classes + 1, args.classes):
            for key, value in run_task(table, sorted(order[i: i + args.classes])).items():
                results.setdefault(key, []).append(value)
    summary = {key: {"tasks": len(v), "accuracy": round(float(np.mean([a for a, _ in v])), 4),
                     "predicted_mae": round(float(np.mean([abs(a - p) for a, p in v
                                                           if p is not None])), 4)}
               for key, v in results.items()}
    print(json.dumps({"photo_concepts": len(nodes), "results": summary}, indent=1))


if __name__ == "__main__":
    main()
