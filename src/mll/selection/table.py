"""Everything selection needs: labels of every model, aligned on the sample images, plus the matcher.

Selection runs no model on images: it reads the cached outputs here. Text (class descriptions for
VLMs) is encoded through the models' text towers, kept loaded for the table's lifetime; ConSE and
LiT also cache their text encodings on disk.

Constructing a table is cheap: the hub, matcher and corpus load on first use, each once
(:meth:`LabelTable.load` loads them now, :meth:`LabelTable.open` constructs and loads). Labels
load lazily too: ``table.models`` knows every labelled model from one database query, and reads a
model's label files only when that model is asked for, keeping at most ``max_labels`` labels in
memory (least recently used first out). Selection asks the candidate index which models serve the
task's nodes (:meth:`LabelTable.candidates`), so a task reads the labels of its candidates only,
however large the hub.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..config import resolve_hub
from ..errors import InvalidParameterError, NotBuiltError

logger = logging.getLogger(__name__)

PROTO_BACKBONE = "efficientnet-lite0@224"
MAX_LABELS = 4096  # labels kept in memory (a small expert's is ~0.1 MB as float32)


@dataclass
class ModelLabel:
    """One model's published label."""

    info: object  # mll.hub.ModelInfo
    outputs: np.ndarray  # (N, C) probabilities or (N, D) embeddings, float32, sample order
    stats: dict[str, np.ndarray]
    summary: dict
    text_nodes: np.ndarray | None = None
    text_emb: np.ndarray | None = None

    @property
    def id(self) -> str:
        return self.info.id

    @property
    def kind(self) -> str:
        return self.info.kind


@dataclass(frozen=True)
class SampleImages:
    """The corpus's sample images in label order: id, node, style and source group of each.

    Augmented copies of one source image share a group: proxy scoring leaves the group out.
    """

    ids: list[str]
    nodes: np.ndarray
    styles: np.ndarray
    groups: np.ndarray

    @classmethod
    def from_records(cls, records) -> SampleImages:
        groups: dict[tuple[str, str], int] = {}
        return cls([r.image_id for r in records], np.array([r.wnid for r in records]),
                   np.array([r.style for r in records]),
                   np.array([groups.setdefault((r.source, r.orig_id), len(groups))
                             for r in records], dtype=np.int64))


class LabelCache(Mapping):
    """The labelled models by id, in hub order; each label is read from disk when first asked
    for and kept among the ``capacity`` most recently used.

    Safe to share between threads (the server's request threads share one table): the keys never
    change, and the cache's bookkeeping is under a lock (two threads asking for the same unloaded
    label may both read it; one copy is kept).
    """

    def __init__(self, kinds: Mapping[str, str], load, capacity: int = MAX_LABELS) -> None:
        self.kinds = dict(kinds)  # id -> "expert" | "vlm", hub order
        self._load = load  # list of ids -> {id: ModelLabel}
        self.capacity = capacity
        self._cache: OrderedDict[str, ModelLabel] = OrderedDict()
        self._lock = threading.Lock()
        self.reads = 0  # labels read from disk so far (tests and benchmarks)

    def __len__(self) -> int:
        return len(self.kinds)

    def __iter__(self) -> Iterator[str]:
        return iter(self.kinds)

    def __contains__(self, model_id: object) -> bool:
        return model_id in self.kinds

    def __getitem__(self, model_id: str) -> ModelLabel:
        return self.many([model_id])[model_id]

    def values(self):  # in hub order, reading in batches
        ids = list(self.kinds)
        for start in range(0, len(ids), 256):
            batch = self.many(ids[start: start + 256])
            yield from (batch[i] for i in ids[start: start + 256])

    def items(self):
        return zip(self.kinds, self.values(), strict=True)

    def many(self, model_ids: Sequence[str]) -> dict[str, ModelLabel]:
        """The labels of ``model_ids`` (unknown ids raise ``KeyError``), missing ones read in one
        batch."""
        with self._lock:
            have = {m: self._cache[m] for m in model_ids if m in self._cache}
            for m in have:
                self._cache.move_to_end(m)
        missing = [m for m in dict.fromkeys(model_ids) if m not in have]
        for m in missing:
            if m not in self.kinds:
                raise KeyError(m)
        if missing:
            loaded = self._load(missing)
            with self._lock:
                self.reads += len(loaded)
                for m, label in loaded.items():
                    self._cache[m] = label
                    self._cache.move_to_end(m)
                while len(self._cache) > self.capacity:
                    self._cache.popitem(last=False)
            have |= loaded
        return have


class LabelTable:
    """The hub's labels for the current graph and corpus versions, plus the matcher."""

    def __init__(self, hub_dir: str | Path | None, db: str | None = None,
                 proto_backbone: str = PROTO_BACKBONE, max_labels: int = MAX_LABELS) -> None:
        if isinstance(max_labels, bool) or not isinstance(max_labels, int) or max_labels < 1:
            raise InvalidParameterError(f"label table: max_labels must be a whole number of at "
                                        f"least 1, got {max_labels!r}")
        self.hub_dir: Path | None = resolve_hub(hub_dir)
        self.db = db
        self.proto_backbone = proto_backbone
        self.max_labels = max_labels
        self._adapters: dict[str, object] = {}
        self._ancestor_cache: dict[str, set[str]] = {}  # heads repeat across tasks

    @classmethod
    def open(cls, hub_dir: str | Path | None, db: str | None = None,
             proto_backbone: str = PROTO_BACKBONE) -> LabelTable:
        """A table with its hub, matcher, corpus and list of labelled models loaded now (errors
        surface here; a damaged label surfaces when selection first reads it)."""
        return cls(hub_dir, db=db, proto_backbone=proto_backbone).load()

    @classmethod
    def from_labels(cls, models: Iterable[ModelLabel], samples: SampleImages, matcher, *,
                    proto_features: np.ndarray | None = None,
                    adapters: Mapping[str, object] | None = None,
                    proto_backbone: str = PROTO_BACKBONE) -> LabelTable:
        """A table over labels already in memory (studies, tests): no hub directory behind it, so
        models are served only from ``adapters`` and prototype features must be given."""
        table = cls.__new__(cls)
        table.hub_dir, table.db, table.proto_backbone = None, None, proto_backbone
        table.max_labels = MAX_LABELS
        table._adapters = dict(adapters or {})
        table._ancestor_cache = {}
        table.matcher, table.samples = matcher, samples
        table.models = {m.id: m for m in models}
        table.unlabelled = []
        if proto_features is not None:
            table.proto_features = _normalised(np.asarray(proto_features, dtype=np.float32))
        return table

    def load(self) -> LabelTable:
        """Load the hub, matcher, corpus and the list of labelled models now instead of on first
        use (labels themselves load when selection asks for them)."""
        _ = self.models, self.samples
        return self

    #: Caches that do not depend on which models are labelled (see :meth:`with_fresh_models`).
    _MODEL_FREE_CACHES = ("hub", "matcher", "corpus", "samples", "proto_features", "node_styles",
                          "sample_node_ancestors")

    def with_fresh_models(self) -> LabelTable:
        """A new table on the same hub whose models (and per-style counts) load anew, reusing
        this one's caches that do not depend on which models are labelled."""
        fresh = LabelTable(self.hub_dir, db=self.db, proto_backbone=self.proto_backbone,
                           max_labels=self.max_labels)
        for key in self._MODEL_FREE_CACHES:
            if key in self.__dict__:
                fresh.__dict__[key] = self.__dict__[key]
        fresh._adapters, fresh._ancestor_cache = self._adapters, self._ancestor_cache
        return fresh

    def close(self) -> None:
        if "hub" in self.__dict__:
            self.hub.close()

    # -- loaded on first use ------------------------------------------------------------------
    def _on_disk(self) -> Path:
        if self.hub_dir is None:
            raise NotBuiltError("this label table was built from labels in memory; it has no hub "
                                "directory to load models, images or features from")
        return self.hub_dir

    @cached_property
    def hub(self):
        from ..hub import Hub

        return Hub.open(self._on_disk(), db=self.db, create=False)

    @cached_property
    def matcher(self):
        from ..graph import Matcher

        return Matcher.for_hub(self._on_disk())

    @property
    def graph(self):
        return self.matcher.graph

    @cached_property
    def corpus(self):
        from ..corpus import Corpus

        return Corpus.open(self._on_disk())

    @cached_property
    def samples(self) -> SampleImages:
        return SampleImages.from_records(self.corpus.records(role="sample"))

    @cached_property
    def models(self) -> Mapping[str, ModelLabel]:
        """Every model with a label for the current graph and corpus, in hub order (a
        :class:`LabelCache`: each label is read when first used)."""
        from ..hub.records import labelled_models

        with self.hub.store.read() as session:
            rows = labelled_models(session)
        if not rows:  # before the graph and matcher: nothing to select from
            raise NotBuiltError(f"the hub at {self.hub_dir} has no models; add some with 'mll hub "
                                "add' or build a starter hub with 'mll starter --quick'")
        current = (self.graph.version, self.corpus.version)
        labelled = [(m, kind) for m, kind, versions in rows if versions == current]
        unlabelled = [m for m, _, versions in rows if versions != current]
        if not labelled:
            raise NotBuiltError("the hub has no labelled models; add models and run 'mll label'")
        if unlabelled:
            logger.warning("%d model(s) without a current label are ignored: run 'mll label'",
                           len(unlabelled))
        self.unlabelled = unlabelled
        return LabelCache(dict(labelled), self._read_labels, self.max_labels)

    def _read_labels(self, model_ids: list[str]) -> dict[str, ModelLabel]:
        """Read the labels of ``model_ids`` from disk (damaged files: an error naming the model)."""
        from ..labels import LabelStore
        from ..labels.store import DamagedLabelError, load_label, storage_bytes

        store = LabelStore(self._on_disk())
        out: dict[str, ModelLabel] = {}
        for info in self.hub.store.infos(list(model_ids)):
            ldir = store.label_dir(info.content_hash, self.graph.version, self.corpus.version)
            if not (ldir / "summary.json").is_file():
                raise DamagedLabelError(ldir, "summary.json is missing", info.id)
            published = load_label(ldir, info.id)
            values = published.outputs.matrix(info.kind, len(info.classes))
            summary = published.summary | {"bytes": storage_bytes(ldir)}
            label = ModelLabel(info, values, published.stats, summary)
            if info.kind == "vlm":
                label.text_nodes = np.asarray(published.text_nodes)
                label.text_emb = np.asarray(published.text_emb, dtype=np.float32)
            out[info.id] = label
        return out

    def candidates(self, nodes: Iterable[str | None], per_node: int, kind: str = "expert"
                   ) -> list[str]:
        """Ids of the ``per_node`` best models (of ``kind``) serving each node, by the candidate
        index's ranking (measured accuracy there, then images), in hub order. A table built in
        memory has no index: every model of the kind is a candidate."""
        if self.hub_dir is None:
            return [m.id for m in self._of_kind(kind)]
        from ..hub.records import serving_top

        with self.hub.store.read() as session:
            top = serving_top(session, sorted({v for v in nodes if v}), kind=kind,
                              limit=per_node)
        keep = {m for ids in top.values() for m in ids}
        return [m for m in self.models if m in keep]

    @cached_property
    def proto_features(self) -> np.ndarray:
        """Normalised backbone features of every sample image (computed once, cached on disk)."""
        return _normalised(self.hub.features.get(self.proto_backbone, keys=self.image_ids,
                                                 load=self.corpus.load))

    # -- derived ------------------------------------------------------------------------------
    @property
    def image_ids(self) -> list[str]:
        return self.samples.ids

    @property
    def image_nodes(self) -> np.ndarray:
        return self.samples.nodes

    @property
    def image_styles(self) -> np.ndarray:
        return self.samples.styles

    @property
    def image_groups(self) -> np.ndarray:
        return self.samples.groups

    @property
    def experts(self) -> list[ModelLabel]:
        """Every labelled expert (reads every expert's label: selection asks for candidates)."""
        return self._of_kind("expert")

    @property
    def vlms(self) -> list[ModelLabel]:
        return self._of_kind("vlm")

    def _of_kind(self, kind: str) -> list[ModelLabel]:
        models = self.models
        if isinstance(models, LabelCache):
            ids = [m for m, k in models.kinds.items() if k == kind]
            labels = models.many(ids)
            return [labels[m] for m in ids]
        return [m for m in models.values() if m.kind == kind]

    def default_vlm(self) -> ModelLabel:
        """The general VLM that patches uncovered classes: the best VLM among the families that
        declare themselves the preferred patch (``Adapter.PREFERRED_PATCH``), else among all."""
        from ..hub.adapters import families

        vlms = self.vlms
        if not vlms:
            raise NotBuiltError("the hub has no labelled VLM to patch uncovered classes")
        preferred = [m for m in vlms
                     if m.info.family in families and families.get(m.info.family).PREFERRED_PATCH]
        pool = preferred or vlms
        return max(pool, key=lambda m: (m.summary.get("zero_shot_accuracy") or 0, m.id))

    def ancestors(self, wnid: str) -> set[str]:
        """The node and its ancestors, memoised (expert heads repeat across tasks)."""
        if wnid not in self._ancestor_cache:
            self._ancestor_cache[wnid] = self.graph.ancestors(wnid, include_self=True)
        return self._ancestor_cache[wnid]

    @cached_property
    def node_styles(self) -> dict[str, set[str]]:
        """Node -> the styles of the sample images at or below it."""
        out: dict[str, set[str]] = {}
        for node, style in set(zip(self.image_nodes.tolist(), self.image_styles.tolist(),
                                   strict=True)):
            for a in self.sample_node_ancestors[node]:
                out.setdefault(a, set()).add(style)
        return out

    @cached_property
    def style_counts(self):
        """Per (model, sample node, style group) counts of right answers (see ``style.py``),
        each model's computed when first asked for."""
        from .style import StyleCounts

        return StyleCounts.lazy(self)

    @cached_property
    def sample_node_ancestors(self) -> dict[str, set[str]]:
        return {v: self.graph.ancestors(v, include_self=True) for v in set(self.image_nodes.tolist())}

    def subset(self, model_ids) -> LabelTable:
        """The same table restricted to some models (shares caches; for hub-size studies)."""
        import copy

        keep = [m for m in self.models if m in set(model_ids)]  # hub order
        labels = self.models.many(keep) if isinstance(self.models, LabelCache) else self.models
        models = {m: labels[m] for m in keep}
        view = copy.copy(self)
        view.models = models
        return view

    def adapter(self, model_id: str):
        """A loaded model (kept: VLM text towers are reused for every task)."""
        if model_id not in self._adapters:
            self._adapters[model_id] = self.hub.load(model_id)
        return self._adapters[model_id]


def _normalised(feats: np.ndarray) -> np.ndarray:
    return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)
