"""A task seen through the labels: matched nodes per class and the proxy task built from them.

The proxy task is the set of sample images that fall under each class's matched node (the most
specific class wins when nodes nest), weighted so that every class counts equally and images whose
style resembles the task's domain words count more. Every estimate in selection is an accuracy on
this proxy task, computed from cached outputs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidParameterError
from ..graph.match import match_status
from .style import gap_rows, style_group, target_group
from .task import Task

logger = logging.getLogger(__name__)

DOMAIN_TEMPERATURE = 0.05
SENSE_MARGIN = 0.1  # match-score gap within which a sense may win by its sample images' look
STYLE_FIT_MARGIN = 0.05  # how much better (cosine) its best style must fit the domain words
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
    target_style: str | None = None  # style group the domain words describe (None: no words)
    style_gap: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # (P,)

    @property
    def n_classes(self) -> int:
        return len(self.task.classes)


def build_context(table, task: Task, target_style: str | None = None) -> TaskContext:
    """The task seen through the labels. ``target_style``: a style group the target images were
    seen to have (``style_of_images``, the ``chco+look`` option); it replaces the one the domain
    words describe, in the proxy's weights and in the style transfer."""
    graph = table.graph
    ranked = table.matcher.match(list(task.classes), domain=task.domain, top=5)
    look = _style_similarity(table, task.domain)
    if target_style is not None:
        styles = sorted(set(table.image_styles.tolist()))
        if target_style not in {style_group(s) for s in styles}:
            raise InvalidParameterError(f"target style {target_style!r}: the sample images have "
                                        f"only {sorted({style_group(s) for s in styles})}")
        look = {s: float(style_group(s) == target_style) for s in styles}
    nodes: list[str | None] = []
    warnings: list[str] = []
    for name, cands in zip(task.classes, ranked, strict=True):
        status = match_status(cands[0] if cands else None)
        guess = f"best guess {cands[0].name!r}, confidence {cands[0].score:.2f}" if cands else ""
        if name in task.pinned:
            graph.index(task.pinned[name])
            nodes.append(task.pinned[name])
        elif status != "none":
            nodes.append(_sense_by_look(table, cands, look))
            if status == "uncertain":
                warnings.append(f"{name!r} matched with low confidence ({guess}); if that is not "
                                f"meant, pin its node with '{name}<TAB>wnid' in a class file")
        else:
            nodes.append(None)
            warnings.append(f"{name!r} matches no concept ({guess or 'no candidate'}): answered by "
                            "the general VLM only; check the spelling or pin a node")
    if not task.pinned and all(n is None for n in nodes):
        guesses = [f"{n!r}: best guess {c[0].name!r}"
                   for n, c in zip(task.classes, ranked, strict=True) if c]
        more = f" and {len(guesses) - 5} more" if len(guesses) > 5 else ""
        raise InvalidParameterError(
            f"none of the classes matches a concept of the graph ({'; '.join(guesses[:5])}{more});"
            " check the spelling of the class names or pin nodes with 'name<TAB>wnid'")
    index, klass = _proxy(table, nodes)
    weight = _weights(table, look, index, klass, len(task.classes))
    for k, name in enumerate(task.classes):
        if nodes[k] and not (klass == k).any():
            warnings.append(f"{name!r} ({graph.synset_name(nodes[k])}) has no sample images: its "
                            "accuracy is not estimated from labels")
    target = target_group(look)
    groups = np.array([style_group(s) for s in table.image_styles[index].tolist()])
    gap = gap_rows(groups, klass, target) if target else np.zeros(len(index), dtype=bool)
    missing = sorted({task.classes[k] for k in klass[gap].tolist()})
    if missing:
        warnings.append(f"{len(missing)} class(es) have no {target} sample images (e.g. "
                        f"{missing[0]!r}): their accuracy is carried over from other styles by "
                        "each model's style ratio at related nodes")
    return TaskContext(task, ranked, nodes, index, klass, weight, warnings, target, gap)


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


def _style_similarity(table, domain: str) -> dict[str, float]:
    """Similarity of every sample style's description to the task's domain words ({} without)."""
    if not domain.strip():
        return {}
    styles = sorted(set(table.image_styles.tolist()))
    emb = table.matcher.embeddings.encode([domain] + [style_text(s) for s in styles])
    return dict(zip(styles, (emb[1:] @ emb[0]).tolist(), strict=True))


def _sense_by_look(table, cands: list, look: dict[str, float]) -> str:
    """The top candidate, unless another sense of the same word, scored within SENSE_MARGIN,
    holds sample images whose style fits the domain words clearly better (e.g. "Bag" among
    grayscale clothes: the handbag sense holds Fashion-MNIST bags, the container sense emoji)."""
    top = cands[0]
    if not look or not top.lexical:
        return top.wnid

    def fit(wnid: str) -> float:
        return max((look[s] for s in table.node_styles.get(wnid, ())), default=-1.0)

    rivals = [c for c in cands[1:] if c.lexical and top.score - c.score <= SENSE_MARGIN]
    best = max(rivals, key=lambda c: fit(c.wnid), default=None)
    if best is not None and fit(best.wnid) > fit(top.wnid) + STYLE_FIT_MARGIN:
        return best.wnid
    return top.wnid


def style_text(style: str) -> str:
    head = style.split("/")[0]
    return f"{STYLE_WORDS.get(head, head)} ({style.replace('/', ' ').replace('-', ' ')})"


def _weights(table, look: dict[str, float], index: np.ndarray, klass: np.ndarray,
             n_classes: int) -> np.ndarray:
    w = np.ones(len(index), dtype=np.float64)
    if look and len(index):
        styles = sorted(set(table.image_styles[index].tolist()))
        sims = np.array([look[s] for s in styles])
        pref = np.exp((sims - sims.max()) / DOMAIN_TEMPERATURE)
        by_style = dict(zip(styles, pref, strict=True))
        w = np.array([by_style[s] for s in table.image_styles[index]])
    for k in range(n_classes):  # every class weighs the same in the proxy accuracy
        mask = klass == k
        if mask.any():
            w[mask] /= w[mask].sum()
    return w
