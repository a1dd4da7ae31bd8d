"""Components built from labels: how one model (or the prototypes) answers a task's classes.

A method picks among these; it never builds the arrays itself, so every method maps heads to
classes, describes classes to VLMs and reports its choices the same way.
"""

from __future__ import annotations

import numpy as np

from .context import TaskContext
from .plan import Component, Plan
from .proxy import class_sums

RELATIVE_DISCOUNT = 0.5  # per edge between a class's node and a stand-in head's node
# Logit scale on cosine similarities to class means: how sure the prototypes are against the
# other components of a plan (the role a VLM's own logit scale plays for image-text cosines).
# Set by hand when the prototype classifier was added, not fitted: a cosine gap of 0.1 between
# two class means gives odds of e^3, about 20:1.
PROTO_SCALE = 30.0


def expert_component(table, label, ctx: TaskContext, weight: float = 1.0) -> Component | None:
    """An expert's heads mapped onto task classes: a head votes for a class when its node is the
    class's node or below it, or, discounted, when it is a close relative of a class no head
    answers. None when no head maps to any class."""
    graph = table.graph
    head_wnids = [c.wnid for c in label.info.classes]
    head_map = np.zeros((len(head_wnids), ctx.n_classes), dtype=np.float32)
    class_of: dict[str, list[int]] = {}
    for k, node in enumerate(ctx.class_nodes):
        if node is not None:
            class_of.setdefault(node, []).append(k)
    for j, w in enumerate(head_wnids):
        if w:
            for node in table.ancestors(w) & class_of.keys():
                head_map[j, class_of[node]] = 1.0
    # a head under two classes' nodes votes for the most specific one only
    for j in np.flatnonzero(head_map.sum(axis=1) > 1):
        ks = np.flatnonzero(head_map[j])
        best = max(ks, key=lambda k: int(graph.depth[graph.index(ctx.class_nodes[k])]))
        head_map[j] = 0
        head_map[j, best] = 1
    _add_relatives(table, head_wnids, head_map, ctx)
    classes = np.flatnonzero(head_map.sum(axis=0) > 0).tolist()
    if not classes:
        return None
    return Component("expert", label.id, weight, "expert", classes, head_map=head_map)


def relatives(table, node: str) -> list[tuple[str, int]]:
    """(wnid, distance) of a node's parents (1), grandparents and siblings (2), memoised on the
    table (every candidate expert asks for the same classes' relatives)."""
    cache = table.__dict__.setdefault("_relatives_cache", {})
    if node not in cache:
        graph = table.graph
        parents = graph.parents(node)
        found = [(p, 1) for p in parents]
        found += [(g, 2) for p in parents for g in graph.parents(p)]
        found += [(c, 2) for p in parents for c in graph.children(p) if c != node]
        cache[node] = found
    return cache[node]


def _add_relatives(table, head_wnids, head_map: np.ndarray, ctx: TaskContext) -> None:
    """A class no head answers directly may be served by a close relative's head (its parent,
    grandparent or sibling), down-weighted by distance; a head stands in for one class at most
    (the nearest such class, the first in task order among equally near ones)."""
    free = [(j, w) for j, w in enumerate(head_wnids) if w and not head_map[j].any()]
    if not free:
        return
    answered = head_map.any(axis=0)
    stand_in = _stand_ins(table, ctx)
    for j, w in free:
        options = [(dist, k) for k, dist in stand_in.get(w, ()) if not answered[k]]
        if options:
            dist, k = min(options)
            head_map[j, k] = RELATIVE_DISCOUNT ** dist


def _stand_ins(table, ctx: TaskContext) -> dict[str, list[tuple[int, int]]]:
    """Relative wnid -> (class, distance) of the task's classes it is a close relative of,
    built once per task (memoised on the table by the classes' nodes)."""
    key = tuple(ctx.class_nodes)
    cache = table.__dict__.setdefault("_stand_in_cache", {})
    if key not in cache:
        out: dict[str, list[tuple[int, int]]] = {}
        for k, node in enumerate(ctx.class_nodes):
            if node is not None:
                for w, dist in relatives(table, node):
                    out.setdefault(w, []).append((k, dist))
        if len(cache) > 64:  # tasks come and go: keep the memo small
            cache.clear()
        cache[key] = out
    return cache[key]


def class_texts(table, ctx: TaskContext) -> list[list[str]]:
    """Texts describing each class: its name and, when matched, its node's caption."""
    texts = []
    for name, node in zip(ctx.task.classes, ctx.class_nodes, strict=True):
        texts.append([name.replace("_", " ")] + ([table.graph.caption(node)] if node else []))
    return texts


def vlm_component(table, label, ctx: TaskContext, weight: float = 1.0,
                  role: str = "general", classes: list[int] | None = None) -> Component:
    """A VLM answering by its class-text embeddings (name and caption averaged per class)."""
    adapter = table.adapter(label.id)
    texts = class_texts(table, ctx)
    flat = [t for group in texts for t in group]
    emb = adapter.encode_texts(flat)
    rows, i = [], 0
    for group in texts:
        v = emb[i: i + len(group)].mean(axis=0)
        rows.append(v / max(float(np.linalg.norm(v)), 1e-12))
        i += len(group)
    return Component("vlm", label.id, weight, role, classes or [], text_emb=np.stack(rows),
                     scale=float(getattr(adapter, "logit_scale", 100.0)))


def proto_component(table, ctx: TaskContext, weight: float = 1.0, scale: float = PROTO_SCALE
                    ) -> Component | None:
    """Nearest class mean of the general backbone's features over each class's sample images."""
    sums = class_sums(table, ctx)
    present = np.flatnonzero(np.abs(sums).sum(axis=1) > 0).tolist()
    if not present:
        return None
    protos = sums / np.maximum(np.linalg.norm(sums, axis=1, keepdims=True), 1e-12)
    role = "general" if len(present) == ctx.n_classes else "expert"
    return Component("proto", table.proto_backbone, weight, role, present,
                     prototypes=protos.astype(np.float32), scale=scale)


def model_entry(table, comp: Component, ctx: TaskContext, k: int) -> dict:
    """How a component answers class ``k``, as reported in a selection (names, heads, weight)."""
    info = table.models[comp.source].info if comp.source in table.models else None
    heads = []
    if comp.kind == "expert":
        heads = [info.classes[j].name for j in np.flatnonzero(comp.head_map[:, k])]
    return {"model_id": comp.source, "name": info.name if info else "prototypes",
            "kind": "expert" if comp.kind == "expert" else ("vlm" if comp.kind == "vlm" else "proto"),
            "heads": heads, "weight": round(comp.weight, 3), "role": comp.role}


def per_class_from_plan(table, plan: Plan, ctx: TaskContext) -> list[list[dict]]:
    """Per class, the plan's components that answer it (general ones answer every class)."""
    out = []
    for k in range(ctx.n_classes):
        out.append([model_entry(table, c, ctx, k) for c in plan.components
                    if c.role == "general" or k in c.classes])
    return out
