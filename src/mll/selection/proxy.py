"""Scoring plans on the proxy task from cached label outputs (no model runs).

Every estimate in selection is a weighted accuracy on the proxy task's sample images; this module
turns a component into its (P, K) probabilities on them and a plan into predictions.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax

from .context import TaskContext
from .plan import Component, Plan, combine
from .style import Gap, transfer


def proxy_proba(table, comp: Component, ctx: TaskContext) -> np.ndarray:
    """A component's (P, K) probabilities on the proxy images, from labels (no inference)."""
    idx = ctx.proxy_index
    if comp.kind in ("expert", "vlm"):
        return comp.proba(table.models[comp.source].outputs[idx]).astype(np.float32)
    return _proto_proxy_proba(table, comp, ctx).astype(np.float32)


def class_sums(table, ctx: TaskContext) -> np.ndarray:
    """(K, D) weighted sums of the prototype backbone's features of each class's proxy images."""
    return weighted_sums(ctx.proxy_class, ctx.proxy_weight, table.proto_features[ctx.proxy_index],
                         ctx.n_classes)


def weighted_sums(rows: np.ndarray, weights: np.ndarray, values: np.ndarray, n: int) -> np.ndarray:
    """(n, D) float64: ``out[rows[i]] += weights[i] * values[i]``, as one sparse product
    (``np.add.at`` does the same one row at a time, several times slower on selection's path)."""
    from scipy.sparse import csr_matrix

    pick = csr_matrix((np.asarray(weights, dtype=np.float64), (rows, np.arange(len(rows)))),
                      shape=(n, len(rows)))
    return np.asarray(pick @ np.asarray(values, dtype=np.float64))


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
    sums = class_sums(table, ctx)
    own, w = ctx.proxy_class, ctx.proxy_weight
    _, group = np.unique(table.image_groups[idx], return_inverse=True)
    held = weighted_sums(group, w, feats, group.max() + 1)  # each group's weighted feature sum
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
    return softmax(comp.scale * (sims - sims.max(axis=1, keepdims=True)), axis=1)


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
        #: per (model, class): the style gap a component's answers were carried over with
        self.style_gaps: dict[tuple[str, int], Gap] = {}

    @staticmethod
    def _key(comp: Component) -> tuple:
        return (comp.kind, comp.source, comp.role, tuple(comp.classes), comp.scale,
                id(comp.head_map), id(comp.text_emb), id(comp.prototypes))

    def proba(self, comp: Component) -> np.ndarray:
        hit = self._cache.get(self._key(comp))
        if hit is None:
            hit = self._cache[self._key(comp)] = (comp, self._styled(comp))
        return hit[1]

    def _styled(self, comp: Component) -> np.ndarray:
        """Proxy probabilities, carried over to the target style where a class lacks it."""
        proba = proxy_proba(self.table, comp, self.ctx)
        if not self.ctx.style_gap.any():
            return proba
        model = "proto" if comp.kind == "proto" else comp.source
        classes = comp.classes if comp.role == "expert" else []
        proba, gaps = transfer(self.table.style_counts, model, classes, self.ctx, proba)
        self.style_gaps.update({(model, k): g for k, g in gaps.items()})
        return proba

    def store(self, comp: Component, proba: np.ndarray) -> None:
        """Record probabilities a search derived itself (e.g. an expert with one class dropped)."""
        self._cache[self._key(comp)] = (comp, proba)

    def predict(self, plan: Plan) -> np.ndarray:
        if not len(self.ctx.proxy_index):
            return np.zeros(0, int)
        return combine(plan, [self.proba(c) for c in plan.components]).argmax(axis=1)


def proxy_accuracy(pred: np.ndarray, ctx: TaskContext) -> float:
    """Weighted share of proxy images predicted as their own class (classes weigh the same)."""
    total = ctx.proxy_weight.sum()
    return float((ctx.proxy_weight * (pred == ctx.proxy_class)).sum() / total) if total else 0.0
