"""Benchmark target tasks, all from the corpus ``eval`` role: class names and domain words only.

Selection never sees these images; they are used to measure what each method's predictor does.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from ..corpus.mappings import load_mapping


@dataclass
class EvalTask:
    name: str
    classes: list[str]
    domain: str
    image_ids: list[str]
    truth: np.ndarray  # class index per image
    wnids: list[str]


def _names(graph, source: str) -> dict[str, str]:
    """wnid -> the class name a user of that source would type."""
    if source in ("fashion-mnist", "animal-mnist"):
        return {r.wnid: r.extra[0] for r in load_mapping(source).values()}
    if source.startswith("iconify") or source == "emoji":
        out: dict[str, str] = {}
        for slug, row in load_mapping("emoji").items():
            out.setdefault(row.wnid, slug.replace("-", " "))
        return out
    return {}


def _by_class(records, names: dict[str, str], graph, per_class: int, seed: int,
              min_images: int = 1) -> dict[str, list[str]]:
    groups: dict[str, list[str]] = defaultdict(list)
    for r in records:
        groups[r.wnid].append(r.image_id)
    rng = np.random.default_rng(seed)
    out = {}
    used_names = set()
    for wnid in sorted(groups):
        name = names.get(wnid) or graph.name(wnid)
        key = name.lower()
        if len(groups[wnid]) < min_images or key in used_names:
            continue
        used_names.add(key)
        ids = sorted(groups[wnid])
        out[wnid] = [ids[i] for i in sorted(rng.permutation(len(ids))[:per_class])]
    return out


def _every_nth(picked: dict[str, list[str]], most: int) -> dict[str, list[str]]:
    """At most ``most`` classes, spread evenly over the sorted wnids (quick runs)."""
    keep = sorted(picked)[:: max(1, len(picked) // most)][:most]
    return {w: picked[w] for w in keep}


def _task(name: str, domain: str, picked: dict[str, list[str]], names: dict[str, str],
          graph) -> EvalTask:
    wnids = sorted(picked)
    ids, truth = [], []
    for k, w in enumerate(wnids):
        ids += picked[w]
        truth += [k] * len(picked[w])
    return EvalTask(name, [names.get(w) or graph.name(w) for w in wnids], domain, ids,
                    np.array(truth), wnids)


def standard_tasks(corpus, graph, quick: bool = False, seed: int = 0) -> list[EvalTask]:
    """The benchmark's target tasks; ``quick`` takes fewer images and emoji classes."""
    per_gray = 30 if quick else 100
    per_icon = 2 if quick else 5
    tasks: list[EvalTask] = []
    gray_domain = "small 28x28 grayscale image"
    for source, label, domain in (("fashion-mnist", "fashion-mnist", "grayscale product photo"),
                                  ("animal-mnist", "animal-mnist", "grayscale animal silhouette"),
                                  ("mnist", "mnist", "handwritten digit")):
        names = _names(graph, source)
        picked = _by_class(corpus.records(role="eval", source=source), names, graph, per_gray, seed)
        tasks.append(_task(label, f"{gray_domain}, {domain}", picked, names, graph))
    emoji_names = _names(graph, "emoji")
    flat = corpus.records(role="eval", source="iconify-fluent-emoji-flat")
    picked = _by_class(flat, emoji_names, graph, per_icon, seed, min_images=per_icon)
    if quick:
        picked = _every_nth(picked, 100)
    tasks.append(_task("emoji-fluent-flat", "emoji icon", picked, emoji_names, graph))
    tux = [r for r in corpus.records(role="eval", source="tuxpaint") if r.style.startswith("photo")]
    picked = _by_class(tux, {}, graph, per_icon, seed)
    if quick:
        picked = _every_nth(picked, 100)
    tasks.append(_task("tuxpaint-photos", "photo cut-out on white", picked, {}, graph))
    imagenet = [r for r in corpus.records(role="eval", source="foolbox") if r.style == "photo/imagenet"]
    tasks.append(_task("foolbox-imagenet", "photo", _by_class(imagenet, {}, graph, 10, seed), {},
                       graph))
    tasks += mixed_tasks(corpus, graph, per_gray, per_icon, seed)
    return [t for t in tasks if len(t.classes) >= 2]


def mixed_tasks(corpus, graph, per_gray: int, per_icon: int, seed: int) -> list[EvalTask]:
    fashion, animal = _names(graph, "fashion-mnist"), _names(graph, "animal-mnist")
    emoji = _names(graph, "emoji")
    f = _by_class(corpus.records(role="eval", source="fashion-mnist"), fashion, graph, per_gray, seed)
    a = _by_class(corpus.records(role="eval", source="animal-mnist"), animal, graph, per_gray, seed)
    clothes = {w: f[w] for w in sorted(f)[:5]}
    beasts = {w: a[w] for w in sorted(a)[:5] if w not in clothes}
    digits = _by_class(corpus.records(role="eval", source="mnist"), {}, graph, per_gray, seed)
    fruit_root = graph.lookup("edible fruit")[0]
    fruit_nodes = graph.descendants(fruit_root)
    fruits_all = _by_class([r for r in corpus.records(role="eval", source="iconify-fluent-emoji-flat")
                            if r.wnid in fruit_nodes], emoji, graph, per_icon * 3, seed)
    fruits = {w: fruits_all[w] for w in sorted(fruits_all)[:5]}
    mix1 = _task("mixed-clothes-animals", "small grayscale image", {**clothes, **beasts},
                 {**fashion, **animal}, graph)
    digit5 = {w: digits[w] for w in sorted(digits)[:5]}
    mix2 = _task("mixed-digits-fruits", "", {**digit5, **fruits}, emoji, graph)
    return [mix1, mix2]
