"""CHCO: Classification Head Combination Optimisation over experts and VLMs together.

Search space: a general part (the prototype classifier and/or VLMs, answering every class) plus any
set of expert components, each answering the task classes its heads cover (a class on an inner
node is served by all heads below it), trusted per image through the general part's belief that
the image is one of the expert's classes (see :mod:`mll.selection.plan`).

Objective: proxy-task accuracy estimated from labels minus ``cost`` per model loaded, under an
optional budget (models, or milliseconds per image). Solver: exhaustive over expert subsets when
there are at most ``exact_limit`` candidates; otherwise greedy forward selection (add the expert
with the largest gain while the gain exceeds the cost). Accuracy is not submodular, so greedy has
no worst-case guarantee; the benchmark reports its gap to the exact search on small hubs. A final
pass drops single (expert, class) answers whose removal raises the objective: that is
where heads, not whole models, are chosen. The search runs once for each trust level in
``expert_weights`` (how much an expert's answer counts against the general part's inside its
classes) and keeps the best plan: an expert trained on another style than the target needs the
general part to outvote it, an expert on the target's own style should outvote the general part.
"""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np

from ..base import (
    Selector,
    expert_component,
    per_class_from_plan,
    proto_component,
    proxy_accuracy,
    selectors,
    vlm_component,
)
from ..context import TaskContext
from ..plan import Component, Plan


@selectors.register("chco")
class CHCO(Selector):
    name = "chco"
    _parameter_constraints = {"cost": (float, 0.0, 1.0), "budget_models": (int, 1, 1000),
                              "exact_limit": (int, 0, 16)}

    def __init__(self, *, cost: float = 0.002, budget_models: int = 50,
                 budget_ms: float | None = None, exact_limit: int = 6, use_proto: bool = True,
                 prune_heads: bool = True, expert_weights: tuple[float, ...] = (1.0, 2.0, 4.0)
                 ) -> None:
        self.cost = cost
        self.expert_weights = expert_weights
        self.budget_models = budget_models
        self.budget_ms = budget_ms
        self.exact_limit = exact_limit
        self.use_proto = use_proto
        self.prune_heads = prune_heads

    def _plan(self, ctx: TaskContext):
        table = self.table_

        def objective(components: list[Component]) -> float:
            pred = self.scorer_.predict(Plan(components, "gated", ctx.n_classes))
            return proxy_accuracy(pred, ctx) - self.cost * len({c.source for c in components})

        general = self._general(ctx, objective)
        experts = [c for c in (expert_component(table, m, ctx) for m in table.experts) if c]
        experts = [c for c in experts if self._affordable(general + [c])]
        best: tuple[float, list[Component]] | None = None
        for weight in self.expert_weights:  # ties go to the first (smallest) weight
            weighted = [replace(c, weight=weight) for c in experts]
            chosen = self._search(general, weighted, objective)
            if self.prune_heads:
                chosen = self._prune(general, chosen, objective)
            value = objective(general + chosen)
            if best is None or value > best[0] + 1e-9:
                best = (value, chosen)
        plan = Plan(general + best[1], "gated", ctx.n_classes)
        self.objective_ = objective(plan.components)
        return plan, per_class_from_plan(table, plan, ctx)

    def _general(self, ctx: TaskContext, objective) -> list[Component]:
        """The general part: the best of VLMs, prototypes and pairs of them on the proxy task.

        When some classes have no sample images, the proxy cannot judge how a general model does
        on them (and a VLM trained on the sample concepts looks far better there than on unseen
        ones), so the hub's patch VLM answers every class and the others may only join on the
        classes the proxy covers, gated like experts.
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
        return max(options, key=lambda comps: (objective(comps), -len(comps)))

    def _affordable(self, components: list[Component]) -> bool:
        sources = {c.source for c in components}
        if len(sources) > self.budget_models:
            return False
        if self.budget_ms is not None:
            lat = sum(self.table_.models[s].info.latency_ms or 0.0 for s in sources
                      if s in self.table_.models)
            return lat <= self.budget_ms
        return True

    def _search(self, general, experts, objective) -> list[Component]:
        base = objective(general)
        if len(experts) <= self.exact_limit:
            best, best_val = [], base
            for r in range(1, len(experts) + 1):
                for subset in itertools.combinations(experts, r):
                    if self._affordable(general + list(subset)):
                        val = objective(general + list(subset))
                        if val > best_val + 1e-9:
                            best, best_val = list(subset), val
            return best
        chosen: list[Component] = []
        current = base
        remaining = list(experts)
        while remaining:
            scored = [(objective(general + chosen + [c]), i) for i, c in enumerate(remaining)
                      if self._affordable(general + chosen + [c])]
            if not scored:
                break
            val, i = max(scored)
            if val <= current + 1e-9:
                break
            chosen.append(remaining.pop(i))
            current = val
        return chosen

    def _prune(self, general, chosen, objective) -> list[Component]:
        """Drop single (expert, class) answers that lower the objective; a pruned expert is a new
        component, so the scorer never serves probabilities of the unpruned one."""
        chosen = list(chosen)
        current = objective(general + chosen)
        for i in range(len(chosen)):
            for k in list(chosen[i].classes):
                comp = chosen[i]
                if len(comp.classes) == 1:
                    break
                trial = Component(comp.kind, comp.source, comp.weight, comp.role,
                                  [c for c in comp.classes if c != k],
                                  head_map=_without(comp.head_map, k))
                val = objective(general + chosen[:i] + [trial] + chosen[i + 1:])
                if val > current + 1e-9:
                    chosen[i], current = trial, val
        return chosen

    def _explain(self, ctx: TaskContext, plan: Plan) -> list[str]:
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
                lines.append(f"{name(c)} answers {names}{more}, trusted per image by the general "
                             "part's belief that the image is one of these classes")
        lines.append(f"objective (proxy accuracy - {self.cost} x models): {self.objective_:.4f}")
        return lines


def _without(head_map: np.ndarray, k: int) -> np.ndarray:
    out = head_map.copy()
    out[:, k] = 0
    return out
