"""P2 (Tan et al., ICML 2025) as published, for the hub's VLMs.

1. Describe each class with templates (name, WordNet gloss, lemmas, hypernym, domain words).
2. Keep the top-``nodes`` sample nodes per class by text similarity of descriptions and node
   captions: the transition matrix Z, each class column normalised to sum to 1.
3. ``p_{m,v}``: precision of VLM m on node v when the node's sample images are classified among
   the selected nodes (from the stored image embeddings, no inference); ``p_{m,y} = Σ_v p_{m,v} z_{v,y}``.
4. ``r_{m,y} = α p_{m,y} + (1-α)/|Y| Σ_y' p_{m,y'}``; keep the top-``k`` VLMs per class.
5. Reuse: entropy-weighted sum of each selected VLM's zero-shot probabilities.
"""

from __future__ import annotations

from numbers import Integral, Real

import numpy as np

from ...errors import ExternalServiceError
from ..base import Selector, selectors
from ..components import model_entry, vlm_component
from ..context import TaskContext
from ..llm import LLMDescriber
from ..params import Interval
from ..plan import Plan
from ..result import Proposal

TEMPLATES = ("a photo of a {name}.", "{name}, which is {gloss}.", "a {name}, a kind of {parent}.",
             "{lemmas}.", "a {domain} of a {name}.")


def describe(table, name: str, node: str | None, domain: str,
             notes: list[str] | None = None) -> list[str]:
    """Descriptions of one class: an LLM's when ``MLL_LLM_URL`` is set (as P2), else templates.

    When the endpoint fails, templates stand in and the reason is added to ``notes`` once (the
    selection's explanation), so a result never hides that it was not made as configured.
    """
    graph = table.graph
    clean = name.replace("_", " ")
    fields = {"name": clean, "gloss": clean, "parent": "object", "lemmas": clean,
              "domain": domain or "photo"}
    if node:
        parents = graph.parents(node)
        fields |= {"gloss": graph.definition(node),
                   "parent": graph.name(parents[0]) if parents else "entity",
                   "lemmas": ", ".join(w.replace("_", " ") for w in graph.lemmas(node))}
    llm = LLMDescriber.from_env()
    if llm is not None:
        try:
            return llm.describe(clean, fields["gloss"], domain)
        except ExternalServiceError as exc:
            note = f"P2 used template descriptions: {exc}"
            if notes is not None and note not in notes:
                notes.append(note)
    return [t.format(**fields) for t in TEMPLATES if domain or "{domain}" not in t]


@selectors.register("p2")
class P2(Selector):
    name = "p2"
    _parameter_constraints = {"alpha": [Interval(Real, 0, 1)], "k": [Interval(Integral, 1, None)],
                              "nodes": [Interval(Integral, 1, None)]}
    bench_variants = ({"k": 1}, {"k": 3})

    def __init__(self, *, alpha: float = 0.7, k: int = 1, nodes: int = 5) -> None:
        self.alpha = alpha
        self.k = k
        self.nodes = nodes

    def scores(self, ctx: TaskContext, notes: list[str] | None = None) -> tuple[list, np.ndarray]:
        """(vlm labels, r matrix (models, classes))."""
        table = self.table_
        vlms = table.vlms
        sample_nodes = np.array(sorted(set(table.image_nodes.tolist())))
        caps = table.matcher.captions[[table.graph.index(v) for v in sample_nodes]]
        descs = [describe(table, n, v, ctx.task.domain, notes)
                 for n, v in zip(ctx.task.classes, ctx.class_nodes, strict=True)]
        z = np.zeros((len(sample_nodes), ctx.n_classes))
        flat = table.matcher.embeddings.encode([d for group in descs for d in group])
        starts = np.cumsum([0] + [len(g) for g in descs])
        for y in range(ctx.n_classes):
            e = flat[starts[y]: starts[y + 1]].mean(axis=0)
            sims = caps @ (e / np.linalg.norm(e))
            top = np.argsort(-sims)[: self.nodes]
            z[top, y] = np.maximum(sims[top], 1e-6)
        z /= z.sum(axis=0, keepdims=True)
        selected = np.flatnonzero(z.sum(axis=1) > 0)
        p = np.zeros((len(vlms), ctx.n_classes))
        for mi, m in enumerate(vlms):
            p[mi] = self._precision(m, sample_nodes[selected]) @ z[selected]
        r = self.alpha * p + (1 - self.alpha) * p.mean(axis=1, keepdims=True)
        return vlms, r

    def _precision(self, label, nodes: np.ndarray) -> np.ndarray:
        """Per node: share of its images classified as that node among ``nodes``, via captions."""
        table = self.table_
        rows = np.flatnonzero(np.isin(table.image_nodes, nodes))
        text_pos = {v: i for i, v in enumerate(label.text_nodes.tolist())}
        text = label.text_emb[[text_pos[v] for v in nodes]]
        pred = (label.outputs[rows] @ text.T).argmax(axis=1)
        truth = np.searchsorted(nodes, table.image_nodes[rows])
        hits = np.bincount(truth, weights=pred == truth, minlength=len(nodes))
        return hits / np.maximum(np.bincount(truth, minlength=len(nodes)), 1)

    def _plan(self, ctx: TaskContext, scorer) -> Proposal:
        notes: list[str] = []  # e.g. the LLM endpoint failed and templates stood in
        vlms, r = self.scores(ctx, notes)
        chosen: dict[str, list[int]] = {}
        for y in range(ctx.n_classes):
            for mi in np.argsort(-r[:, y], kind="stable")[: self.k]:
                chosen.setdefault(vlms[mi].id, []).append(y)
        comps = [vlm_component(self.table_, self.table_.models[mid], ctx, role="general")
                 for mid in chosen]
        plan = Plan(comps, "entropy", ctx.n_classes)
        per_class = [[model_entry(self.table_, c, ctx, y) for c in comps if y in chosen[c.source]]
                     for y in range(ctx.n_classes)]
        return Proposal(plan, per_class, explanation=notes,
                        diagnostics={"r": r, "vlms": [m.id for m in vlms]})
