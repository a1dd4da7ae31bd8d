"""Fit a hub's predicted-accuracy calibration on proxy tasks built from its own sample role.

Every proxy task hides some sample images from the labels (the labels, the proxy task and the
style counts never see them), runs the zero-shot methods as a user would (class names pinned to
their concepts, domain words of the hidden images' style group), and measures each plan on the
hidden images through the same combination code the predictor uses. No benchmark (eval) image is
read. Three kinds of task, per seed:

- ``carried``: the sample role's concepts of one style group (photo, drawing, emoji) are cut into
  tasks of ``size`` concepts; all their images of that group are hidden, so selection must carry
  their accuracy over from other styles (what a photo task on unseen concepts meets);
- ``direct``: concepts with at least two source pictures of one style (Tux Paint drawings,
  OpenMoji emoji, each 28x28 source) keep a seeded half of them and the other half is hidden: the
  target's style is under every class, the pictures are new;
- ``nodomain``: the ``direct`` tasks again without domain words.

:func:`calibrate_hub` fits :mod:`mll.selection.calibration`'s rules from the records and stores
them in the hub (``calibration.json``, written atomically, with the models they hold for);
``benchmarks/calibrate_intervals.py`` fits the package's shipped fallback the same way.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import replace
from pathlib import Path

import numpy as np

from .._io import atomic_write_json, progress
from ..errors import InvalidParameterError
from ..selection import LabelTable, Task, build_context, make_selector, selectors, style
from ..selection.calibration import HUB_FILE, LEVEL, fit
from ..selection.plan import combine
from ..selection.table import SampleImages

DOMAINS = {"photo": "photo cut-out on white", "drawing": "clip art drawing",
           "emoji": "emoji icon", "gray28": "small 28x28 grayscale image"}
CARRIED_TASKS = {"photo": 99, "drawing": 3, "emoji": 3}  # tasks per seed (photo: every chunk)
DIRECT_TASKS = {"drawing/tuxpaint": 3, "emoji/openmoji": 4, "gray28/animal-mnist": 1,
                "gray28/fashion-mnist": 1, "gray28/mnist": 1}


# rows left out by default: rules are fitted per method, so p2-k3's records (0.1 s a selection
# on the full starter hub) stand for p2-k1's (2.6 s there)
SLOW_ROWS = ("p2-k1",)


def zero_shot_methods(rows: list[str] | None = None) -> list[tuple[str, dict]]:
    """(method, parameters) for the benchmark rows named (``chco``, ``p2-k3``), by default every
    zero-shot row but ``SLOW_ROWS``; a seeded method runs with seed 0."""
    from .runner import METHODS

    known = [row for row, name, _ in METHODS if selectors.get(name).zero_shot]
    rows = rows or [row for row in known if row not in SLOW_ROWS]
    unknown = sorted(set(rows or ()) - set(known))
    if unknown:
        raise InvalidParameterError(f"calibrate: unknown method row(s) {', '.join(unknown)}; "
                                    f"expected some of {', '.join(known)}")
    out = []
    for row, name, params in METHODS:
        if not selectors.get(name).zero_shot or row not in rows:
            continue
        takes = selectors.get(name).param_names()
        out.append((name, params | ({"seed": 0} if "seed" in takes else {})))
    return out


def hidden_view(table, hide: np.ndarray) -> LabelTable:
    """The table without the images in ``hide`` (labels, samples and prototype features)."""
    keep = ~hide
    s = table.samples
    samples = SampleImages([i for i, k in zip(s.ids, keep, strict=True) if k], s.nodes[keep],
                           s.styles[keep], s.groups[keep])
    models = [replace(m, outputs=m.outputs[keep]) for m in table.models.values()]
    adapters = {m.id: table.adapter(m.id) for m in table.vlms}
    return LabelTable.from_labels(models, samples, table.matcher,
                                  proto_features=table.proto_features[keep], adapters=adapters,
                                  proto_backbone=table.proto_backbone)


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
        if n < 2:  # the hub has too few concepts with two pictures of this style
            continue
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


def run_task(table, task_id: str, kind: str, nodes: list[str], hide: np.ndarray, group: str,
             methods: list[tuple[str, dict]]) -> list[dict]:
    """The (predicted, measured) records of every method on one proxy task."""
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
        for method, params in methods:
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


def collect(table, seeds: int, size: int, methods: list[tuple[str, dict]] | None = None
            ) -> list[dict]:
    """Records of every proxy task of seeds ``0 .. seeds - 1``."""
    methods = methods or zero_shot_methods()
    plan = [(seed, i, t) for seed in range(seeds) for i, t in enumerate(proxy_tasks(table, seed, size))]
    records: list[dict] = []
    for seed, i, (kind, nodes, hide, group) in progress(plan, "calibration proxy tasks"):
        records += run_task(table, f"s{seed}-{kind}-{group}-{i}", kind, nodes, hide, group, methods)
    return records


def calibrated(hub_dir: str | Path | None, db: str | None = None) -> bool:
    """Whether the hub holds its own calibration, fitted for the models it has now."""
    from ..selection.calibration import hub_rules

    table = LabelTable(hub_dir, db=db)
    doc = hub_rules(table.hub_dir)
    try:
        return doc is not None and sorted(doc.get("models", [])) == sorted(table.models)
    finally:
        table.close()


def calibrate_hub(hub_dir: str | Path | None, *, seeds: int = 1, size: int = 20,
                  methods: list[str] | None = None, db: str | None = None) -> dict:
    """Fit the hub's calibration on its own proxy tasks and store it in the hub atomically.

    ``methods``: the benchmark rows to fit (default: every zero-shot one); the others keep the
    shipped rules. Returns what was stored plus the held-out-task checks (error and coverage per
    method, level and situation)."""
    if seeds < 1 or size < 2:
        raise InvalidParameterError(f"calibrate: seeds must be >= 1 and classes >= 2; got seeds="
                                    f"{seeds}, classes={size}")
    chosen = zero_shot_methods(methods)
    start = time.perf_counter()
    table = LabelTable.open(hub_dir, db=db)
    records = collect(table, seeds, size, chosen)
    if not records:
        raise InvalidParameterError(f"calibrate: the hub at {table.hub_dir} has too few sample "
                                    f"images for proxy tasks of {size} classes; try --classes")
    rules, checks = fit(records)
    table.close()
    tasks = len({r["task"] for r in records})
    doc = {"level": LEVEL, "models": sorted(table.models), "rules": rules,
           "fitted_on": f"{tasks} proxy tasks ({seeds} seed{'s' * (seeds > 1)}) built from this "
                        f"hub's sample role by mll calibrate; no benchmark image"}
    path = Path(table.hub_dir) / HUB_FILE
    atomic_write_json(path, doc)
    return doc | {"path": str(path), "checks": checks, "records": len(records),
                  "seconds": round(time.perf_counter() - start, 1)}
