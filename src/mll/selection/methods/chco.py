"""CHCO: Classification Head Combination Optimisation over experts and VLMs together.

Search space: a general part (the prototype classifier and/or VLMs, answering every class) plus any
set of expert components, each answering the task classes its heads cover (a class on an inner
node is served by all heads below it), trusted per image through the general part's belief that
the image is one of the expert's classes (see :mod:`mll.selection.plan`).

Candidates: the ``candidates`` best experts serving each class's node, its parents and its
grandparents (the nodes whose heads may answer the class, as heads or close relatives), from the
hub's candidate index; only their labels are read. ``candidates=None`` considers every expert.

Objective: proxy-task accuracy estimated from labels minus ``cost`` per model loaded, under an
optional budget (models, or milliseconds per image). Solver: exhaustive over expert subsets when
there are at most ``exact_limit`` candidates; otherwise greedy forward selection (add the expert
with the largest gain while the gain exceeds the cost). Accuracy is not submodular, so greedy has
no worst-case guarantee. A final
pass drops single (expert, class) answers whose removal raises the objective: that is
where heads, not whole models, are chosen. The search runs once for each trust level in
``expert_weights`` (how much an expert's answer counts against the general part's inside its
classes) and keeps the best plan: an expert trained on another style than the target needs the
general part to outvote it, an expert on the target's own style should outvote the general part.
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from numbers import Integral, Real

import numpy as np

from ..base import Selector, selectors
from ..components import expert_component, per_class_from_plan, proto_component, vlm_component
from ..context import TaskContext
from ..params import Boolean, Interval, SequenceOf
from ..plan import Component, Plan
from ..proxy import ProxyScorer, proxy_accuracy
from ..result import Proposal

CANDIDATES = 8  # experts per node from the index (benchmarks/candidates.py: chco mean vs N)


@selectors.register("chco")
class CHCO(Selector):
    name = "chco"
    _parameter_constraints = {
        "cost": [Interval(Real, 0, 1)],  # 0: every gain counts, however small
        "budget_models": [Interval(Integral, 1, None)],
        "budget_ms": [None, Interval(Real, 0, None, closed="neither")],
        # the exact search scores every subset: 2**16 plans is already seconds per trust level
        "exact_limit": [Interval(Integral, 0, 16)],
        "use_proto": [Boolean()],
        "prune_heads": [Boolean()],
        "expert_weights": [SequenceOf(Interval(Real, 0, None, closed="neither"))],
        "candidates": [None, Interval(Integral, 1, None)],
    }

    def __init__(self, *, cost: float = 0.002, budget_models: int = 50,
                 budget_ms: float | None = None, exact_limit: int = 6, use_proto: bool = True,
                 prune_heads: bool = True, expert_weights: tuple[float, ...] = (1.0, 2.0, 4.0),
                 candidates: int | None = CANDIDATES) -> None:
        self.candidates = candidates
        self.cost = cost
        self.expert_weights = expert_weights
        self.budget_models = budget_models
        self.budget_ms = budget_ms
        self.exact_limit = exact_limit
        self.use_proto = use_proto
        self.prune_heads = prune_heads

    def _plan(self, ctx: TaskContext, scorer: ProxyScorer) -> Proposal:
        table = self.table_

        def objective(components: list[Component]) -> float:
            pred = scorer.predict(Plan(components, "gated", ctx.n_classes))
            return proxy_accuracy(pred, ctx) - self.cost * len({c.source for c in components})

        general = self._general(ctx, objective)
        experts = [c for c in (expert_component(table, m, ctx) for m in self._experts(ctx)) if c]
        if ctx.target_style is not None and experts:  # the same for every expert: once
            patch = table.style_counts.accuracy(table.default_vlm().id, ctx.target_style)
            covered = set(ctx.proxy_class[~ctx.style_gap].tolist())
            experts = [c for c in (self._judged(c, ctx.target_style, patch, covered)
                                   for c in experts) if c]
        experts = [c for c in experts if self._affordable(general + [c])]
        best: tuple[float, list[Component], float] | None = None
        for weight in self.expert_weights:  # ties go to the first weight
            state = _GatedSearch(scorer, ctx, general, self.cost)
            weighted = [replace(c, weight=weight) for c in experts]
            chosen = self._search(state, weighted)
            if self.prune_heads:
                chosen = self._prune(state, chosen)
            if best is None or state.value > best[0] + 1e-9:
                best = (state.value, chosen, weight)
        value, chosen, weight = best
        plan = Plan(general + chosen, "gated", ctx.n_classes)
        return Proposal(plan, per_class_from_plan(table, plan, ctx),
                        self._explain(ctx, plan, value),
                        {"objective": round(value, 6), "expert_weight": weight,
                         "candidate_experts": len(experts)})

    def _experts(self, ctx: TaskContext) -> list:
        """The experts the search may choose from: every one, or the index's candidates."""
        table = self.table_
        if self.candidates is None:
            return table.experts
        nodes = set()
        graph = table.graph
        for v in (v for v in ctx.class_nodes if v):
            parents = graph.parents(v)
            nodes |= {v, *parents, *(g for p in parents for g in graph.parents(p))}
        ids = table.candidates(nodes, self.candidates, kind="expert")
        labels = table.models.many(ids) if hasattr(table.models, "many") else table.models
        return [labels[m] for m in ids]

    def _general(self, ctx: TaskContext, objective) -> list[Component]:
        """The general part: the best of VLMs, prototypes and pairs of them on the proxy task.

        When some classes have no sample images, the proxy cannot judge how a general model does
        on them (and a VLM trained on the sample concepts looks far better there than on unseen
        ones), so the hub's patch VLM answers every class and the others may only join on the
        classes the proxy covers, gated like experts. Only parts within the budget compete; when
        none is, the one with the fewest models and least latency answers.
        """
        table = self.table_
        proto = proto_component(table, ctx) if self.use_proto and len(ctx.proxy_index) else None
        covered = sorted(set(ctx.proxy_class.tolist()))
        default = table.default_vlm()
        if len(covered) < ctx.n_classes:
            base = [vlm_component(table, default, ctx)]
            extras = [vlm_component(table, m, ctx, role="expert", classes=covered)
                      for m in table.vlms if m.id != default.id and covered]
            extras += [proto] if proto is not None else []
            options = [base] + [base + [e] for e in extras]
            if proto is not None:
                options += [base + [proto, e] for e in extras if e is not proto]
            options = [base + [replace(e, weight=w) for e in opt[1:]]
                       for opt in options for w in self.expert_weights]
        else:
            vlms = [vlm_component(table, m, ctx) for m in table.vlms]
            options = [[v] for v in vlms]
            if proto is not None:
                options += [[proto]] + [[proto, v] for v in vlms]
        pool = [o for o in options if self._affordable(o)] or [
            min(options, key=lambda o: (len({c.source for c in o}), self._latency(o)))]
        return max(pool, key=lambda comps: (objective(comps), -len(comps)))

    def _judged(self, comp: Component, style: str, patch: float | None,
                covered: set[int]) -> Component | None:
        """The expert, answering a class without sample images of the target's ``style`` (which
        the proxy cannot judge directly; ``covered`` are the classes with such images) only if it
        does at least as well as the patch VLM (accuracy ``patch``) on that style over all its
        sample images; else only the ``covered`` classes (None if none). An expert trained on
        emoji or 28x28 images is not trusted on photographs from other styles' evidence; an
        ImageNet classifier is. (Carrying accuracy over from other styles barely predicts a
        node's photo accuracy: see ``style.py``.)"""
        own = self.table_.style_counts.accuracy(comp.source, style)
        if own is None or patch is None or own >= patch:
            return comp
        keep = [k for k in comp.classes if k in covered]
        if len(keep) == len(comp.classes):
            return comp
        if not keep:
            return None
        head_map = comp.head_map.copy()
        head_map[:, [k for k in comp.classes if k not in covered]] = 0
        return replace(comp, classes=keep, head_map=head_map)

    def _latency(self, components: list[Component]) -> float:
        """Milliseconds per image of the models behind ``components`` (prototypes: unmeasured)."""
        models = self.table_.models
        return sum(models[s].info.latency_ms or 0.0 for s in {c.source for c in components}
                   if s in models)

    def _affordable(self, components: list[Component]) -> bool:
        if len({c.source for c in components}) > self.budget_models:
            return False
        return self.budget_ms is None or self._latency(components) <= self.budget_ms

    def _search(self, state: _GatedSearch, experts: list[Component]) -> list[Component]:
        """Exhaustive over expert subsets up to ``exact_limit`` candidates, greedy beyond."""
        general = state.general
        if len(experts) <= self.exact_limit:
            best, best_val = [], state.value
            for r in range(1, len(experts) + 1):
                for subset in itertools.combinations(experts, r):
                    if self._affordable(general + list(subset)):
                        val = state.score_with(list(subset))
                        if val > best_val + 1e-9:
                            best, best_val = list(subset), val
            for comp in best:
                state.add(comp)
            return best
        remaining = list(experts)
        while remaining:
            scored = [(state.score_with([c]), i) for i, c in enumerate(remaining)
                      if self._affordable(general + state.chosen + [c])]
            if not scored:
                break
            val, i = max(scored)
            if val <= state.value + 1e-9:
                break
            # a candidate that changed no answer for the better (its gain no more than its cost)
            # is not scored again: with hundreds of candidates most are such, and later rounds
            # cost only the rest
            useless = {j for v, j in scored if v <= state.value - self.cost + 1e-9}
            chosen = remaining[i]
            remaining = [c for j, c in enumerate(remaining) if j != i and j not in useless]
            state.add(chosen)
        return state.chosen

    def _prune(self, state: _GatedSearch, chosen: list[Component]) -> list[Component]:
        """Drop single (expert, class) answers whose removal raises the objective by at least the
        cost of a model (smaller gains on a few hundred proxy images are noise).

        A trial is first scored on the proxy images most likely to change (those of the class, or
        answered with it by the plan or the expert), and kept only if it also raises the objective
        on all proxy images.
        """
        for comp in list(chosen):
            for k in list(comp.classes):
                if len(comp.classes) == 1:
                    break
                trial = Component(comp.kind, comp.source, comp.weight, comp.role,
                                  [c for c in comp.classes if c != k],
                                  head_map=_without(comp.head_map, k))
                if state.swap_gain(comp, trial, k) >= self.cost and state.try_swap(comp, trial, k,
                                                                                    self.cost):
                    comp = trial
        return state.chosen

    def _explain(self, ctx: TaskContext, plan: Plan, value: float) -> list[str]:
        def name(c: Component) -> str:
            if c.kind == "proto":
                return "prototypes of the sample images"
            return f"{self.table_.models[c.source].info.name} ({c.source})"

        gen = ", ".join(name(c) for c in plan.components if c.role == "general")
        lines = [f"general part: {gen}, the best proxy accuracy among VLMs, prototypes and pairs"]
        for c in plan.components:
            if c.role == "expert":
                names = ", ".join(ctx.task.classes[k] for k in c.classes[:12])
                more = f" and {len(c.classes) - 12} more" if len(c.classes) > 12 else ""
                lines.append(f"{name(c)} answers {names}{more} at weight {c.weight:g}, trusted per "
                             "image by the general part's belief that the image is one of these "
                             "classes")
        lines.append(f"objective (proxy accuracy - {self.cost} x models): {value:.4f}")
        return lines


def _without(head_map: np.ndarray, k: int) -> np.ndarray:
    out = head_map.copy()
    out[:, k] = 0
    return out


class _GatedSearch:
    """The gated combination's unnormalised total on the proxy images, kept up to date as experts
    join or change, so a candidate costs one (P, K) update instead of a whole combination."""

    def __init__(self, scorer, ctx: TaskContext, general: list[Component], cost: float) -> None:
        self.scorer, self.ctx, self.general, self.cost = scorer, ctx, general, cost
        wsum = sum(c.weight for c in general)
        self.p_g = sum(c.weight * scorer.proba(c) for c in general) / wsum
        self.chosen: list[Component] = []
        self._set(self.p_g * wsum)

    def _set(self, total: np.ndarray) -> None:
        self.total, self.pred = total, total.argmax(axis=1)
        self.best = total[np.arange(len(total)), self.pred]
        self.value = self._score(self.pred, self.chosen)

    def _contribution(self, comp: Component) -> np.ndarray:
        gate = self.p_g[:, comp.classes].sum(axis=1, keepdims=True)
        return comp.weight * gate * self.scorer.proba(comp)

    def _score(self, pred: np.ndarray, chosen: list[Component]) -> float:
        sources = {c.source for c in self.general + chosen}
        return proxy_accuracy(pred, self.ctx) - self.cost * len(sources)

    def score_with(self, extra: list[Component]) -> float:
        """The objective with ``extra`` added. Experts add to their classes' columns only, so
        only those columns are summed: an image's answer changes where one of them overtakes
        its current best (a tie keeps the lower column, as a full argmax would)."""
        cols = np.array(sorted({k for c in extra for k in c.classes}), dtype=np.int64)
        if not len(cols):
            return self._score(self.pred, self.chosen + extra)
        sub = self.total[:, cols].copy()
        for c in extra:
            gate = self.p_g[:, c.classes].sum(axis=1, keepdims=True)
            sub += c.weight * gate * self.scorer.proba(c)[:, cols]
        j = sub.argmax(axis=1)
        top = sub[np.arange(len(sub)), j]
        win = (top > self.best) | ((top == self.best) & (cols[j] < self.pred))
        return self._score(np.where(win, cols[j], self.pred), self.chosen + extra)

    def add(self, comp: Component) -> None:
        self.chosen.append(comp)
        self._set(self.total + self._contribution(comp))

    def swap_gain(self, old: Component, new: Component, k: int) -> float:
        """Objective change from replacing ``old`` by ``new`` (``old`` without class ``k``),
        counted on the images that can change; ``new``'s probabilities are derived, not cached."""
        q_old = self.scorer.proba(old)
        rows = np.flatnonzero((self.ctx.proxy_class == k) | (self.pred == k) | (q_old[:, k] > 0.5))
        if not len(rows):
            return 0.0
        p_g = self.p_g[rows]
        before = self.total[rows]
        after = (before - old.weight * p_g[:, old.classes].sum(axis=1, keepdims=True) * q_old[rows]
                 + new.weight * p_g[:, new.classes].sum(axis=1, keepdims=True)
                 * _drop_class(q_old[rows], k))
        w, truth = self.ctx.proxy_weight[rows], self.ctx.proxy_class[rows]
        gain = (w * (after.argmax(axis=1) == truth)).sum() - (w * (self.pred[rows] == truth)).sum()
        return float(gain / self.ctx.proxy_weight.sum())

    def try_swap(self, old: Component, new: Component, k: int, min_gain: float = 0.0) -> bool:
        """Replace ``old`` by ``new`` if that raises the objective, on all proxy images, by more
        than ``min_gain``."""
        before = self._contribution(old)
        self.scorer.store(new, _drop_class(self.scorer.proba(old), k))
        total = self.total - before + self._contribution(new)
        chosen = [new if c is old else c for c in self.chosen]
        pred = total.argmax(axis=1)
        if self._score(pred, chosen) <= self.value + max(min_gain, 1e-9):
            return False
        self.chosen = chosen
        self._set(total)
        return True


def _drop_class(q: np.ndarray, k: int) -> np.ndarray:
    """An expert's class probabilities with class ``k`` no longer answered (renormalised)."""
    rest = 1.0 - q[:, k:k + 1]  # q sums to one (or zero) over the expert's classes
    out = np.divide(q, rest, out=np.zeros_like(q), where=rest > 1e-6)
    out[:, k] = 0
    return out
