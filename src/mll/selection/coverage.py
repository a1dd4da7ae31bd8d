"""What the labels say about one node or one model: which models serve a concept, and how well.

Read from the published labels only (per-node counts of each model on the sample images), like
selection itself; no model runs. Definitions, in the words the server's documentation uses:

- an **expert serves a node** when one of its heads is mapped to that node or to a node below it
  (the rule selection uses to let a head answer a class); its measured accuracy there is over the
  sample images at or below those heads, and counts an answer correct when the predicted head is
  the image's node or above it;
- a **VLM serves a node** when sample images lie at or below it; its measured accuracy there is
  zero-shot, each image classified among the captions of every node with sample images.

Accuracies come with a 95% Wilson interval and the number of images behind them; a model's
accuracy per image style (:func:`model_styles`) counts the same answers by the style of the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .result import wilson


@dataclass(frozen=True)
class Measured:
    """Correct answers out of sample images, as a rate with its interval (None without images)."""

    images: int
    correct: int

    @property
    def accuracy(self) -> float | None:
        return None if self.images == 0 else round(self.correct / self.images, 4)

    @property
    def interval(self) -> tuple[float, float] | None:
        return None if self.images == 0 else wilson(self.correct, self.images)

    def to_dict(self) -> dict:
        return {"images": self.images, "correct": self.correct, "accuracy": self.accuracy,
                "interval": self.interval}


@dataclass(frozen=True)
class NodeModel:
    """One model that serves a node: the heads that answer it (experts) and how well it did."""

    model_id: str
    name: str
    kind: str
    family: str
    heads: tuple[dict, ...]  # experts: {index, name, wnid} of the heads at or below the node
    measured: Measured

    def to_dict(self) -> dict:
        return {"id": self.model_id, "name": self.name, "kind": self.kind,
                "family": self.family, "heads": list(self.heads)} | self.measured.to_dict()


def _sample_counts(table) -> dict[str, int]:
    nodes, counts = np.unique(table.image_nodes, return_counts=True)
    return dict(zip(nodes.tolist(), counts.tolist(), strict=True))


def sample_images(table, wnid: str) -> dict[str, int]:
    """Sample images of the node itself (``at``) and of it and every node below it (``below``)."""
    counts = _sample_counts(table)
    return {"at": counts.get(wnid, 0),
            "below": sum(n for v, n in counts.items() if wnid in table.sample_node_ancestors[v])}


def _measured(label, keep) -> Measured:
    """Counts of ``label`` summed over the sample nodes for which ``keep(node)`` holds."""
    stats = label.stats
    mask = np.array([bool(c) and keep(v) for v, c in zip(stats["nodes"].tolist(),
                                                         stats["covered"].tolist(), strict=True)],
                    dtype=bool)
    return Measured(int(stats["count"][mask].sum()), int(stats["correct"][mask].sum()))


def node_models(table, wnid: str) -> list[NodeModel]:
    """The labelled models that serve ``wnid``, best measured accuracy first.

    Models with no sample image to measure them on there come last (accuracy None), then by
    images measured and id.
    """
    table.graph.index(wnid)  # an unknown wnid is an error, not an empty answer
    under = table.sample_node_ancestors
    out = []
    for label in table.models.values():
        info = label.info
        if label.kind == "expert":
            heads = [c for c in info.classes if c.wnid and wnid in table.ancestors(c.wnid)]
            if not heads:
                continue
            head_nodes = {c.wnid for c in heads}
            measured = _measured(label, lambda v, heads=head_nodes: bool(under.get(v, set())
                                                                         & heads))
            head_rows = tuple({"index": c.index, "name": c.name, "wnid": c.wnid} for c in heads)
        else:
            measured = _measured(label, lambda v: wnid in under.get(v, ()))
            if measured.images == 0:
                continue
            head_rows = ()
        out.append(NodeModel(info.id, info.name, info.kind, info.family, head_rows, measured))
    return sorted(out, key=lambda m: (m.measured.accuracy is None, -(m.measured.accuracy or 0),
                                      -m.measured.images, m.model_id))


def indexed_node_models(table, wnid: str, kind: str | None = None) -> list[NodeModel]:
    """What :func:`node_models` answers, read from the hub's candidate index (``Hub.serving``:
    one ranked query) instead of scanning every label: its cost grows with the models that
    serve the node, not with the hub. Rows of models without a current label in ``table`` (an
    older graph or corpus) are left out, as the scan leaves them out."""
    table.graph.index(wnid)
    out = []
    for row in table.hub.serving(wnid, kind=kind, limit=None):
        label = table.models.get(row.model_id)
        if label is None:
            continue
        heads = tuple({"index": c.index, "name": c.name, "wnid": c.wnid}
                      for c in label.info.classes
                      if c.wnid and wnid in table.ancestors(c.wnid)) if row.kind == "expert" else ()
        out.append(NodeModel(row.model_id, row.name, row.kind, row.family, heads,
                             Measured(row.images, row.correct)))
    return out


def model_nodes(table, model_id: str) -> list[dict]:
    """Per sample node the labelled model covers: its measured accuracy there, best first.

    An expert covers the sample nodes at or below one of its heads; a VLM every node with sample
    images. ``model_id`` is a full id; a model without a current label raises ``UnknownNameError``.
    """
    if model_id not in table.models:
        raise _no_label(table, model_id)
    stats = table.models[model_id].stats
    graph = table.graph
    rows = []
    for v, n, c, cov in zip(stats["nodes"].tolist(), stats["count"].tolist(),
                            stats["correct"].tolist(), stats["covered"].tolist(), strict=True):
        if cov and n:
            rows.append({"wnid": v, "name": graph.name(v)} | Measured(int(n), int(c)).to_dict())
    return sorted(rows, key=lambda r: (-r["accuracy"], -r["images"], r["wnid"]))


def model_styles(table, model_id: str) -> list[dict]:
    """A labelled model's measured accuracy per image style group (``photo``, ``emoji``,
    ``drawing``, ``gray28``) on the sample images it covers, in group order; groups where it
    covers no image have ``images`` 0 and accuracy None. Counts from ``table.style_counts``."""
    if model_id not in table.models:  # before the style counts of the whole hub are built
        raise _no_label(table, model_id)
    counts = table.style_counts
    i = counts.row(model_id)
    if i is None:
        raise _no_label(table, model_id)
    correct, images = counts.correct[i].sum(axis=0), counts.count[i].sum(axis=0)
    return [{"style": g} | Measured(int(images[j]), int(correct[j])).to_dict()
            for j, g in enumerate(counts.groups)]


def _no_label(table, model_id: str):
    """The error for a model without a label for the table's graph and corpus."""
    from ..errors import UnknownNameError

    return UnknownNameError("labelled model", model_id, table.models,
                            hint="it has no label for the current graph and corpus; run "
                                 "'mll label'")


def sample_image_list(table, wnid: str, limit: int) -> list[dict]:
    """Up to ``limit`` sample images of a node: those at the node first, then those below it, in
    label order; each as its ``id``, ``wnid`` and ``style`` (so a page can show and fetch them)."""
    table.graph.index(wnid)  # an unknown wnid is an error, not an empty answer
    nodes = table.image_nodes
    below = [v for v, up in table.sample_node_ancestors.items() if wnid in up and v != wnid]
    rows = np.concatenate([np.flatnonzero(nodes == wnid),
                           np.flatnonzero(np.isin(nodes, below))])[:limit].tolist()
    ids, styles = table.image_ids, table.image_styles
    return [{"id": ids[i], "wnid": str(nodes[i]), "style": str(styles[i])} for i in rows]
