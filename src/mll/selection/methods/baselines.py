"""Baselines: the general VLM alone, prototypes alone, INB, random, every model, and the oracle.

The oracle is the only method that looks at target images: give it ``target_accuracy``, a
function from a component to that component's accuracy on the labelled target images.
"""

from __future__ import annotations

from dataclasses import replace
from numbers import Integral

import numpy as np

from ...errors import InvalidParameterError
from ..base import Selector, selectors
from ..components import (
    expert_component,
    model_entry,
    per_class_from_plan,
    proto_component,
    vlm_component,
)
from ..context import TaskContext
from ..params import Function, Interval
from ..plan import Plan
from ..result import Proposal


def _proposal(table, comps, ctx: TaskContext, rule: str) -> Proposal:
    plan = Plan(comps, rule, ctx.n_classes)
    return Proposal(plan, per_class_from_plan(table, plan, ctx))


@selectors.register("vlm")
class GeneralVLM(Selector):
    """The general VLM (the hub's patch model) alone."""

    name = "vlm"

    def _plan(self, ctx, scorer) -> Proposal:
        table = self.table_
        return _proposal(table, [vlm_component(table, table.default_vlm(), ctx)], ctx, "entropy")


@selectors.register("proto")
class Prototypes(Selector):
    """Nearest class mean of a general backbone's features over the classes' sample images;
    classes without sample images fall back to the general VLM."""

    name = "proto"

    def _plan(self, ctx, scorer) -> Proposal:
        table = self.table_
        proto = proto_component(table, ctx) if len(ctx.proxy_index) else None
        if proto is None:
            return _proposal(table, [vlm_component(table, table.default_vlm(), ctx)], ctx, "gated")
        comps = [proto] if proto.role == "general" else [
            vlm_component(table, table.default_vlm(), ctx), proto]
        return _proposal(table, comps, ctx, "gated")


@selectors.register("inb")
class INB(Selector):
    """The VLM(s) with the best overall label score (zero-shot accuracy over all sample nodes)."""

    name = "inb"
    _parameter_constraints = {"k": [Interval(Integral, 1, None)]}
    bench_variants = ({"k": 1}, {"k": 3})

    def __init__(self, *, k: int = 1) -> None:
        self.k = k

    def _plan(self, ctx, scorer) -> Proposal:
        ranked = sorted(self.table_.vlms, key=lambda m: (-(m.summary.get("zero_shot_accuracy") or 0),
                                                         m.id))
        comps = [vlm_component(self.table_, m, ctx) for m in ranked[: self.k]]
        return _proposal(self.table_, comps, ctx, "entropy")


@selectors.register("random")
class RandomSelection(Selector):
    """``k`` models per class drawn at random among those that can answer it (seeded)."""

    name = "random"
    _parameter_constraints = {"k": [Interval(Integral, 1, None)],
                              "seed": [Interval(Integral, 0, None)]}
    bench_variants = ({"k": 1},)

    def __init__(self, *, k: int = 1, seed: int = 0) -> None:
        self.k = k
        self.seed = seed

    def _plan(self, ctx, scorer) -> Proposal:
        table = self.table_
        rng = np.random.default_rng(self.seed)
        experts = [c for c in (expert_component(table, m, ctx) for m in table.experts) if c]
        vlms = [vlm_component(table, m, ctx) for m in table.vlms]
        picks: dict[int, list[int]] = {}
        pool = experts + vlms
        for y in range(ctx.n_classes):
            able = [i for i, c in enumerate(pool) if c.kind == "vlm" or y in c.classes]
            for i in rng.permutation(able)[: self.k]:
                picks.setdefault(int(i), []).append(y)
        comps = []
        for i, ys in sorted(picks.items()):
            c = pool[i]
            if c.kind == "vlm":
                c = vlm_component(table, table.models[c.source], ctx, role="expert", classes=ys)
            comps.append(c)
        per_class = [[model_entry(table, c, ctx, y) for c in comps if y in c.classes]
                     for y in range(ctx.n_classes)]
        return Proposal(Plan(comps, "entropy", ctx.n_classes), per_class)


@selectors.register("all")
class AllModels(Selector):
    """Every model that can answer, equal weights (experts on their classes, VLMs on all)."""

    name = "all"

    def _plan(self, ctx, scorer) -> Proposal:
        table = self.table_
        comps = [c for c in (expert_component(table, m, ctx) for m in table.experts) if c]
        comps += [vlm_component(table, m, ctx) for m in table.vlms]
        return _proposal(table, comps, ctx, "mean")


@selectors.register("oracle")
class Oracle(Selector):
    """The best single model on the labelled target images (an upper reference, not zero-shot)."""

    name = "oracle"
    zero_shot = False
    _parameter_constraints = {"target_accuracy": [None, Function()]}

    def __init__(self, *, target_accuracy=None) -> None:
        self.target_accuracy = target_accuracy

    def candidates(self, ctx: TaskContext) -> list:
        table = self.table_
        comps = [c for c in (expert_component(table, m, ctx) for m in table.experts) if c]
        comps += [vlm_component(table, m, ctx) for m in table.vlms]
        proto = proto_component(table, ctx) if len(ctx.proxy_index) else None
        return comps + ([proto] if proto is not None and proto.role == "general" else [])

    def _plan(self, ctx, scorer) -> Proposal:
        if self.target_accuracy is None:
            raise InvalidParameterError("the oracle needs target_accuracy (labelled target images)")
        best = max(self.candidates(ctx), key=lambda c: (self.target_accuracy(c), c.source))
        # the winner answers alone: a new component in the general role, the candidate untouched
        return _proposal(self.table_, [replace(best, role="general")], ctx, "mean")
