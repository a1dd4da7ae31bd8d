"""Fit the predicted-accuracy calibration on proxy tasks built from the sample role.

Every proxy task hides some sample images from the labels (the labels, the proxy task and the
style counts never see them), runs every zero-shot method as a user would (class names pinned to
their concepts, domain words of the hidden images' style group), and measures each plan on the
hidden images through the same combination code the predictor uses. No benchmark (eval) image is
read. Three kinds of task, per seed:

- ``carried``: the sample role's concepts of one style group (photo, drawing, emoji) are cut into
  tasks of ``--classes``; all their images of that group are hidden, so selection must carry their
  accuracy over from other styles (what a photo task on unseen concepts meets);
- ``direct``: concepts with at least two source pictures of one style (Tux Paint drawings,
  OpenMoji emoji, each 28x28 source) keep a seeded half of them and the other half is hidden: the
  target's style is under every class, the pictures are new;
- ``nodomain``: the ``direct`` tasks again without domain words.

``--collect OUT`` writes the (method, level, situation, proxy accuracy, measured accuracy) records;
``--fit RECORDS`` fits the rules of ``mll.selection.calibration`` from them (shrinkage kept only
where it lowers the error on held-out proxy tasks; split-conformal 5%/95% residual quantiles),
writes them to ``--write`` (the package's ``_data/calibration.json``) and prints held-out-task
coverage and errors. Usage::

    python benchmarks/calibrate_intervals.py --hub HUB --collect records.json [--seeds 3]
    python benchmarks/calibrate_intervals.py --fit records.json --write src/mll/selection/_data/calibration.json
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict

import numpy as np
from style_transfer_tasks import hidden_view

from mll.selection import LabelTable, Task, build_context, make_selector, style
from mll.selection.calibration import LEVEL, fit
from mll.selection.plan import combine

DOMAINS = {"photo": "photo cut-out on white", "drawing": "clip art drawing",
           "emoji": "emoji icon", "gray28": "small 28x28 grayscale image"}
METHODS = (("chco", {}), ("all", {}), ("inb", {"k": 1}), ("inb", {"k": 3}), ("modelgpt", {}),
           ("p2", {"k": 1}), ("p2", {"k": 3}), ("proto", {}), ("random", {"k": 1, "seed": 0}),
           ("vlm", {}))
CARRIED_TASKS = {"photo": 99, "drawing": 3, "emoji": 3}  # tasks per seed (photo: every chunk)
DIRECT_TASKS = {"drawing/tuxpaint": 3, "emoji/openmoji": 4, "gray28/animal-mnist": 1,
                "gray28/fashion-mnist": 1, "gray28/mnist": 1}


def proxy_tasks(table, seed: int, size: int) -> list[tuple[str, list[str], np.ndarray, str]]:
    """(kind, concepts, hidden-image mask, group) for one seed."""
    rng = np.random.default_rng(seed)
    nodes = table.image_nodes
    styles = table.image_styles
    groups = np.array([style.style_group(s) for s in styles.tolist()])
    out = []
    for group, most in CARRIED_TASKS.items():
        concepts = rng.permutation(sorted(set(nodes[groups == group].tolist()))).tolist()
        for i in range(0, min(len(concepts) - size + 1, most * size), size):
            chosen = sorted(concepts[i: i + size])
            out.append(("carried", chosen, (groups == group) & np.isin(nodes, chosen), group))
    pictures = table.image_groups
    for full, most in DIRECT_TASKS.items():
        per: dict[str, list[str]] = defaultdict(list)
        for v, p in sorted(set(zip(nodes[styles == full].tolist(),
                                   pictures[styles == full].tolist(), strict=True))):
            per[v].append(p)
        concepts = rng.permutation(sorted(v for v, ps in per.items() if len(ps) >= 2)).tolist()
        n = min(size, len(concepts))
        for i in range(0, min(len(concepts) - n + 1, most * n), n):
            chosen = sorted(concepts[i: i + n])
            hidden_pictures = [p for v in chosen for p in
                               rng.permutation(per[v])[: len(per[v]) // 2].tolist()]
            hide = (styles == full) & np.isin(pictures, hidden_pictures)
            out.append(("direct", chosen, hide, style.style_group(full)))
    return out


def correct(table, plan, rows: np.ndarray, truth: np.ndarray) -> np.ndarray:
    outputs = {m: label.outputs[rows] for m, label in table.models.items()}
    outputs[table.proto_backbone] = table.proto_features[rows]
    probas = [c.proba(outputs[c.source]) for c in plan.components]
    return combine(plan, probas).argmax(axis=1) == truth


def run_task(table, task_id: str, kind: str, nodes: list[str], hide: np.ndarray, group: str
             ) -> list[dict]:
    index = {v: k for k, v in enumerate(nodes)}
    rows = np.flatnonzero(hide)
    truth = np.array([index[v] for v in table.image_nodes[rows].tolist()])
    view = hidden_view(table, hide)
    names = [f"{view.graph.name(v)} ({v})" for v in nodes]
    records = []
    domains = [(kind, DOMAINS[group])] + ([("nodomain", "")] if kind == "direct" else [])
    for kind_here, domain in domains:
        task = Task.create(names, domain=domain, pinned=dict(zip(names, nodes, strict=True)))
        ctx = build_context(view, task)
        for method, params in METHODS:
            sel = make_selector(method, **params).fit(view).select(task, ctx)
            hit = correct(table, sel.plan, rows, truth)
            base = {"task": f"{task_id}/{kind_here}", "kind": kind_here, "group": group,
                    "method": method, "params": params}
            if sel.calibration.get("proxy_accuracy") is not None:
                records.append(base | {"level": "task", "situation": sel.calibration["situation"],
                                       "proxy": sel.calibration["proxy_accuracy"],
                                       "evidence": sel.calibration["proxy_evidence"],
                                       "measured": float(hit.mean()), "images": len(hit)})
            for k, c in enumerate(sel.classes):
                if c.evidence.get("proxy_accuracy") is None or not (truth == k).any():
                    continue
                records.append(base | {"level": "class", "situation": c.evidence["situation"],
                                       "class": nodes[k], "proxy": c.evidence["proxy_accuracy"],
                                       "evidence": c.evidence["proxy_evidence"],
                                       "measured": float(hit[truth == k].mean()),
                                       "images": int((truth == k).sum())})
    return records


def collect(hub: str, seeds: int, size: int) -> list[dict]:
    table = LabelTable.open(hub)
    records: list[dict] = []
    for seed in range(seeds):
        for i, (kind, nodes, hide, group) in enumerate(proxy_tasks(table, seed, size)):
            start = time.perf_counter()
            records += run_task(table, f"s{seed}-{kind}-{group}-{i}", kind, nodes, hide, group)
            print(f"seed {seed} task {i} {kind} {group}: {len(nodes)} concepts, {hide.sum()} hidden "
                  f"images, {time.perf_counter() - start:.1f} s", flush=True)
    return records


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hub")
    ap.add_argument("--collect", help="write proxy-task records here")
    ap.add_argument("--fit", help="fit the calibration from these records")
    ap.add_argument("--write", help="write the fitted rules here (calibration.json)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--classes", type=int, default=20)
    args = ap.parse_args()
    if args.collect:
        records = collect(args.hub, args.seeds, args.classes)
        with open(args.collect, "w") as f:
            json.dump(records, f)
    if args.fit:
        with open(args.fit) as f:
            records = json.load(f)
        rules, checks = fit(records)
        print(json.dumps(checks, indent=1))
        if args.write:
            seeds = len({r["task"].split("-")[0] for r in records})
            doc = {"level": LEVEL, "fitted_on": (
                f"{len({r['task'] for r in records})} proxy tasks ({seeds} seeds) built from the "
                "sample role by benchmarks/calibrate_intervals.py; no benchmark image"),
                "rules": rules}
            with open(args.write, "w") as f:
                json.dump(doc, f, indent=1)
                f.write("\n")


if __name__ == "__main__":
    main()
