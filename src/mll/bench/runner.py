"""The benchmark: every method on every target task, with intervals, ablations and hub growth.

Each model runs once per eval image (backbone features are cached on disk), then every method's
plan is applied to those outputs through the same predictor code that ``mll solve`` uses.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._io import progress
from ..reuse import TaskPredictor
from ..selection import Task, build_context, calibration, make_selector, selectors
from ..selection.plan import Plan, combine
from ..selection.style import style_of_images
from .tasks import EvalTask, standard_tasks

logger = logging.getLogger(__name__)

REFERENCE = "chco"  # the method every other is compared with (report["chco_vs"])
LOOK = "chco+look"  # chco with the target's style seen in its unlabelled images (an opt-in row)


def bench_methods() -> list[tuple[str, str, dict]]:
    """(row name, method, parameters): every registered method once per declared
    ``bench_variants`` entry (``p2-k1``, ``p2-k3``), the reference first, references that need
    target images last."""
    rows = []
    for name in sorted(selectors, key=lambda n: (n != REFERENCE, not selectors.get(n).zero_shot)):
        variants = selectors.get(name).bench_variants
        for params in variants:
            suffix = "".join(f"-{k}{v}" for k, v in params.items()) if len(variants) > 1 else ""
            rows.append((name + suffix, name, dict(params)))
    return rows


METHODS = bench_methods()
RANDOM_SEEDS = 5  # a method that takes a seed is run with seeds 0..4 and averaged
BOOTSTRAP = 1000


@dataclass(frozen=True)
class BenchConfig:
    quick: bool = False
    seed: int = 0
    orders: int = 10
    alphas: tuple[float, ...] = (0.5, 0.6, 0.7, 0.8, 0.9)
    ks: tuple[int, ...] = (1, 2, 3, 4, 5, 6)


def eval_outputs(table, task: EvalTask) -> dict[str, np.ndarray]:
    """Every model's raw output (and the prototype backbone's features) on the task's images."""
    load, feats = table.corpus.load, table.hub.features
    out = {mid: feats.outputs(table.adapter(mid), keys=task.image_ids, load=load)
           for mid in table.models}
    out[table.proto_backbone] = feats.get(table.proto_backbone, keys=task.image_ids, load=load)
    return out


def _correct(plan: Plan, outputs, truth) -> np.ndarray:
    """Per image: right or wrong, through the predictor's own combination code."""
    return combine(plan, [c.proba(outputs[c.source]) for c in plan.components]).argmax(axis=1) == truth


def run_method(table, ctx, outputs, task: EvalTask, method: str, params: dict) -> dict:
    takes = selectors.get(method).param_names()
    if "target_accuracy" in takes:  # a reference that may look at the labelled target images
        def target_accuracy(comp):
            return float(_correct(Plan([comp], "mean", ctx.n_classes), outputs, task.truth).mean())
        params = params | {"target_accuracy": target_accuracy}
    seeds = range(RANDOM_SEEDS) if "seed" in takes else [None]
    runs = []
    for seed in seeds:
        p = params | ({"seed": seed} if seed is not None else {})
        sel = make_selector(method, **p).fit(table).select(ctx.task, ctx)
        runs.append((sel, _correct(sel.plan, outputs, task.truth)))
    correct = np.mean([c for _, c in runs], axis=0)
    sel = runs[0][0]
    return {"accuracy": float(correct.mean()), "correct": correct,
            "rules": calibration.rules_for(table),
            "predicted": sel.predicted_accuracy, "interval": sel.interval,
            "seconds": float(np.mean([s.seconds for s, _ in runs])),
            "models": sel.models, "selection": sel}


def _bootstrap_interval(per_task: list[np.ndarray], seed: int) -> tuple[float, float]:
    """95% percentile bootstrap interval of the mean over tasks of per-task mean values.

    Each task is its own sample for ``scipy.stats.bootstrap``, so images are resampled within
    their task and every task keeps the equal weight it has in the reported mean.
    """
    from scipy.stats import bootstrap

    def mean_over_tasks(*samples: np.ndarray, axis: int = -1) -> np.ndarray:
        return np.mean([x.mean(axis=axis) for x in samples], axis=0)

    result = bootstrap([np.asarray(x, dtype=float) for x in per_task], mean_over_tasks,
                       n_resamples=BOOTSTRAP, method="percentile", vectorized=True, batch=100,
                       rng=np.random.default_rng(seed))
    return float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_bootstrap(a: list[np.ndarray], b: list[np.ndarray], seed: int) -> tuple[float, float, float]:
    """Mean-over-tasks accuracy difference a - b and its 95% interval (the same images resampled
    for both methods, so the interval is that of the per-image differences)."""
    diffs = [x.astype(float) - y for x, y in zip(a, b, strict=True)]
    lo, hi = _bootstrap_interval(diffs, seed)
    point = float(np.mean([d.mean() for d in diffs]))
    return round(point, 4), round(lo, 4), round(hi, 4)


def mean_interval(correct: list[np.ndarray], seed: int) -> tuple[float, float]:
    """95% bootstrap interval of a method's mean-over-tasks accuracy: the benchmark's resolution."""
    lo, hi = _bootstrap_interval([c.astype(float) for c in correct], seed)
    return round(lo, 4), round(hi, 4)


def run_bench(hub_dir: str | Path | None, config: BenchConfig = BenchConfig(), db: str | None = None
              ) -> dict:
    from ..selection import LabelTable

    start = time.perf_counter()
    table = LabelTable(hub_dir, db=db)
    tasks = standard_tasks(table.corpus, table.graph, quick=config.quick, seed=config.seed)
    contexts, outputs = {}, {}
    for t in progress(tasks, "running models on eval images"):
        outputs[t.name] = eval_outputs(table, t)
        contexts[t.name] = build_context(table, Task.create(t.classes, domain=t.domain, name=t.name))
    for mid in table.models:  # loading models is not selection time
        table.adapter(mid)
    first = tasks[0]
    for _, method, params in METHODS:  # warm the text caches the same way for every method
        run_method(table, contexts[first.name], outputs[first.name], first, method, params)
    looked = {t.name: style_of_images(table, outputs[t.name][table.proto_backbone])
              for t in tasks}
    results: dict[str, dict[str, dict]] = {}
    for t in progress(tasks, "selecting and predicting"):
        results[t.name] = {name: run_method(table, contexts[t.name], outputs[t.name], t, m, p)
                           for name, m, p in METHODS}
        # chco told the style its unlabelled target images look like (their pixels, no label)
        look_ctx = build_context(table, contexts[t.name].task, target_style=looked[t.name][0])
        results[t.name][LOOK] = run_method(table, look_ctx, outputs[t.name], t, REFERENCE, {})
    methods = [name for name, _, _ in METHODS]
    methods.insert(1, LOOK)
    report = {
        "config": config.__dict__, "hub": str(table.hub_dir),
        "tasks": [{"name": t.name, "classes": len(t.classes), "images": len(t.image_ids),
                   "domain": t.domain} for t in tasks],
        "methods": methods,
        "calibration": calibration.rules_for(table).get("fitted_on"),
        "looked_style": {t.name: {"style": looked[t.name][0], "votes": looked[t.name][1]}
                         for t in tasks},
        "accuracy": {t.name: {m: round(results[t.name][m]["accuracy"], 4) for m in methods}
                     for t in tasks},
        "predicted": {t.name: {m: results[t.name][m]["predicted"] for m in methods} for t in tasks},
        "predicted_interval": {t.name: {m: results[t.name][m]["interval"] for m in methods}
                               for t in tasks},
        "selection_seconds": {m: round(float(np.mean([results[t.name][m]["seconds"] for t in tasks])), 4)
                              for m in methods},
        "models_loaded": {t.name: {m: len(results[t.name][m]["models"]) for m in methods}
                          for t in tasks},
    }
    report["mean_accuracy"] = {m: round(float(np.mean([report["accuracy"][t.name][m] for t in tasks])), 4)
                               for m in methods}
    report["mean_accuracy_interval"] = {
        m: mean_interval([results[t.name][m]["correct"] for t in tasks], config.seed) for m in methods}
    report["style_groups"] = style_groups(report, tasks, table, results, methods)
    report["proxy_mae"] = {  # the same error before calibration (the proxy accuracy itself)
        m: _mae([{"accuracy": results[t.name][m]["accuracy"],
                  "predicted": results[t.name][m]["selection"].calibration.get("proxy_accuracy")}
                 for t in tasks]) for m in methods}
    report["predicted_mae"] = {m: _mae([results[t.name][m] for t in tasks]) for m in methods}
    report["interval_coverage"] = {m: _coverage([results[t.name][m] for t in tasks]) for m in methods}
    report["class_interval_coverage"] = {
        m: _class_coverage([(results[t.name][m], t) for t in tasks]) for m in methods}
    report["chco_vs"] = {m: dict(zip(("difference", "low", "high"), paired_bootstrap(
        [results[t.name]["chco"]["correct"] for t in tasks],
        [results[t.name][m]["correct"] for t in tasks], config.seed), strict=True))
        for m in methods if m != "chco"}
    report["trust"] = trust_auroc(table, tasks, outputs, results)
    report["ablation_alpha"] = _sweep(table, tasks, contexts, outputs, "p2",
                                      [{"alpha": a, "k": 1} for a in config.alphas])
    report["ablation_k"] = {name: _sweep(table, tasks, contexts, outputs, name, [{"k": k} for k in config.ks])
                            for name in ("p2", "inb")}
    report["scalability"] = scalability(table, tasks, contexts, outputs, config)
    report["inference_images_per_second"] = inference_speed(table, tasks, results)
    report["labelling"] = labelling_cost(table)
    report["seconds"] = round(time.perf_counter() - start, 1)
    table.close()
    return report


def task_group(table, task: EvalTask) -> str:
    """The style group of a task's images (``mixed`` when none holds 80% of them)."""
    from collections import Counter

    from ..selection.style import style_group

    styles = {r.image_id: r.style for r in table.corpus.records(role="eval", wnids=task.wnids)}
    counts = Counter(style_group(styles[i]) for i in task.image_ids)
    group, n = counts.most_common(1)[0]
    return group if n >= 0.8 * len(task.image_ids) else "mixed"


def style_groups(report: dict, tasks: list[EvalTask], table, results, methods) -> dict:
    """Per style group of tasks: mean accuracy and predicted-vs-measured MAE of every method."""
    groups: dict[str, list[str]] = {}
    for t in tasks:
        groups.setdefault(task_group(table, t), []).append(t.name)
    out = {}
    for g, names in sorted(groups.items()):
        out[g] = {"tasks": names,
                  "accuracy": {m: round(float(np.mean([report["accuracy"][n][m] for n in names])), 4)
                               for m in methods},
                  "predicted_mae": {m: _mae([results[n][m] for n in names]) for m in methods},
                  "interval_coverage": {m: _coverage([results[n][m] for n in names])
                                        for m in methods}}
    return out


def _coverage(runs: list[dict]) -> float | None:
    """Share of the runs whose predicted interval holds the measured accuracy."""
    hits = [r["interval"][0] <= r["accuracy"] <= r["interval"][1]
            for r in runs if r["interval"] is not None]
    return round(float(np.mean(hits)), 4) if hits else None


def _class_coverage(runs: list[tuple[dict, EvalTask]]) -> float | None:
    """Share of (task, class) pairs whose accuracy measured on the class's images falls in the
    calibrated 90% interval for that many images (a class holds 2-100 eval images: the interval
    shown to users, for the accuracy on many images, would be judged against binomial noise)."""
    from ..selection.calibration import rule

    hits = []
    for run, task in runs:
        sel = run["selection"]
        doc = run["rules"]
        for k, c in enumerate(sel.classes):
            mask = task.truth == k
            if c.predicted_accuracy is None or not mask.any():
                continue
            lo, hi = rule(sel.method, "class", c.evidence["situation"], doc).measured_interval(
                c.evidence["proxy_accuracy"], c.evidence["proxy_evidence"], int(mask.sum()))
            hits.append(lo - 1e-9 <= float(run["correct"][mask].mean()) <= hi + 1e-9)
    return round(float(np.mean(hits)), 4) if hits else None


def _mae(runs: list[dict]) -> float | None:
    """Mean |predicted - measured| over the runs that predicted an accuracy."""
    errs = [abs(r["predicted"] - r["accuracy"]) for r in runs if r["predicted"] is not None]
    return round(float(np.mean(errs)), 4) if errs else None


def trust_auroc(table, tasks, outputs, results) -> list[dict]:
    """How well each trust signal tells an expert's own classes from the rest, on eval images.

    For every expert chco chose: the gate it uses (the general part's mass on the expert's
    classes), the expert's own max softmax, and its labelling-time detector (AUROC on sample
    images, from the label).
    """
    from ..labels import auroc

    rows = []
    for t in tasks:
        plan = results[t.name]["chco"]["selection"].plan
        general = [c for c in plan.components if c.role == "general"]
        if not general:
            continue
        wsum = sum(c.weight for c in general)
        p_g = sum(c.weight * c.proba(outputs[t.name][c.source]) for c in general) / wsum
        for c in plan.components:
            if c.role != "expert" or c.kind != "expert":
                continue
            inside = np.isin(t.truth, c.classes)
            if inside.all():  # an expert over every class has nothing to be trusted against
                continue
            raw = np.asarray(outputs[t.name][c.source])
            label = table.models[c.source].summary.get("detector", {})
            rows.append({"task": t.name, "expert": table.models[c.source].info.name,
                         "gate_auroc": round(auroc(p_g[:, c.classes].sum(axis=1), inside), 4),
                         "max_softmax_auroc": round(auroc(raw.max(axis=1), inside), 4),
                         "detector_auroc_on_labels": label.get("auroc")})
    return rows


def _sweep(table, tasks, contexts, outputs, method: str, grid: list[dict]) -> list[dict]:
    rows = []
    for params in grid:
        accs = [run_method(table, contexts[t.name], outputs[t.name], t, method, params)["accuracy"]
                for t in tasks]
        rows.append(params | {"mean_accuracy": round(float(np.mean(accs)), 4)})
    return rows


def scalability(table, tasks, contexts, outputs, config: BenchConfig) -> dict:
    """CHCO's mean accuracy as models join the hub in random orders (the patch VLM is always in)."""
    base = table.default_vlm().id
    others = sorted(m for m in table.models if m != base)
    n = len(others)
    sizes = sorted({0, n} | {int(round(n * f)) for f in (0.1, 0.25, 0.5, 0.75)})
    rng = np.random.default_rng(config.seed)
    curves = []
    for _ in progress(range(config.orders), "hub growth orders"):
        order = [others[i] for i in rng.permutation(n)]
        curve = []
        for s in sizes:
            sub = table.subset([base] + order[:s])
            accs = [run_method(sub, contexts[t.name], outputs[t.name], t, "chco", {})["accuracy"]
                    for t in tasks]
            curve.append(float(np.mean(accs)))
        curves.append(curve)
    arr = np.array(curves)
    return {"models": [s + 1 for s in sizes], "mean": arr.mean(axis=0).round(4).tolist(),
            "std": arr.std(axis=0).round(4).tolist(), "orders": config.orders,
            "curves": arr.round(4).tolist()}


def inference_speed(table, tasks, results, n: int = 64) -> dict:
    """Images per second of the assembled CHCO predictor, from raw images (no cached features)."""
    out = {}
    for t in tasks[:1] + [t for t in tasks if t.name.startswith("emoji")][:1]:
        sel = results[t.name]["chco"]["selection"]
        predictor = TaskPredictor.from_selection(sel, table.hub)
        images = table.corpus.load(t.image_ids[:n])
        predictor.predict(images[:4])  # warm-up: model loading is not inference
        start = time.perf_counter()
        predictor.predict(images)
        out[t.name] = round(len(images) / (time.perf_counter() - start), 2)
    return out


def labelling_cost(table) -> dict:
    sums = [m.summary for m in table.models.values()]
    return {"models": len(sums), "sample_images": len(table.image_ids),
            "seconds": round(sum(s.get("labelling_seconds", 0.0) for s in sums), 1),
            "bytes": int(sum(s.get("bytes", 0) for s in sums))}
