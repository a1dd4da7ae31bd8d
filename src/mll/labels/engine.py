"""Labelling a hub: every model on every sample image, incremental and crash-safe.

``label_hub`` works out, per model, which sample images have no output yet (from published labels
and shards), runs only those through the executor, then publishes the label for the current graph
and corpus versions. Backbone-sharing models reuse the feature cache, so the expensive forward pass
happens once per image for the whole hub. A model that fails anywhere along the way is listed in
``LabelReport.failed`` with its reason and how to fix it; the others are labelled regardless.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from ..config import resolve_hub
from ..errors import InvalidParameterError, NotBuiltError
from .serving import serving_rows
from .stats import expert_stats, vlm_stats
from .store import FORMAT, LabelStore, Outputs, read_summary, storage_bytes

logger = logging.getLogger(__name__)


@dataclass
class LabelReport:
    """What a labelling run did (the ``mll label --json`` document)."""

    models_labelled: list[str] = field(default_factory=list)
    models_up_to_date: list[str] = field(default_factory=list)
    #: models whose current label was rewritten from an older layout into the current one
    labels_converted: list[str] = field(default_factory=list)
    images: int = 0
    outputs_computed: int = 0
    seconds: float = 0.0
    executor: str = "local"
    per_model: dict[str, dict] = field(default_factory=dict)
    #: ``{"model_id", "name", "reason", "fix"}`` per model that could not be labelled
    failed: list[dict[str, str]] = field(default_factory=list)
    #: where the shards were computed: node -> ``{"tasks", "images"}`` (``local`` for in-process)
    nodes: dict[str, dict[str, int]] = field(default_factory=dict)
    #: True when ``stop`` ended the run early: nothing was published, finished shards are kept
    stopped: bool = False

    def fail(self, info, reason: str) -> None:
        """Record that ``info``'s model failed, with what the user can do about it."""
        self.failed.append({
            "model_id": info.id, "name": info.name, "reason": reason,
            "fix": f"repair or re-add the model and run 'mll label --model {info.id}', or remove "
                   f"it with 'mll hub remove {info.id}'"})

    def to_dict(self) -> dict:
        return asdict(self)


def label_hub(hub_dir: str | Path | None, *, models: list[str] | None = None, db: str | None = None,
              executor: str = "local", batch: int = 256, address: str | None = None,
              show_progress: bool | None = None,
              stop: Callable[[], bool] | None = None) -> LabelReport:
    """Label what is missing for ``models`` (default: every model in the hub).

    ``stop`` is asked between groups of shards (one per core): when it answers True the run
    ends there without publishing (``report.stopped``), so a background job can be cancelled
    mid-way; its finished shards stay, as after a crash.
    """
    from ..corpus import Corpus
    from ..graph import open_graph
    from ..hub import Hub
    from .executors import failure_reason, get_executor

    if batch < 1:
        raise InvalidParameterError(f"batch must be a positive number of images, got {batch}")
    run = get_executor(executor, address=address)  # a bad name or address: refused first
    hub_dir = resolve_hub(hub_dir)
    start = time.perf_counter()
    with Hub.open(hub_dir, db=db, create=False) as hub:  # nothing to label: build nothing
        if not hub.list():
            raise NotBuiltError(f"the hub at {hub_dir} has no models to label; add some with "
                                "'mll hub add' or build a starter hub with 'mll starter --quick'")
    graph = open_graph(hub_dir, build=True)
    corpus = Corpus.open(hub_dir)
    store = LabelStore(hub_dir)
    samples = corpus.records(role="sample")
    sample_ids = [r.image_id for r in samples]
    report = LabelReport(images=len(sample_ids), executor=executor)
    with Hub.open(hub_dir, db=db) as hub:
        infos = [hub.get(m) for m in models] if models else hub.list()
        todo = []
        current = []
        for info in infos:
            if store.is_published(info.content_hash, graph.version, corpus.version):
                report.models_up_to_date.append(info.id)
                current.append(info)
                continue
            try:
                have = set()
                for out in store.known_outputs(info.content_hash):
                    have.update(out.id_list())
            except Exception as exc:  # noqa: BLE001 - a damaged shard fails its model only
                report.fail(info, failure_reason(exc))
                continue
            missing = [i for i in sample_ids if i not in have]
            todo.append((info, missing))
        jobs = [(info.id, missing[i: i + batch]) for info, missing in todo
                for i in range(0, len(missing), batch)]
        report.labels_converted = convert_published(store, graph, corpus, hub, current,
                                                    show_progress)
        index_published(store, graph, corpus, hub, current)  # labels older than the index
        step = len(jobs) if stop is None else max(1, os.cpu_count() or 1)
        seconds: dict[str, float] = {}
        failed: dict[str, str] = {}
        for first in range(0, len(jobs) + 1, max(1, step)):
            if stop is not None and stop():  # also after the last group: before publishing
                report.stopped = True
                report.seconds = round(time.perf_counter() - start, 3)
                return report
            group = [j for j in jobs[first: first + step] if j[0] not in failed]
            if not group:
                continue
            outcome = run(str(hub_dir), db, group, show_progress, corpus.version)
            for mid, sec in outcome.seconds.items():
                seconds[mid] = seconds.get(mid, 0.0) + sec
            failed |= outcome.failed
            for where, n in outcome.nodes.items():
                count = report.nodes.setdefault(where, {"tasks": 0, "images": 0})
                count["tasks"] += n["tasks"]
                count["images"] += n["images"]
        report.outputs_computed = sum(len(ids) for mid, ids in jobs if mid not in failed)
        for info, _ in todo:
            if info.id in failed:
                report.fail(info, failed[info.id])
                continue
            try:
                summary = publish_label(store, graph, corpus, samples, hub, info,
                                        round(seconds.get(info.id, 0.0), 3))
            except Exception as exc:  # noqa: BLE001 - e.g. a VLM whose text tower fails
                report.fail(info, failure_reason(exc))
                continue
            report.models_labelled.append(info.id)
            report.per_model[info.id] = summary
    report.seconds = round(time.perf_counter() - start, 3)
    return report


def _gather(store: LabelStore, content_hash: str, sample_ids: list[str]) -> Outputs:
    """This model's outputs on exactly ``sample_ids``, in that order."""
    parts = list(store.known_outputs(content_hash))
    merged = Outputs.concat([Outputs(np.asarray(p.ids), np.asarray(p.values),
                                     None if p.index is None else np.asarray(p.index),
                                     None if p.rest is None else np.asarray(p.rest))
                             for p in parts])
    first = {}
    for j, i in enumerate(merged.id_list()):
        first.setdefault(i, j)
    missing = [i for i in sample_ids if i not in first]
    if missing:
        raise InvalidParameterError(f"{len(missing)} sample images still lack outputs; "
                                    "run 'mll label' again")
    return merged.take(np.array([first[i] for i in sample_ids], dtype=np.int64))


def publish_label(store: LabelStore, graph, corpus, samples, hub, info, seconds: float) -> dict:
    """Statistics from the gathered outputs, then an atomic publish; returns the summary."""
    sample_ids = [r.image_id for r in samples]
    image_nodes = [r.wnid for r in samples]
    outputs = _gather(store, info.content_hash, sample_ids)
    extra: dict[str, np.ndarray] = {}
    summary = {"model_id": info.id, "content_hash": info.content_hash, "kind": info.kind,
               "graph_version": graph.version, "corpus_version": corpus.version,
               "images": len(sample_ids), "labelling_seconds": seconds, "labelled_at": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                       time.gmtime())}
    if info.kind == "expert":
        heads = [c.wnid for c in info.classes]
        probs = outputs.dense(len(heads))
        stats, detector = expert_stats(graph, probs, image_nodes, heads)
        own = stats["covered"]
        summary |= {"nodes_covered": int(own.sum()), "nodes": int(len(stats["nodes"])),
                    "images_in_domain": int(stats["count"][own].sum()),
                    "mean_accuracy_own_classes": _rate(stats["correct"][own], stats["count"][own]),
                    "detector": detector}
    else:
        adapter = hub.load(info.id)
        nodes = sorted(set(image_nodes))
        text_emb = adapter.encode_texts([graph.caption(v) for v in nodes])
        extra = {"text_nodes": np.array(nodes), "text_emb": text_emb.astype(np.float16)}
        stats = vlm_stats(np.asarray(outputs.values), text_emb, image_nodes, nodes,
                          float(getattr(adapter, "logit_scale", 100.0)))
        summary |= {"nodes_covered": int(len(nodes)), "nodes": int(len(nodes)),
                    "zero_shot_accuracy": _rate(stats["correct"], stats["count"])}
    dest = store.label_dir(info.content_hash, graph.version, corpus.version)
    store.publish(dest, outputs, stats, extra, summary, n_classes=len(info.classes))
    from .summaries import record_summary

    summary["bytes"] = storage_bytes(dest)
    rows = serving_rows(info.id, info.kind, [c.wnid for c in info.classes], stats,
                        _ancestors(graph))
    record_summary(hub.store, summary, rows)  # read by 'mll hub list/show' and 'hub serving'
    return summary


def _ancestors(graph) -> Callable[[str], set[str]]:
    """``graph.ancestors(v, include_self=True)``, memoised for one publishing run."""
    cache: dict[str, set[str]] = {}

    def get(v: str) -> set[str]:
        if v not in cache:
            cache[v] = graph.ancestors(v, include_self=True)
        return cache[v]

    return get


def convert_published(store: LabelStore, graph, corpus, hub, infos,
                      show_progress: bool | None = None) -> list[str]:
    """Rewrite current labels in an older layout (format 1 or 2) in the current one (each
    atomically, its summary row's ``bytes`` updated); returns the model ids converted."""
    from .._io import progress
    from .store import load_label
    from .summaries import record_summary

    done = []
    dirs = [(info, store.label_dir(info.content_hash, graph.version, corpus.version))
            for info in infos]
    old = [(info, d) for info, d in dirs if read_summary(d).get("format", 1) < FORMAT]
    for info, ldir in progress(old, "converting labels", total=len(old),
                               disable=None if show_progress is None else not show_progress):
        store.convert(ldir, len(info.classes))
        summary = dict(load_label(ldir, info.id).summary) | {"bytes": storage_bytes(ldir)}
        record_summary(hub.store, summary)
        done.append(info.id)
    return done


def index_published(store: LabelStore, graph, corpus, hub, infos) -> list[str]:
    """Write the candidate index rows of published labels that have none (labels published
    before the index existed); returns the model ids indexed."""
    from ..hub.records import served_models
    from .store import load_label
    from .summaries import record_summary

    with hub.store.read() as session:
        have = served_models(session, [i.id for i in infos])
    done = []
    ancestors = _ancestors(graph)
    for info in infos:
        if info.id in have:
            continue
        ldir = store.label_dir(info.content_hash, graph.version, corpus.version)
        label = load_label(ldir, info.id)
        summary = dict(label.summary) | {"bytes": storage_bytes(ldir)}
        record_summary(hub.store, summary, serving_rows(
            info.id, info.kind, [c.wnid for c in info.classes], label.stats, ancestors))
        done.append(info.id)
    return done


def _rate(correct: np.ndarray, count: np.ndarray) -> float | None:
    total = int(count.sum())
    return round(float(correct.sum()) / total, 4) if total else None
