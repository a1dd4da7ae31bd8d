"""Style as a dimension of the labels: per (model, node, style) counts and style transfer.

A model's label says how it does on every sample node, but a node's sample images come in a few
styles (emoji, drawings, 28x28 grayscale, photographs), and a task's target style is often not
among them (the hub knows "dog" from emoji and drawings; the user has photos of dogs). The counts
here are per (model, sample node, style group), read from the cached outputs (no model runs).

When a class has no sample image of the target's style, a model's accuracy there is estimated
as its accuracy on the proxy's own style times its *style ratio*: its accuracy on the target
style over its accuracy on that style, both measured on the same nodes under the nearest ancestor
whose subtree holds at least ``MIN_EVIDENCE`` in-domain sample images of each of the two styles
(the node itself, then its parent, grandparent, ..., then everywhere). Comparing the two styles
on the same nodes keeps the concepts' difficulty out of the ratio. The number of levels climbed
is the evidence's distance: intervals widen with it.

Why this and not matrix completion over model x node x style: most (model, node) pairs have one
or two styles and a handful of images, so a low-rank fit has little to fit; a per-model style
effect, local to a subtree, is the simplest model that transfers, and each of its numbers can be
shown in an explanation. Ratio or logit shift: leave-one-node-out on the sample role (441
(model, node, style) cells with photos and another style, every model of the quick hub), the
ratio's mean absolute error is 0.249, the logit shift's 0.261, no transfer 0.270
(``benchmarks/style_transfer_lono.py``).
"""

from __future__ import annotations

import threading
import zlib
from dataclasses import dataclass

import numpy as np

MIN_EVIDENCE = 4  # in-domain images of each style under a subtree before its gap is trusted
# pseudo-images pulling a (class, style) cell's accuracy towards the model's accuracy on that style
# over the whole task before the style ratio is applied (a cell holds 2-6 images); fitted on
# photo tasks built from the sample role (benchmarks/style_transfer_tasks.py)
CELL_PRIOR = 1.0
# pseudo-images pulling a borrowed estimate towards the model's figure over the whole hub (set,
# equal to MIN_EVIDENCE: a subtree's own images outweigh the hub once it has the minimum)
BORROW_PRIOR = 4.0
GROUP_OF = {"photo32": "photo", "user": "photo"}  # style head -> the group it is judged with


def style_group(style: str) -> str:
    """``photo/tuxpaint`` -> ``photo``: the benchmark's and the transfer's unit of style."""
    head = style.split("/")[0]
    return GROUP_OF.get(head, head)


@dataclass(frozen=True)
class Gap:
    """A model's accuracy ratio from one style to the target style, and how far its evidence is."""

    ratio: float  # accuracy on the target style / accuracy on the proxy's style
    distance: int  # levels climbed from the class node (the root's depth + 1: everywhere)
    n_target: int  # in-domain target-style images behind the estimate


class StyleCounts:
    """(models, sample nodes, style groups) correct and in-domain counts, from the cached outputs.

    Experts count on images of nodes their heads cover (right = the argmax head is the node or
    above it); VLMs on every image (right = the image's node wins among all sample nodes'
    captions); the prototypes (key ``proto``) leave each image's source picture out of its
    node's mean and classify among all sample nodes.
    """

    def __init__(self, table) -> None:
        self.table = table
        styles = table.image_styles.tolist()
        self.groups = sorted({style_group(s) for s in styles})
        gidx = {g: i for i, g in enumerate(self.groups)}
        self.image_group = np.array([gidx[style_group(s)] for s in styles], dtype=np.int64)
        self.nodes = sorted(set(table.image_nodes.tolist()))
        nidx = {v: i for i, v in enumerate(self.nodes)}
        self.image_node = np.array([nidx[v] for v in table.image_nodes.tolist()], dtype=np.int64)
        self.model_ids: list[str] = []
        self.correct = np.zeros((0, len(self.nodes), len(self.groups)))
        self.count = np.zeros_like(self.correct)
        # (models, sample images): share of the wrong answers scored above the right one
        # (NaN: out of the model's domain); what K-way accuracy away from the hub's tasks rests on
        self.beaten = np.zeros((0, len(self.image_node)), dtype=np.float32)
        # (models, sample images): an expert's best score among its right heads (NaN: a VLM, or
        # out of its domain), against which rival heads are compared
        self.true_score = np.zeros_like(self.beaten)
        self._under: dict[str, np.ndarray] = {}
        self._chains: dict[str, list[tuple[int, str]]] = {}

    @classmethod
    def of(cls, table) -> StyleCounts:
        """Counts of every labelled model (reads every label) and the prototypes."""
        counts = cls(table)
        rows = [(m.id, *counts._model_hits(m)) for m in table.models.values()]
        hit, inside = counts._proto_hits()
        none = np.full(len(hit), np.nan, dtype=np.float32)
        rows.append(("proto", hit, inside, (none, none)))
        counts.model_ids = [r[0] for r in rows]
        counts.correct = np.stack([counts._cells(hit & inside) for _, hit, inside, _ in rows])
        counts.count = np.stack([counts._cells(inside) for _, _, inside, _ in rows])
        counts.beaten = np.stack([np.where(inside, r[0], np.nan).astype(np.float32)
                                  for _, _, inside, r in rows])
        counts.true_score = np.stack([r[1] for _, _, _, r in rows])
        return counts

    @classmethod
    def lazy(cls, table) -> StyleCounts:
        """Counts of the prototypes now; a model's when :meth:`row` first asks for it, so a
        selection reads only its candidates' labels (thread-safe: rows are only appended)."""
        counts = cls(table)
        counts._table_models = table.models
        counts._grow = threading.Lock()
        counts.model_ids = ["proto"]
        hit, inside = counts._proto_hits()
        counts.correct = counts._cells(hit & inside)[None]
        counts.count = counts._cells(inside)[None]
        none = np.full((1, len(hit)), np.nan, dtype=np.float32)
        counts.beaten, counts.true_score = none, none.copy()
        return counts

    def _cells(self, mask: np.ndarray) -> np.ndarray:
        n_groups = len(self.groups)
        cells = self.image_node[mask] * n_groups + self.image_group[mask]
        return np.bincount(cells, minlength=len(self.nodes) * n_groups).reshape(
            len(self.nodes), n_groups).astype(np.float64)

    def _model_hits(self, label) -> tuple[np.ndarray, np.ndarray, tuple[np.ndarray, np.ndarray]]:
        """(right, in domain, (share of wrong answers beating the right one, an expert's best
        right-head score)) per sample image."""
        nodes = self.table.image_nodes.tolist()
        if label.kind == "vlm":
            text_idx = {v: i for i, v in enumerate(label.text_nodes.tolist())}
            truth = np.array([text_idx.get(v, -1) for v in nodes])
            scores = label.outputs @ label.text_emb.T
            inside = truth >= 0
            true = scores[np.arange(len(nodes)), np.maximum(truth, 0)]
            beaten = (scores > true[:, None]).sum(axis=1) / max(scores.shape[1] - 1, 1)
            none = np.full(len(nodes), np.nan, dtype=np.float32)
            return scores.argmax(axis=1) == truth, inside, (beaten.astype(np.float32), none)
        heads = [c.wnid for c in label.info.classes]
        scores = label.outputs
        pred = scores.argmax(axis=1)
        anc = self.table.sample_node_ancestors
        ok = np.array([heads[p] in anc[v] if heads[p] else False
                       for p, v in zip(pred.tolist(), nodes, strict=True)])
        head_of: dict[str, list[int]] = {}
        for j, h in enumerate(heads):
            if h:
                head_of.setdefault(h, []).append(j)
        beaten = np.full(len(nodes), np.nan, dtype=np.float32)
        best = np.full(len(nodes), np.nan, dtype=np.float32)
        order = np.argsort(self.image_node, kind="stable")
        starts = np.searchsorted(self.image_node[order], np.arange(len(self.nodes) + 1))
        for i, v in enumerate(self.nodes):
            right = [j for a in anc[v] for j in head_of.get(a, ())]
            if not right:
                continue
            rows = order[starts[i]:starts[i + 1]]
            sub = scores[rows]
            true = sub[:, right].max(axis=1)
            above = (sub > true[:, None]).sum(axis=1)  # the right heads never beat their max
            beaten[rows] = above / max(len(heads) - len(right), 1)
            best[rows] = true
        return ok, ~np.isnan(beaten), (beaten, best)

    def _proto_hits(self) -> tuple[np.ndarray, np.ndarray]:
        """Leave-one-picture-out nearest node mean on the prototype backbone's features."""
        feats = self.table.proto_features.astype(np.float64)
        sums = np.zeros((len(self.nodes), feats.shape[1]))
        np.add.at(sums, self.image_node, feats)
        groups = self.table.image_groups
        _, g = np.unique(groups, return_inverse=True)
        held = np.zeros((g.max() + 1, feats.shape[1]))
        np.add.at(held, g, feats)
        own = sums[self.image_node] - held[g]
        sims = feats @ sums.T / np.maximum(np.linalg.norm(sums, axis=1), 1e-12)
        own_norm = np.linalg.norm(own, axis=1)
        r = np.arange(len(feats))
        sims[r, self.image_node] = np.where(own_norm > 1e-9, (feats * own).sum(axis=1)
                                            / np.maximum(own_norm, 1e-12), -1.0)
        return sims.argmax(axis=1) == self.image_node, own_norm > 1e-9

    def under(self, wnid: str) -> np.ndarray:
        """Bool over sample nodes: at or below ``wnid``."""
        if wnid not in self._under:
            anc = self.table.sample_node_ancestors
            self._under[wnid] = np.array([wnid in anc[v] for v in self.nodes])
        return self._under[wnid]

    def row(self, model_id: str) -> int | None:
        try:
            return self.model_ids.index(model_id)
        except ValueError:
            pass
        models = getattr(self, "_table_models", None)
        if models is None or model_id not in models:
            return None
        hit, inside, (beaten, best) = self._model_hits(models[model_id])
        with self._grow:
            if model_id not in self.model_ids:  # another thread may have added it meanwhile
                # every array grows before the id is listed: a reader that finds the id finds
                # its row in each of them
                self.correct = np.concatenate([self.correct, self._cells(hit & inside)[None]])
                self.count = np.concatenate([self.count, self._cells(inside)[None]])
                self.beaten = np.concatenate(
                    [self.beaten, np.where(inside, beaten, np.nan).astype(np.float32)[None]])
                self.true_score = np.concatenate([self.true_score, best[None]])
                self.model_ids = [*self.model_ids, model_id]
            return self.model_ids.index(model_id)

    def competence(self) -> dict[str, dict[str, dict[str, float]]]:
        """Per model and style group: accuracy (add-one smoothed) and in-domain images."""
        for m in getattr(self, "_table_models", ()):  # a lazy instance: every model now
            self.row(m)
        c, n = self.correct.sum(axis=1), self.count.sum(axis=1)
        return {m: {g: {"accuracy": round(float((c[i, j] + 1) / (n[i, j] + 2)), 4),
                        "images": int(n[i, j])} for j, g in enumerate(self.groups)}
                for i, m in enumerate(self.model_ids)}

    def accuracy(self, model_id: str, group: str) -> float | None:
        """Add-one smoothed accuracy of a model on its in-domain images of ``group``."""
        i = self.row(model_id)
        if i is None or group not in self.groups:
            return None
        j = self.groups.index(group)
        return float((self.correct[i, :, j].sum() + 1) / (self.count[i, :, j].sum() + 2))

    def chain(self, wnid: str) -> list[tuple[int, str]]:
        """(distance, ancestor) from the node up, nearest first."""
        if wnid not in self._chains:
            graph = self.table.graph
            depth = int(graph.depth[graph.index(wnid)])
            self._chains[wnid] = sorted((depth - int(graph.depth[graph.index(a)]), a)
                                        for a in self.table.ancestors(wnid))
        return self._chains[wnid]

    def gap(self, model_id: str, wnid: str, source: str, target: str) -> Gap | None:
        """The model's accuracy ratio from style group ``source`` to ``target`` near ``wnid``."""
        i = self.row(model_id)
        if i is None or source not in self.groups or target not in self.groups:
            return None
        s, t = self.groups.index(source), self.groups.index(target)
        c, n = self.correct[i], self.count[i]
        levels = self.chain(wnid) + [(len(self.chain(wnid)), None)]
        for dist, a in levels:
            mask = self.under(a) if a is not None else slice(None)
            ns, nt = n[mask, s].sum(), n[mask, t].sum()
            if ns >= MIN_EVIDENCE and nt >= MIN_EVIDENCE:
                acc_s = (c[mask, s].sum() + 1) / (ns + 2)
                acc_t = (c[mask, t].sum() + 1) / (nt + 2)
                return Gap(float(acc_t / acc_s), dist, int(nt))
        return None

    def borrowed(self, model_id: str, wnid: str, group: str | None, n_classes: int, *,
                 rivals: np.ndarray | None = None, others: tuple[str, ...] = ()
                 ) -> Borrowed | None:
        """A model's expected accuracy on a class without any sample image.

        Its *stand-ins* are the in-domain sample images of the target's style group (every
        group: ``None``) under the nearest ancestor of ``wnid`` holding at least
        ``MIN_EVIDENCE`` of them, leaving out images of the task's other classes (``others``:
        their nodes). For an expert given ``rivals`` (bool over its heads: those voting for the
        task's other classes) a stand-in counts as right when its own heads outscore every
        rival; otherwise when its right answer beats ``n_classes - 1`` wrong ones drawn from the
        model's others: ``(1 - beaten) ** (n_classes - 1)``. The mean is shrunk towards the same
        figure over the whole hub by ``BORROW_PRIOR`` pseudo-images.
        """
        i = self.row(model_id)
        if i is None or (group is not None and group not in self.groups):
            return None
        rank = self.beaten[i]
        keep = ~np.isnan(rank)
        if group is not None:
            keep &= self.image_group == self.groups.index(group)
        for node in others:
            keep &= ~self.under(node)[self.image_node]
        if not keep.any():
            return None
        if rivals is not None and rivals.any() and not np.isnan(self.true_score[i]).all():
            outputs = self.table.models[model_id].outputs
            wins = np.zeros(len(rank))
            rows = np.flatnonzero(keep)
            for start in range(0, len(rows), 4096):
                r = rows[start: start + 4096]
                best_rival = np.asarray(outputs[r][:, rivals], dtype=np.float64).max(axis=1)
                wins[r] = self.true_score[i, r] > best_rival
        else:
            wins = np.where(keep, (1.0 - np.nan_to_num(rank)) ** max(n_classes - 1, 0), 0.0)
        overall = float(wins[keep].sum() / keep.sum())
        levels = self.chain(wnid) + [(len(self.chain(wnid)), None)]
        for dist, a in levels:
            mask = keep & self.under(a)[self.image_node] if a is not None else keep
            n = int(mask.sum())
            if n >= MIN_EVIDENCE:
                value = (float(wins[mask].sum()) + BORROW_PRIOR * overall) / (n + BORROW_PRIOR)
                return Borrowed(value, dist, n)
        return None


@dataclass(frozen=True)
class Borrowed:
    """A model's accuracy on a class estimated from related concepts' sample images."""

    accuracy: float
    distance: int  # levels climbed from the class node to the evidence (as in :class:`Gap`)
    n_images: int


LOOK_NEIGHBOURS = 10  # sample images each target image votes with (set, not fitted)


def style_of_images(table, features: np.ndarray) -> tuple[str | None, dict[str, float]]:
    """The target's style group from unlabelled target images (``chco+look``): each image's
    ``LOOK_NEIGHBOURS`` nearest sample images in the prototype backbone's feature space vote for
    their style group; the group with most votes wins. Returns it and every group's share of the
    votes. No label of the target images is read: only their pixels, through the backbone."""
    feats = np.asarray(features, dtype=np.float32)
    if not len(feats):
        return None, {}
    feats = feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
    sample = table.proto_features
    k = min(LOOK_NEIGHBOURS, len(sample))
    groups = np.array([style_group(s) for s in table.image_styles.tolist()])
    votes: dict[str, float] = {}
    for start in range(0, len(feats), 256):
        sims = feats[start: start + 256] @ sample.T
        near = np.argpartition(-sims, k - 1, axis=1)[:, :k]
        for g, n in zip(*np.unique(groups[near], return_counts=True), strict=True):
            votes[str(g)] = votes.get(str(g), 0.0) + float(n)
    total = sum(votes.values())
    shares = {g: round(v / total, 4) for g, v in sorted(votes.items())}
    return max(shares, key=shares.__getitem__), shares


def target_group(look: dict[str, float]) -> str | None:
    """The style group of the sample style the domain words describe best (None: no words)."""
    return style_group(max(look, key=look.__getitem__)) if look else None


def gap_rows(groups: np.ndarray, klass: np.ndarray, target: str) -> np.ndarray:
    """Bool per proxy image: its class has no image of the target group and it is another style,
    so what a model does on it must be carried over to the target style."""
    has_target = set(klass[groups == target].tolist())
    return (groups != target) & ~np.isin(klass, list(has_target))


def transfer(counts: StyleCounts, model_id: str, comp_classes, ctx, proba: np.ndarray
             ) -> tuple[np.ndarray, dict[int, Gap]]:
    """``proba`` with the component's right/wrong answers on gap images redrawn (seeded) so its
    accuracy on each (class, style) cell becomes the target-style estimate (its proxy accuracy
    there times the model's style ratio).

    Made right: the class's column and the argmax swap places; made wrong: the class's column and
    the runner-up swap places (the answer's confidence profile is kept). Returns the gaps used.
    """
    rows_all = np.flatnonzero(ctx.style_gap)
    if not len(rows_all) or ctx.target_style not in counts.groups:
        return proba, {}
    out = proba.copy()
    rng = np.random.default_rng(zlib.crc32(model_id.encode()))
    u = rng.random(len(proba))
    groups = counts.image_group[ctx.proxy_index]
    comp_classes = comp_classes if comp_classes else range(ctx.n_classes)
    right = proba.argmax(axis=1) == ctx.proxy_class
    answered = np.isin(ctx.proxy_class, list(comp_classes))
    used: dict[int, Gap] = {}
    for k in comp_classes:
        node = ctx.class_nodes[k]
        rows_k = rows_all[ctx.proxy_class[rows_all] == k]
        if node is None or not len(rows_k):
            continue
        for g in np.unique(groups[rows_k]).tolist():
            rows = rows_k[groups[rows_k] == g]
            gap = counts.gap(model_id, node, counts.groups[g], ctx.target_style)
            if gap is None:
                continue
            used[k] = gap if k not in used or gap.distance > used[k].distance else used[k]
            pooled = right[answered & (groups == g)].mean()  # the model on this style, task-wide
            _redraw(out, rows, k, gap.ratio, float(pooled), u[rows])
    return out, used


def _redraw(proba: np.ndarray, rows: np.ndarray, k: int, ratio: float, pooled: float,
            u: np.ndarray) -> None:
    """Redraw one (class, style) cell: its accuracy, shrunk towards ``pooled`` by
    ``CELL_PRIOR`` pseudo-images, times ``ratio``."""
    sub = proba[rows]
    hit = sub.argmax(axis=1) == k
    a_s = float(hit.mean())
    a_t = min(1.0, (hit.sum() + CELL_PRIOR * pooled) / (len(hit) + CELL_PRIOR) * ratio)
    if a_t < a_s:
        flip = hit & (u < 1 - a_t / max(a_s, 1e-12))
        other = sub.copy()
        other[:, k] = -1.0
        swap_with = other.argmax(axis=1)
    else:
        flip = ~hit & (u < (a_t - a_s) / max(1 - a_s, 1e-12))
        swap_with = sub.argmax(axis=1)
    r = np.flatnonzero(flip)
    if not len(r):
        return
    j = swap_with[r]
    a, b = sub[r, k].copy(), sub[r, j].copy()
    if a_t < a_s:  # the runner-up of an expert with one class is nothing: it abstains
        lone = b <= 0
        sub[r[lone]] = 0.0
        r, j, a, b = r[~lone], j[~lone], a[~lone], b[~lone]
    sub[r, k], sub[r, j] = b, a
    proba[rows] = sub
