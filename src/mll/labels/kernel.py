"""The labelling kernel: one model on one batch of sample images, written as one shard.

A plain importable function, so the local executor calls it directly and the Ray executor ships it
as a task. Its output file is named by (model hash, image ids): a retried task rewrites the same
shard, so retries are harmless. Within one process (the local run, or a reused Ray worker) the hub,
the corpus and the last few loaded models are kept open between calls.
"""

from __future__ import annotations

import logging
import time
from functools import lru_cache

from ..config import resolve_hub
from .store import LabelStore, Outputs

logger = logging.getLogger(__name__)


@lru_cache(maxsize=2)
def _open(hub_dir: str, db: str | None, corpus_version: str):
    from ..corpus import Corpus
    from ..hub import Hub

    return Hub.open(hub_dir, db=db), Corpus.open(hub_dir)


@lru_cache(maxsize=4)
def _model(hub_dir: str, db: str | None, corpus_version: str, model_id: str):
    hub, _ = _open(hub_dir, db, corpus_version)
    return hub.get(model_id), hub.load(model_id)


def label_shard(hub_dir: str, db: str | None, model_id: str, image_ids: list[str],
                corpus_version: str = "") -> tuple[str, float]:
    """Compute and store one shard of a model's outputs; returns its path and the seconds taken."""
    start = time.perf_counter()
    hub, corpus = _open(hub_dir, db, corpus_version)
    info, adapter = _model(hub_dir, db, corpus_version, model_id)
    values = hub.features.outputs(adapter, keys=image_ids, load=corpus.load)
    outputs = Outputs.from_dense(image_ids, values, info.kind)
    path = LabelStore(resolve_hub(hub_dir)).write_shard(info.content_hash, outputs)
    return str(path), time.perf_counter() - start
