"""Selection results, the selector interface, and the shared tools every method uses.

Every method returns a :class:`Selection`: per class its matched nodes, the models (and heads) that
answer it with their weights, a predicted accuracy with an interval and how it is covered; for the
task the predicted accuracy, the models to load, the seconds taken, and the plan reuse will run.
"""

from __future__ import annotations

import inspect
import math
import time
from dataclasses import dataclass, field

import numpy as np

from .._registry import Registry
from ..errors import InvalidParameterError, NotFittedError
from .context import TaskContext, build_context
from .plan import Component, Plan, combine
from .task import Task

Z95 = 1.96


@dataclass
class ClassChoice:
    name: str
    nodes: list[dict]  # [{wnid, name, score}]
    models: list[dict]  # [{model_id, name, kind, heads, weight}]
    predicted_accuracy: float | None
    interval: tuple[float, float] | None
    covered_by: str  # "expert" | "vlm" | "none"
    evidence: dict = field(default_factory=dict)


@dataclass
class Selection:
    method: str
    task: Task
    classes: list[ClassChoice]
    predicted_accuracy: float | None
    interval: tuple[float, float] | None
    models: list[str]
    seconds: float
    plan: Plan
    explanation: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"method": self.method, "task": {"classes": list(self.task.classes),
                                                "domain": self.task.domain},
                "classes": [c.__dict__ for c in self.classes],
                "predicted_accuracy": self.predicted_accuracy, "interval": self.interval,
                "models": self.models, "seconds": round(self.seconds, 4),
                "rule": self.plan.rule, "explanation": self.explanation,
                "warnings": self.warnings}


selectors: Registry[type] = Registry("selection method")


def wilson(correct: float, n: float) -> tuple[float, float]:
    """95% Wilson interval for a rate from (possibly fractional, effective) counts."""
    if n <= 0:
        return (0.0, 1.0)
    p = correct / n
    denom = 1 + Z95 ** 2 / n
    centre = (p + Z95 ** 2 / (2 * n)) / denom
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95 ** 2 / (4 * n * n)) / denom
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


class Selector:
    """Base class: keyword-only hyper-parameters in ``__init__``, ``fit(table)``, ``select(task)``."""

    name = "base"
    _parameter_constraints: dict[str, tuple] = {}

    def get_params(self) -> dict:
        sig = inspect.signature(type(self).__init__)
        return {p: getattr(self, p) for p in sig.parameters if p != "self"}

    def set_params(self, **params) -> Selector:
        valid = self.get_params()
        for key, value in params.items():
            if key not in valid:
                raise InvalidParameterError(f"{type(self).__name__} has no parameter {key!r}; "
                                            f"it has {sorted(valid)}")
            setattr(self, key, value)
        return self

    def _validate(self) -> None:
        for key, (kind, lo, hi) in self._parameter_constraints.items():
            value = getattr(self, key)
            if not isinstance(value, kind) or not (lo <= value <= hi):
                raise InvalidParameterError(f"{type(self).__name__}: {key} must be a {kind.__name__}"
                                            f" in [{lo}, {hi}], got {value!r}")

    def fit(self, table) -> Selector:
        self._validate()
        self.table_ = table
        return self

    def select(self, task: Task, context: TaskContext | None = None) -> Selection:
        if not hasattr(self, "table_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit(label_table) first")
        start = time.perf_counter()
        ctx = context or build_context(self.table_, task)
        self.scorer_ = ProxyScorer(self.table_, ctx)
        plan, per_class_models = self._plan(ctx)
        return finish(self.name, self.scorer_, plan, per_class_models,
                      time.perf_counter() - start, self._explain(ctx, plan))

    def _plan(self, ctx: TaskContext) -> tuple[Plan, list[list[dict]]]:
        raise NotImplementedError

    def _explain(self, ctx: TaskContext, plan: Plan) -> list[str]:
        return []


# -- components built from labels ------------------------------------------------------------

def expert_component(table, label, ctx: TaskContext, weight: float = 1.0) -> Component | None:
    """An expert's heads mapped onto task classes: a head votes for a class when its node is the
    class's node or below it, or, discounted, when it is a close relative of a class no head
    answers. None when no head maps to any class."""
    graph = table.graph
    head_wnids = [c.wnid for c in label.info.classes]
    head_map = np.zeros((len(head_wnids), ctx.n_classes), dtype=np.float32)
    class_of: dict[str, list[int]] = {}
    for k, node in enumerate(ctx.class_nodes):
        if node is not None:
            class_of.setdefault(node, []).append(k)
    for j, w in enumerate(head_wnids):
        if w:
            for node in _ancestors(table, w) & class_of.keys():
                head_map[j, class_of[node]] = 1.0
    # a head under two classes' nodes votes for the most specific one only
    for j in np.flatnonzero(head_map.sum(axis=1) > 1):
        ks = np.flatnonzero(head_map[j])
        best = max(ks, key=lambda k: int(graph.depth[graph.index(ctx.class_nodes[k])]))
        head_map[j] = 0
        head_map[j, best] = 1
    _add_relatives(graph, head_wnids, head_map, ctx)
    classes = np.flatnonzero(head_map.sum(axis=0) > 0).tolist()
    if not classes:
        return None
    return Component("expert", label.id, weight, "expert", classes, head_map=head_map)


RELATIVE_DISCOUNT = 0.5  # per edge between a class's node and a stand-in head's node


def _add_relatives(graph, head_wnids, head_map: np.ndarray, ctx: TaskContext) -> None:
    """A class no head answers directly may be served by a close relative's head (its parent,
    grandparent or sibling), down-weighted by distance; a head stands in for one class at most."""
    free = {w: j for j, w in enumerate(head_wnids) if w and not head_map[j].any()}
    if not free:
        return
    claims: dict[int, tuple[int, int]] = {}  # head -> (distance, class)
    for k, node in enumerate(ctx.class_nodes):
        if node is None or head_map[:, k].any():
            continue
        parents = graph.parents(node)
        relatives = [(p, 1) for p in parents]
        relatives += [(g, 2) for p in parents for g in graph.parents(p)]
        relatives += [(c, 2) for p in parents for c in graph.children(p) if c != node]
        for w, dist in relatives:
            j = free.get(w)
            if j is not None and (j not in claims or claims[j][0] > dist):
                claims[j] = (dist, k)
    for j, (dist, k) in claims.items():
        head_map[j, k] = RELATIVE_DISCOUNT ** dist


def _ancestors(table, wnid: str) -> set[str]:
    """The node and its ancestors, memoised on the table (heads repeat across tasks)."""
    cache = table.__dict__.setdefault("_anc_cache", {})
    if wnid not in cache:
        cache[wnid] = table.graph.ancestors(wnid, include_self=True)
    return cache[wnid]


def class_texts(table, ctx: TaskContext) -> list[list[str]]:
    """Texts describing each class: its name and, when matched, its node's caption."""
    texts = []
    for name, node in zip(ctx.task.classes, ctx.class_nodes, strict=True):
        texts.append([name.replace("_", " ")] + ([table.graph.caption(node)] if node else []))
    return texts


def vlm_component(table, label, ctx: TaskContext, weight: float = 1.0,
                  role: str = "general", classes: list[int] | None = None) -> Component:
    adapter = table.adapter(label.id)
    texts = class_texts(table, ctx)
    flat = [t for group in texts for t in group]
    emb = adapter.encode_texts(flat)
    rows, i = [], 0
    for group in texts:
        v = emb[i: i + len(group)].mean(axis=0)
        rows.append(v / max(float(np.linalg.norm(v)), 1e-12))
        i += len(group)
    return Component("vlm", label.id, weight, role, classes or [], text_emb=np.stack(rows),
                     scale=float(getattr(adapter, "logit_scale", 100.0)))


def proto_component(table, ctx: TaskContext, weight: float = 1.0, scale: float = 30.0
                    ) -> Component | None:
    """Nearest class mean of the general backbone's features over each class's sample images."""
    sums = _class_sums(table, ctx)
    present = np.flatnonzero(np.abs(sums).sum(axis=1) > 0).tolist()
    if not present:
        return None
    protos = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    role = "general" if len(present) == ctx.n_classes else "expert"
    comp = Component("proto", table.proto_backbone, weight, role, present,
                     prototypes=protos.astype(np.float32), scale=scale)
    return comp


def _class_sums(table, ctx: TaskContext) -> np.ndarray:
    """(K, D) weighted sums of the prototype backbone's features of each class's proxy images."""
    feats = table.proto_features[ctx.proxy_index]
    sums = np.zeros((ctx.n_classes, feats.shape[1]))
    np.add.at(sums, ctx.proxy_class, feats * ctx.proxy_weight[:, None])
    return sums


# -- scoring on the proxy task -----------------------------------------------------------------

def proxy_proba(table, comp: Component, ctx: TaskContext) -> np.ndarray:
    """A component's (P, K) probabilities on the proxy images, from labels (no inference)."""
    idx = ctx.proxy_index
    if comp.kind in ("expert", "vlm"):
        return comp.proba(table.models[comp.source].outputs[idx]).astype(np.float32)
    return _proto_proxy_proba(table, comp, ctx).astype(np.float32)


def _proto_proxy_proba(table, comp: Component, ctx: TaskContext) -> np.ndarray:
    """Prototypes scored leave-one-group-out: an image never votes for a class mean that holds it
    or an augmented copy of the same source image (such near-duplicates made prototypes look far
    better on the proxy task than on new images).

    An image whose group is all its class has is *imputed*: it is answered correctly (by the mean
    that holds it) with probability rho, the leave-one-group-out accuracy of the images whose class
    keeps other source images, chosen by a seeded draw so the estimate is deterministic.
    """
    idx = ctx.proxy_index
    feats = table.proto_features[idx].astype(np.float64)
    sums = _class_sums(table, ctx)
    own, w = ctx.proxy_class, ctx.proxy_weight
    _, group = np.unique(table.image_groups[idx], return_inverse=True)
    held = np.zeros((group.max() + 1, feats.shape[1]))  # each group's weighted feature sum
    np.add.at(held, group, feats * w[:, None])
    held = held[group]  # (P, D): what leaving image i's group out removes from its class sum
    r = np.arange(len(idx))
    norms2 = (sums ** 2).sum(axis=1)  # (K,)
    dots = feats @ sums.T  # (P, K)
    sims = dots / np.sqrt(np.maximum(norms2, 1e-12))  # every class mean still holding every image
    with_own = sims[r, own]  # the similarity to the own class mean that still holds the image
    own_dot = dots[r, own] - (feats * held).sum(axis=1)
    rest2 = norms2[own] - 2 * (held * sums[own]).sum(axis=1) + (held ** 2).sum(axis=1)
    emptied = rest2 <= 1e-9 * np.maximum(norms2[own], 1e-12)
    # no mean left for the own class: -1, below any cosine of these non-negative features
    sims[r, own] = np.where(emptied, -1.0, own_dot / np.sqrt(np.maximum(rest2, 1e-12)))
    inside = np.isin(own, comp.classes)
    judged = inside & ~emptied
    if (inside & emptied).any():
        hit = sims[judged].argmax(axis=1) == own[judged]
        rho = float((w[judged] * hit).sum() / w[judged].sum()) if judged.any() else 0.0
        lucky = emptied & (np.random.default_rng(0).random(len(idx)) < rho)
        sims[lucky, own[lucky]] = with_own[lucky]
    sims[:, np.setdiff1d(np.arange(ctx.n_classes), comp.classes)] = -np.inf
    z = comp.scale * (sims - sims.max(axis=1, keepdims=True))
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


class ProxyScorer:
    """Proxy probabilities of one selection's components, each computed once.

    A component's probabilities do not depend on its weight, so re-weighted copies
    (``dataclasses.replace``) share one entry. The key holds the identity of the component's
    arrays, and the entry keeps the component alive so those ids are never reused; a search that
    changes a component builds a new one instead of mutating it.
    """

    def __init__(self, table, ctx: TaskContext) -> None:
        self.table, self.ctx = table, ctx
        self._cache: dict[tuple, tuple[Component, np.ndarray]] = {}

    @staticmethod
    def _key(comp: Component) -> tuple:
        return (comp.kind, comp.source, comp.role, tuple(comp.classes), comp.scale,
                id(comp.head_map), id(comp.text_emb), id(comp.prototypes))

    def proba(self, comp: Component) -> np.ndarray:
        hit = self._cache.get(self._key(comp))
        if hit is None:
            hit = self._cache[self._key(comp)] = (comp, proxy_proba(self.table, comp, self.ctx))
        return hit[1]

    def store(self, comp: Component, proba: np.ndarray) -> None:
        """Record probabilities a search derived itself (e.g. an expert with one class dropped)."""
        self._cache[self._key(comp)] = (comp, proba)

    def predict(self, plan: Plan) -> np.ndarray:
        if not len(self.ctx.proxy_index):
            return np.zeros(0, int)
        return combine(plan, [self.proba(c) for c in plan.components]).argmax(axis=1)


def proxy_accuracy(pred: np.ndarray, ctx: TaskContext) -> float:
    total = ctx.proxy_weight.sum()
    return float((ctx.proxy_weight * (pred == ctx.proxy_class)).sum() / total) if total else 0.0


def per_class_estimates(pred: np.ndarray, ctx: TaskContext) -> list[tuple[float | None, tuple | None, int]]:
    out = []
    for k in range(ctx.n_classes):
        mask = ctx.proxy_class == k
        if not mask.any():
            out.append((None, None, 0))
            continue
        w = ctx.proxy_weight[mask]
        hit = (pred[mask] == k).astype(float)
        n_eff = w.sum() ** 2 / (w ** 2).sum()
        rate = float((w * hit).sum() / w.sum())
        out.append((round(rate, 4), wilson(rate * n_eff, n_eff), int(mask.sum())))
    return out


def finish(method: str, scorer: ProxyScorer, plan: Plan, per_class_models: list[list[dict]],
           seconds: float, explanation: list[str]) -> Selection:
    """Score the plan on the proxy task and assemble the selection."""
    ctx = scorer.ctx
    plan.n_classes = ctx.n_classes
    pred = scorer.predict(plan)
    estimates = per_class_estimates(pred, ctx)
    classes = []
    for k, name in enumerate(ctx.task.classes):
        acc, interval, n = estimates[k]
        models = per_class_models[k]
        kinds = {m["kind"] for m in models}
        covered = "expert" if "expert" in kinds else ("vlm" if models else "none")
        nodes = [{"wnid": c.wnid, "name": c.name, "score": c.score} for c in ctx.matches[k][:3]]
        classes.append(ClassChoice(name, nodes, models, acc, interval, covered,
                                   {"node": ctx.class_nodes[k], "proxy_images": n}))
    known = [c for c in classes if c.predicted_accuracy is not None]
    if known and len(ctx.proxy_index):
        task_acc = round(float(np.mean([c.predicted_accuracy for c in known])), 4)
        n_eff = sum(c.evidence["proxy_images"] for c in known)
        interval = wilson(task_acc * n_eff, n_eff)
    else:
        task_acc, interval = None, None
    return Selection(method, ctx.task, classes, task_acc, interval, plan.sources(), seconds, plan,
                     explanation, list(ctx.warnings))


def model_entry(table, comp: Component, ctx: TaskContext, k: int) -> dict:
    info = table.models[comp.source].info if comp.source in table.models else None
    heads = []
    if comp.kind == "expert":
        heads = [info.classes[j].name for j in np.flatnonzero(comp.head_map[:, k])]
    return {"model_id": comp.source, "name": info.name if info else "prototypes",
            "kind": "expert" if comp.kind == "expert" else ("vlm" if comp.kind == "vlm" else "proto"),
            "heads": heads, "weight": round(comp.weight, 3), "role": comp.role}


def per_class_from_plan(table, plan: Plan, ctx: TaskContext) -> list[list[dict]]:
    out = []
    for k in range(ctx.n_classes):
        out.append([model_entry(table, c, ctx, k) for c in plan.components
                    if c.role == "general" or k in c.classes])
    return out
