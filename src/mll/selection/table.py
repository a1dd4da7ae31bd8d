"""Everything selection needs, loaded once: labels of every model, aligned on the sample images.

Selection runs no model on images: it reads the cached outputs here. Text is encoded (class
descriptions for VLMs) through the models' text towers, which cache on disk.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from ..errors import NotBuiltError

logger = logging.getLogger(__name__)

PROTO_BACKBONE = "efficientnet-lite0@224"


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


class LabelTable:
    """The hub's labels for the current graph and corpus versions, plus the matcher."""

    def __init__(self, hub_dir: str | Path, db: str | None = None,
                 proto_backbone: str = PROTO_BACKBONE) -> None:
        from ..corpus import Corpus
        from ..graph import Matcher
        from ..hub import Hub
        from ..labels import LabelStore
        from ..labels.store import load_label, storage_bytes

        self.hub_dir = Path(hub_dir)
        self.hub = Hub.open(self.hub_dir, db=db, create=False)
        if not self.hub.list():  # before the graph and matcher: nothing to select from
            raise NotBuiltError(f"the hub at {self.hub_dir} has no models; add some with 'mll hub "
                                "add' or build a starter hub with 'mll starter --quick'")
        self.matcher = Matcher.for_hub(self.hub_dir)
        self.graph = self.matcher.graph
        self.corpus = Corpus.open(self.hub_dir)
        samples = self.corpus.records(role="sample")
        self.image_ids = [r.image_id for r in samples]
        self.image_nodes = np.array([r.wnid for r in samples])
        self.image_styles = np.array([r.style for r in samples])
        # augmented copies of one source image form a group: scoring leaves the group out
        groups: dict[tuple[str, str], int] = {}
        self.image_groups = np.array([groups.setdefault((r.source, r.orig_id), len(groups))
                                      for r in samples], dtype=np.int64)
        self.proto_backbone = proto_backbone
        store = LabelStore(self.hub_dir)
        self.models: dict[str, ModelLabel] = {}
        self.unlabelled: list[str] = []
        self._adapters: dict[str, object] = {}
        for info in self.hub.list():
            ldir = store.label_dir(info.content_hash, self.graph.version, self.corpus.version)
            if not (ldir / "summary.json").is_file():
                self.unlabelled.append(info.id)
                continue
            published = load_label(ldir, info.id)  # damaged files: an error naming the model
            out = published.outputs
            n_heads = len(info.classes)
            values = out.dense(n_heads) if info.kind == "expert" else np.asarray(
                out.values, dtype=np.float32)
            summary = published.summary | {"bytes": storage_bytes(ldir)}
            label = ModelLabel(info, values, published.stats, summary)
            if info.kind == "vlm":
                label.text_nodes = np.asarray(published.text_nodes)
                label.text_emb = np.asarray(published.text_emb, dtype=np.float32)
            self.models[info.id] = label
        if not self.models:
            raise NotBuiltError("the hub has no labelled models; add models and run 'mll label'")
        if self.unlabelled:
            logger.warning("%d model(s) without a current label are ignored: run 'mll label'",
                           len(self.unlabelled))

    def close(self) -> None:
        self.hub.close()

    # -- derived ------------------------------------------------------------------------------
    @property
    def experts(self) -> list[ModelLabel]:
        return [m for m in self.models.values() if m.kind == "expert"]

    @property
    def vlms(self) -> list[ModelLabel]:
        return [m for m in self.models.values() if m.kind == "vlm"]

    def default_vlm(self) -> ModelLabel:
        """The general VLM that patches uncovered classes: ConSE if present, else the best VLM."""
        vlms = self.vlms
        if not vlms:
            raise NotBuiltError("the hub has no labelled VLM to patch uncovered classes")
        conse = [m for m in vlms if m.info.family == "conse"]
        pool = conse or vlms
        return max(pool, key=lambda m: (m.summary.get("zero_shot_accuracy") or 0, m.id))

    @cached_property
    def proto_features(self) -> np.ndarray:
        """Normalised backbone features of every sample image (computed once, cached on disk)."""
        feats = self.hub.features.get(self.proto_backbone, keys=self.image_ids, load=self.corpus.load)
        return feats / np.maximum(np.linalg.norm(feats, axis=1, keepdims=True), 1e-12)

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
    def sample_node_ancestors(self) -> dict[str, set[str]]:
        return {v: self.graph.ancestors(v, include_self=True) for v in set(self.image_nodes.tolist())}

    def subset(self, model_ids) -> LabelTable:
        """The same table restricted to some models (shares caches; for hub-size studies)."""
        import copy

        view = copy.copy(self)
        keep = set(model_ids)
        view.models = {m: label for m, label in self.models.items() if m in keep}  # hub order
        return view

    def adapter(self, model_id: str):
        """A loaded model (kept: VLM text towers are reused for every task)."""
        if model_id not in self._adapters:
            self._adapters[model_id] = self.hub.load(model_id)
        return self._adapters[model_id]
