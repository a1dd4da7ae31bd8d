"""The candidate index rows of one label: every node the model serves, with its counts there.

Computed from the label's per-node statistics alone (no per-image rows), by the definitions of
``mll.selection.coverage.node_models``, so the SQL index answers what a scan of every label would:

- an expert serves each node at or above one of its mapped heads; there it is measured on the
  sample nodes at or below the heads that lie under that node;
- a VLM serves each node with sample images at or below it, measured on those images.

The rows go to the hub database with the label's summary (``record_summary``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

Ancestors = Callable[[str], set[str]]  # a node and every node above it (callers memoise it)


def serving_rows(model_id: str, kind: str, head_wnids: Sequence[str | None],
                 stats: dict[str, np.ndarray], ancestors: Ancestors) -> list[dict]:
    """``{model_id, node, kind, images, correct}`` for every node the model serves."""
    images: dict[str, int] = {}
    correct: dict[str, int] = {}
    heads = {h for h in head_wnids if h}
    if kind == "expert":
        for h in heads:  # served even where no sample image measures it
            for a in ancestors(h):
                images.setdefault(a, 0)
                correct.setdefault(a, 0)
    for v, n, c, cov in zip(stats["nodes"].tolist(), stats["count"].tolist(),
                            stats["correct"].tolist(), stats["covered"].tolist(), strict=True):
        if not cov or not n:
            continue
        above = ancestors(v)
        if kind == "expert":  # the nodes above any head that v lies under
            reached: set[str] = set()
            for h in above & heads:
                reached |= ancestors(h)
        else:
            reached = above
        for a in reached:
            images[a] = images.get(a, 0) + int(n)
            correct[a] = correct.get(a, 0) + int(c)
    return [{"model_id": model_id, "node": a, "kind": kind, "images": images[a],
             "correct": correct[a]} for a in sorted(images)]
