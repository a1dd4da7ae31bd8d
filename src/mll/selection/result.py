"""What every selection method returns: per class its nodes, models and predicted accuracy.

A :class:`Selection` holds, per class, its matched nodes, the models (and heads) that answer it with
their weights, a predicted accuracy with an interval and how it is covered; for the task the
predicted accuracy, the models to load, the seconds taken, the plan reuse will run, and what the
method learned on the way (``diagnostics``: CHCO's objective, P2's r matrix, ModelGPT's scores).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..graph.match import match_status
from . import calibration
from .context import TaskContext
from .plan import Plan
from .task import Task

if TYPE_CHECKING:
    from .proxy import ProxyScorer

Z95 = 1.96  # two-sided 95% normal quantile


@dataclass(frozen=True)
class ClassChoice:
    name: str
    nodes: list[dict]  # [{wnid, name, score}]
    models: list[dict]  # [{model_id, name, kind, heads, weight, role}]
    predicted_accuracy: float | None  # calibrated (mll.selection.calibration)
    interval: tuple[float, float] | None  # calibrated 90% interval of the accuracy on new images
    covered_by: str  # "expert" | "vlm" | "none"
    evidence: dict = field(default_factory=dict)
    match_confidence: float | None = None  # the best node's match score (1.0 when pinned)
    uncertain: bool = False  # the name matched no node, or one below the matcher's confidence


@dataclass(frozen=True)
class Proposal:
    """What a method's ``_plan`` hands back: the plan, who answers each class, and why.

    ``diagnostics`` carries what the method learned for this task (it is never stored on the
    selector, so one fitted selector can answer many tasks, also concurrently).
    """

    plan: Plan
    per_class: list[list[dict]]
    explanation: list[str] = field(default_factory=list)
    diagnostics: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Selection:
    method: str
    task: Task
    classes: list[ClassChoice]
    predicted_accuracy: float | None  # calibrated (mll.selection.calibration)
    interval: tuple[float, float] | None  # calibrated 90% interval of the accuracy on new images
    models: list[str]
    seconds: float
    plan: Plan
    explanation: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    diagnostics: Mapping[str, Any] = field(default_factory=dict)
    # how the prediction was calibrated: level, situation, proxy accuracy and its Wilson interval
    calibration: Mapping[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"method": self.method, "task": {"classes": list(self.task.classes),
                                                "domain": self.task.domain},
                "classes": [dict(c.__dict__) for c in self.classes],
                "predicted_accuracy": self.predicted_accuracy, "interval": self.interval,
                "calibration": _plain(self.calibration),
                "models": self.models, "seconds": round(self.seconds, 4),
                "rule": self.plan.rule, "explanation": self.explanation,
                "warnings": self.warnings, "diagnostics": _plain(self.diagnostics)}


def _plain(value: Any) -> Any:
    """Diagnostics as JSON-ready values (arrays become lists)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return value.round(6).tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def wilson(correct: float, n: float) -> tuple[float, float]:
    """95% Wilson interval for a rate from (possibly fractional, effective) counts."""
    if n <= 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + Z95 ** 2 / n
    centre = (p + Z95 ** 2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / denom
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def per_class_estimates(pred: np.ndarray, ctx: TaskContext, distance: dict[int, int] | None = None
                        ) -> list[tuple[float | None, tuple | None, int, float]]:
    """Per class: weighted proxy accuracy, its Wilson interval on the effective count, images,
    and the effective count itself.

    A class whose accuracy was carried over from other styles (``distance``: levels climbed to
    find the style gap's evidence) counts its images ``1 + distance`` times less: the interval
    widens with the distance of the evidence.
    """
    out = []
    distance = distance or {}
    for k in range(ctx.n_classes):
        mask = ctx.proxy_class == k
        if not mask.any():
            out.append((None, None, 0, 0.0))
            continue
        w = ctx.proxy_weight[mask]
        hit = (pred[mask] == k).astype(float)
        n_eff = w.sum() ** 2 / (w ** 2).sum() / (1 + distance.get(k, 0))
        rate = float((w * hit).sum() / w.sum())
        out.append((round(rate, 4), wilson(rate * n_eff, n_eff), int(mask.sum()),
                    round(float(n_eff), 3)))
    return out


def style_distance(scorer: ProxyScorer, plan) -> dict[int, int]:
    """Per class: the farthest style-gap evidence among the plan's models answering it."""
    out: dict[int, int] = {}
    for c in plan.components:
        model = "proto" if c.kind == "proto" else c.source
        for k in (c.classes if c.role == "expert" else range(scorer.ctx.n_classes)):
            gap = scorer.style_gaps.get((model, k))
            if gap is not None:
                out[k] = max(out.get(k, 0), gap.distance)
    return out


def borrowed_estimates(scorer: ProxyScorer, plan, missing: list[int]
                       ) -> dict[int, tuple[float, float, int]]:
    """Per class without proxy images: (accuracy, effective images, distance) of the plan's
    models answering it, each from related concepts' sample images of the target's style
    (:meth:`StyleCounts.borrowed`), weighted by the components' weights. Experts covering the
    class answer it (the gate hands them its images); otherwise the general part does."""
    ctx = scorer.ctx
    counts = scorer.table.style_counts
    out: dict[int, tuple[float, float, int]] = {}
    for k in missing:
        node = ctx.class_nodes[k]
        if node is None:
            continue
        comps = [c for c in plan.components if c.kind != "proto" and k in c.classes
                 and c.role == "expert"] or \
            [c for c in plan.components if c.kind != "proto" and c.role == "general"]
        others = tuple({ctx.class_nodes[j] for j in range(ctx.n_classes)
                        if j != k and ctx.class_nodes[j] is not None} - {node})
        found = []
        for c in comps:
            rivals = None
            if c.kind == "expert" and c.head_map is not None:
                rivals = (np.delete(c.head_map, k, axis=1) > 0).any(axis=1) & ~(c.head_map[:, k] > 0)
            b = counts.borrowed(c.source, node, ctx.target_style, ctx.n_classes, rivals=rivals,
                                others=others)
            if b is not None:
                found.append((c.weight, b))
        total = sum(w for w, _ in found)
        if not found or total <= 0:
            continue
        acc = sum(w * b.accuracy for w, b in found) / total
        distance = max(0, *(b.distance for _, b in found))
        n_eff = min(b.n_images for _, b in found) / (1 + distance)
        out[k] = (round(acc, 4), round(n_eff, 3), distance)
    return out


def assemble(method: str, scorer: ProxyScorer, proposal: Proposal, seconds: float) -> Selection:
    """Score the proposed plan on the proxy task and build the selection (nothing is mutated)."""
    ctx = scorer.ctx
    plan = proposal.plan
    if plan.n_classes != ctx.n_classes:
        plan = replace(plan, n_classes=ctx.n_classes)
    pred = scorer.predict(plan)
    distance = style_distance(scorer, plan)
    estimates = per_class_estimates(pred, ctx, distance)
    carried = set(ctx.proxy_class[ctx.style_gap].tolist()) if ctx.style_gap.any() else set()
    doc = calibration.rules_for(scorer.table)
    borrowed = borrowed_estimates(scorer, plan, [k for k, e in enumerate(estimates) if e[0] is None])
    classes = []
    for k, name in enumerate(ctx.task.classes):
        raw, proxy_interval, n, n_eff = estimates[k]
        where = calibration.situation(ctx.target_style, k in carried)
        if k in borrowed:  # no sample image: its models' accuracy on related concepts
            raw, n_eff, distance[k] = borrowed[k]
            proxy_interval, where = wilson(raw * n_eff, n_eff), "borrowed"
        acc, interval = (None, None) if raw is None else \
            calibration.rule(method, "class", where, doc).apply(raw, n_eff)
        models = proposal.per_class[k]
        kinds = {m["kind"] for m in models}
        covered = "expert" if "expert" in kinds else ("vlm" if models else "none")
        nodes = [{"wnid": c.wnid, "name": c.name, "score": c.score} for c in ctx.matches[k][:3]]
        best = ctx.matches[k][0] if ctx.matches[k] else None
        pinned = name in ctx.task.pinned
        classes.append(ClassChoice(name, nodes, models, acc, interval, covered,
                                   {"node": ctx.class_nodes[k], "proxy_images": n,
                                    "style_distance": distance.get(k), "situation": where,
                                    "proxy_accuracy": raw, "proxy_interval": proxy_interval,
                                    "proxy_evidence": n_eff},
                                   1.0 if pinned else (best.score if best else None),
                                   not pinned and match_status(best) != "confident"))
    known = [c for c in classes if c.predicted_accuracy is not None]
    where = calibration.situation(ctx.target_style, bool(carried))
    info: dict[str, Any] = {"level": calibration.LEVEL, "situation": where,
                            "fitted_on": doc.get("fitted_on")}
    if known:
        raw = round(float(np.mean([c.evidence["proxy_accuracy"] for c in known])), 4)
        n_eff = sum(c.evidence["proxy_images"] / (1 + (c.evidence["style_distance"] or 0))
                    for c in known)
        evidence = round(float(np.mean([c.evidence["proxy_evidence"] for c in known])), 3)
        task_acc, interval = calibration.rule(method, "task", where, doc).apply(raw, evidence)
        info |= {"proxy_accuracy": raw, "proxy_interval": wilson(raw * n_eff, n_eff),
                 "proxy_evidence": evidence}
    else:
        task_acc, interval = None, None
    return Selection(method, ctx.task, classes, task_acc, interval, plan.sources(), seconds, plan,
                     list(proposal.explanation), list(ctx.warnings), dict(proposal.diagnostics),
                     info)
