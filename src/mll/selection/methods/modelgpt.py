"""ModelGPT / LOVM-style selection: predict each VLM's accuracy from text alone.

Per VLM, a linear regression maps text-only features of a concept (how close its caption lies to
its nearest competitors under the model's own text tower: max and mean of the top 5 similarities)
to the model's labelled zero-shot accuracy on that concept. It is fitted on the labels of the
sample nodes outside the task, then predicts each task class from the class descriptions alone; the
VLM with the best predicted mean accuracy answers the whole task.
"""

from __future__ import annotations

import numpy as np

from ..base import Selector, selectors
from ..components import per_class_from_plan, vlm_component
from ..context import TaskContext
from ..plan import Plan
from ..result import Proposal


def text_features(emb: np.ndarray) -> np.ndarray:
    """(n, 3): bias, max and mean-of-top-5 similarity of each row to the other rows."""
    sims = emb @ emb.T
    np.fill_diagonal(sims, -np.inf)
    top = -np.sort(-sims, axis=1)[:, : min(5, max(1, len(emb) - 1))]
    return np.column_stack([np.ones(len(emb)), top[:, 0], top.mean(axis=1)])


@selectors.register("modelgpt")
class ModelGPT(Selector):
    name = "modelgpt"

    def predicted(self, ctx: TaskContext) -> dict[str, float]:
        table = self.table_
        task_nodes = {v for v in ctx.class_nodes if v}
        out = {}
        for m in table.vlms:
            stats = m.stats
            nodes = stats["nodes"].tolist()
            keep = np.array([v not in task_nodes for v in nodes]) & (stats["count"] > 0)
            x = text_features(m.text_emb)[keep]
            y = stats["correct"][keep] / stats["count"][keep]
            coef, *_ = np.linalg.lstsq(x, y, rcond=None)
            comp = vlm_component(table, m, ctx)
            pred = np.clip(text_features(comp.text_emb) @ coef, 0, 1)
            out[m.id] = float(pred.mean())
        return out

    def _plan(self, ctx: TaskContext, scorer) -> Proposal:
        scores = self.predicted(ctx)
        best = max(scores, key=lambda mid: (scores[mid], mid))
        comps = [vlm_component(self.table_, self.table_.models[best], ctx)]
        plan = Plan(comps, "entropy", ctx.n_classes)
        return Proposal(plan, per_class_from_plan(self.table_, plan, ctx),
                        diagnostics={"predicted_accuracy": scores})
