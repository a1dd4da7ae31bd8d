"""A task seen through the labels: matched nodes per class and the proxy task built from them.

The proxy task is the set of sample images that fall under each class's matched node (the most
specific class wins when nodes nest), weighted so that every class counts equally and images whose
style resembles the task's domain words count more. Every estimate in selection is an accuracy on
this proxy task, computed from cached outputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from .task import Task

logger = logging.getLogger(__name__)

MATCH_THRESHOLD = 0.45  # a best candidate below this (and with no lexical hit) counts as unmatched
DOMAIN_TEMPERATURE = 0.05
STYLE_WORDS = {"gray28": "small 28x28 grayscale image", "emoji": "colourful emoji icon drawing",
               "photo": "photograph", "drawing": "clip art drawing", "user": "photograph"}


@dataclass
class TaskContext:
    task: Task
    matches: list[list]  # per class: ranked mll.graph.Candidate
    class_nodes: list[str | None]  # the node each class is answered for (None: unmatched)
    proxy_index: np.ndarray  # (P,) rows of the sample table
    proxy_class: np.ndarray  # (P,) task class of each proxy image
    proxy_weight: np.ndarray  # (P,) weights: classes balanced, domain-weighted
    warnings: list[str]

    @property
    def n_classes(self) -> int:
        return len(self.task.classes)

    def class_counts(self) -> np.ndarray:
        return np.bincount(self.proxy_class, minlength=self.n_classes)


def build_context(table, task: Task) -> TaskContext:
    graph = table.graph
    ranked = table.matcher.match(list(task.classes), domain=task.domain, top=5)
    nodes: list[str | None] = []
    warnings: list[str] = []
    for name, cands in zip(task.classes, ranked, strict=True):
        if name in task.pinned:
            graph.index(task.pinned[name])
            nodes.append(task.pinned[name])
        elif cands and (cands[0].lexical or cands[0].score >= MATCH_THRESHOLD):
            nodes.append(cands[0].wnid)
        else:
            nodes.append(None)
            warnings.append(f"{name!r} matches no concept: answered by the general VLM only")
    index, klass = _proxy(table, nodes)
    weight = _weights(table, task.domain, index, klass, len(task.classes))
    for k, name in enumerate(task.classes):
        if nodes[k] and not (klass == k).any():
            warnings.append(f"{name!r} ({graph.synset_name(nodes[k])}) has no sample images: its "
                            "accuracy is not estimated from labels")
    return TaskContext(task, ranked, nodes, index, klass, weight, warnings)


def _proxy(table, nodes: list[str | None]) -> tuple[np.ndarray, np.ndarray]:
    graph = table.graph
    depth = {w: int(graph.depth[graph.index(w)]) for w in nodes if w}
    klass_of_node: dict[str, int] = {}
    for v, ancestors in table.sample_node_ancestors.items():
        hits = [(depth[w], k) for k, w in enumerate(nodes) if w and w in ancestors]
        if hits:
            klass_of_node[v] = max(hits)[1]  # the most specific class wins
    rows = [i for i, v in enumerate(table.image_nodes.tolist()) if v in klass_of_node]
    klass = [klass_of_node[table.image_nodes[i]] for i in rows]
    return np.array(rows, dtype=np.int64), np.array(klass, dtype=np.int64)


def style_text(style: str) -> str:
    head = style.split("/")[0]
    return f"{STYLE_WORDS.get(head, head)} ({style.replace('/', ' ').replace('-', ' ')})"


def _weights(table, domain: str, index: np.ndarray, klass: np.ndarray, n_classes: int) -> np.ndarray:
    w = np.ones(len(index), dtype=np.float64)
    if domain and len(index):
        styles = sorted(set(table.image_styles[index].tolist()))
        emb = table.matcher.embeddings.encode([domain] + [style_text(s) for s in styles])
        sims = emb[1:] @ emb[0]
        pref = np.exp((sims - sims.max()) / DOMAIN_TEMPERATURE)
        by_style = dict(zip(styles, pref, strict=True))
        w = np.array([by_style[s] for s in table.image_styles[index]])
    for k in range(n_classes):  # every class weighs the same in the proxy accuracy
        mask = klass == k
        if mask.any():
            w[mask] /= w[mask].sum()
    return w
