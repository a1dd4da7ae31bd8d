"""Synthetic hubs of any size for measuring the hub at scale without weights or images.

Every synthetic model is drawn from a real labelled hub (the quick starter hub, say), so the
candidate structure is the real one:

- an **expert** copies a real expert's head classes along the graph: a random head, an anchor one
  to four levels above it, and the real expert's heads under that anchor (at most
  ``max_classes``; at least two when the real expert has two). It is a runnable model of family
  ``synthetic`` (``mll.hub.adapters.synthetic``): its artifact is a JSON spec naming the real
  expert and a seeded transformation (temperature, per-head bias, noise seeded by the model id
  and the image id) of the real expert's outputs on those heads. Its label is that
  transformation applied to the real expert's label, so running it on a sample image gives what
  its label says, and it can be run on any other image as well. Its per-node counts are computed
  from those outputs as labelling computes a real expert's, and published as a compact label
  (``mll.labels.store``, current format; the domain detector and confusion matrix are left out);
- a **VLM** is a perturbed copy of a real VLM's per-node counts, on every sample node. It has no
  label files (selection would need its text tower): its summary is written incomplete, so
  ``LabelTable`` does not offer it, but it is in the candidate index.

Models are written through the hub's own store and records (``models``, ``model_classes``,
``label_summaries`` and the candidate index ``label_serving``), in batches of one transaction
each, so every query of the hub runs on them as on real models; label files and artifacts are
written by a few threads. A synthetic VLM carries no artifact: loading one is refused. Ids are content hashes of (seed, index, real model), so
the same call writes the same hub and writing it again adds nothing.
"""

from __future__ import annotations

import hashlib
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from numbers import Integral, Real
from pathlib import Path

import numpy as np
from scipy.special import expit, logit

from ..errors import InvalidParameterError, NotBuiltError
from ..hub.adapters.synthetic import FAMILY

logger = logging.getLogger(__name__)

MAX_MODELS = 1_000_000
SKILL_SD = 0.6  # VLM copies: logit-scale spread of whole-model skill around the real model's
NODE_SD = 0.3  # VLM copies: logit-scale noise per node
TEMPERATURE_SD = 0.25  # experts: log-temperature spread (calibration unlike the source's)
NOISE_SD = 0.8  # experts: scale of the per-model noise level (|N(0, NOISE_SD)| on the logits)
BIAS_SD = 0.3  # experts: per-head logit bias (a prior unlike the source's)
WRITERS = 4  # threads publishing label files: numpy's writes and zlib release the GIL


@dataclass(frozen=True)
class SyntheticReport:
    """What :func:`build_synthetic_hub` wrote."""

    models: int  # new models written (models already there are skipped)
    experts: int
    vlms: int
    index_rows: int
    seconds: float
    db: str  # the database URL, password masked

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class _Real:
    """What a synthetic copy needs of one real labelled model."""

    info: object  # ModelInfo
    heads: list[tuple[str, str]]  # (class name, wnid) of mapped heads
    nodes: np.ndarray  # sample nodes with images
    count: np.ndarray
    rate: np.ndarray  # clipped accuracy per node, the centre of the perturbation
    covered: np.ndarray
    probs: np.ndarray | None = None  # experts: (images, all heads) labelled outputs
    closure: np.ndarray | None = None  # experts: (sample nodes, mapped heads) head is right
    head_index: list[int] | None = None  # experts: each mapped head's index among all heads


@dataclass(frozen=True)
class _Samples:
    """The source's sample images: ids (bytes), each one's node index, the node list."""

    ids: np.ndarray
    image_node: np.ndarray
    nodes: np.ndarray
    keys: np.ndarray  # each id's noise key (mll.hub.adapters.synthetic.image_keys)


def _check(models: object, seed: object, vlm_share: object, max_classes: object,
           batch: object) -> None:
    def whole(name, value, low, high=None):
        if isinstance(value, bool) or not isinstance(value, Integral) or value < low or (
                high is not None and value > high):
            bound = f"between {low} and {high}" if high else f"at least {low}"
            raise InvalidParameterError(f"synthetic hub: {name} must be a whole number {bound}, "
                                        f"got {value!r}")

    whole("models", models, 1, MAX_MODELS)
    whole("seed", seed, 0)
    whole("max_classes", max_classes, 2)
    whole("batch", batch, 1)
    if isinstance(vlm_share, bool) or not isinstance(vlm_share, Real) or not 0 <= vlm_share <= 1:
        raise InvalidParameterError(f"synthetic hub: vlm_share must be a number from 0 to 1, got "
                                    f"{vlm_share!r}")


def _reals(table) -> tuple[list[_Real], list[_Real]]:
    from ..labels.stats import head_closure

    experts, vlms = [], []
    sample_nodes = sorted(set(table.image_nodes.tolist()))
    for label in table.models.values():
        st = label.stats
        keep = st["count"] > 0
        count = st["count"][keep].astype(np.int64)
        rate = np.clip(st["correct"][keep] / np.maximum(count, 1), 0.02, 0.98)
        mapped = [c for c in label.info.classes if c.wnid]
        heads = [(c.name, c.wnid) for c in mapped]
        real = _Real(label.info, heads, st["nodes"][keep], count, rate,
                     st["covered"][keep].astype(bool))
        if label.kind == "expert" and heads:
            real.probs = np.asarray(label.outputs, np.float32)
            real.head_index = [c.index for c in mapped]
            real.closure = head_closure(table.graph, [w for _, w in heads], sample_nodes)
        if label.kind == "vlm":
            vlms.append(real)
        elif heads:
            experts.append(real)
    return experts, vlms


def build_synthetic_hub(source: str | Path, dest: str | Path | None, models: int, *,
                        db: str | None = None, seed: int = 0, vlm_share: float = 0.01,
                        max_classes: int = 64, batch: int = 2000) -> SyntheticReport:
    """Write ``models`` synthetic models, drawn from the labelled hub ``source``, into the hub at
    ``dest`` (or the database ``db``).

    ``vlm_share`` is the share of VLMs (1% by default: public hubs hold far more classifiers than
    vision-language models, and a VLM serves every node with sample images, about 1,700 index
    rows against about 40 for an expert). ``batch`` models go in each transaction.
    """
    from ..hub import Hub
    from ..hub.adapters.synthetic import image_keys
    from ..selection.table import LabelTable

    _check(models, seed, vlm_share, max_classes, batch)
    start = time.perf_counter()
    table = LabelTable.open(source)
    experts, vlms = _reals(table)
    if not experts or (vlm_share > 0 and not vlms):
        raise NotBuiltError(f"the hub at {source} needs labelled experts with mapped heads"
                            + (" and a labelled VLM" if vlm_share > 0 else "")
                            + " to draw synthetic models from; run 'mll starter --quick'")
    graph = table.graph
    versions = (graph.version, table.corpus.version)
    ancestors = _Ancestors(graph)
    nodes = np.array(sorted(set(table.image_nodes.tolist())))
    node_idx = {v: i for i, v in enumerate(nodes.tolist())}
    samples = _Samples(np.array(table.image_ids, dtype="S64"),
                       np.array([node_idx[v] for v in table.image_nodes.tolist()]), nodes,
                       image_keys([str(i) for i in table.image_ids]))
    rng = np.random.default_rng(seed)
    made = {"expert": 0, "vlm": 0, "rows": 0}
    from .._io import progress

    with Hub.open(dest, db=db) as hub, ThreadPoolExecutor(WRITERS) as pool:
        for first in progress(range(0, models, batch), "writing synthetic models",
                              total=models, weight=lambda f: min(batch, models - f)):
            drawn = [_draw(rng, seed, i, experts, vlms, vlm_share, max_classes, ancestors,
                           samples) for i in range(first, min(first + batch, models))]
            _write(hub, drawn, versions, ancestors, made, samples, pool)
            logger.info("synthetic hub: %d of %d models", min(first + batch, models), models)
        shown = hub.store.shown
    return SyntheticReport(made["expert"] + made["vlm"], made["expert"], made["vlm"],
                           made["rows"], round(time.perf_counter() - start, 3), shown)


class _Ancestors:
    """``graph.ancestors(v, include_self=True)`` and hop distances, memoised."""

    def __init__(self, graph) -> None:
        self.graph = graph
        self._anc: dict[str, set[str]] = {}
        self._up: dict[str, list[tuple[str, int]]] = {}

    def __call__(self, v: str) -> set[str]:
        if v not in self._anc:
            self._anc[v] = self.graph.ancestors(v, include_self=True)
        return self._anc[v]

    def up(self, v: str) -> list[tuple[str, int]]:
        if v not in self._up:
            self._up[v] = sorted(self.graph.up_distances(v).items())
        return self._up[v]


@dataclass
class _Drawn:
    real: _Real
    index: int
    content_hash: str
    heads: list[tuple[str, str]]
    nodes: np.ndarray
    count: np.ndarray
    correct: np.ndarray
    probs: np.ndarray | None = None  # experts: (images, heads) perturbed outputs
    stats: dict[str, np.ndarray] | None = None  # experts: per-node counts from ``probs``
    spec: dict | None = None  # experts: the artifact (mll.hub.adapters.synthetic)


def _draw(rng: np.random.Generator, seed: int, i: int, experts: list[_Real], vlms: list[_Real],
          vlm_share: float, max_classes: int, ancestors: _Ancestors, samples: _Samples) -> _Drawn:
    """One synthetic model: a real one's class subset along the graph, its counts perturbed."""
    is_vlm = rng.random() < vlm_share
    pool = vlms if is_vlm else experts
    real = pool[int(rng.integers(len(pool)))]
    heads: list[tuple[str, str]] = []
    keep = np.ones(len(real.nodes), dtype=bool)  # a VLM serves every node its copy measured
    if not is_vlm:
        start = real.heads[int(rng.integers(len(real.heads)))][1]
        reach = int(rng.integers(1, 5))
        anchors = [a for a, d in ancestors.up(start) if d <= reach]
        anchor = anchors[int(rng.integers(len(anchors)))]
        picked = [j for j, (_, w) in enumerate(real.heads) if anchor in ancestors(w)]
        if len(picked) > max_classes:
            picked = sorted(rng.choice(picked, max_classes, replace=False).tolist())
        if len(picked) < 2 <= len(real.heads):
            others = [j for j in range(len(real.heads)) if j not in picked]
            picked = sorted(picked + [int(rng.choice(others))])
        heads = [real.heads[j] for j in picked]
    chash = hashlib.sha256(f"{FAMILY}:{seed}:{i}:{real.info.content_hash}".encode()).hexdigest()
    if not is_vlm:  # its served nodes come from its own outputs' counts
        return _expert(rng, real, picked, heads, i, chash, samples)
    shift = rng.normal(0, SKILL_SD) + rng.normal(0, NODE_SD, int(keep.sum()))
    count = real.count[keep]
    correct = rng.binomial(count, expit(logit(real.rate[keep]) + shift))
    return _Drawn(real, i, chash, heads, real.nodes[keep], count, correct)


def _expert(rng: np.random.Generator, real: _Real, picked: list[int],
            heads: list[tuple[str, str]], i: int, chash: str, samples: _Samples) -> _Drawn:
    """A synthetic expert's spec, its outputs on the sample images (the spec's transformation of
    the real expert's labelled outputs, as running it would give) and its per-node counts."""
    from ..hub.adapters.synthetic import make_spec, transform

    spec = make_spec(source_id=real.info.id, source_hash=real.info.content_hash,
                     source_classes=real.probs.shape[1],
                     heads=[real.head_index[j] for j in picked], seed=int(chash[:12], 16),
                     temperature=float(np.exp(rng.normal(0, TEMPERATURE_SD))),
                     noise_sd=abs(float(rng.normal(0, NOISE_SD))),
                     bias=rng.normal(0, BIAS_SD, len(picked)).tolist())
    closure = real.closure[:, picked]  # (nodes, heads)
    right = closure[samples.image_node]  # (images, heads): heads right for each image
    probs = transform(real.probs, spec, samples.keys)
    pred = probs.argmax(axis=1)
    n_nodes = len(samples.nodes)
    count = np.bincount(samples.image_node, minlength=n_nodes)
    ok = right[np.arange(len(pred)), pred]
    stats = {"nodes": samples.nodes, "count": count.astype(np.int32),
             "correct": np.bincount(samples.image_node, weights=ok, minlength=n_nodes
                                    ).astype(np.int32),
             "own_mass": np.bincount(samples.image_node, weights=(probs * right).sum(axis=1),
                                     minlength=n_nodes) / np.maximum(count, 1),
             "max_prob": np.bincount(samples.image_node, weights=probs.max(axis=1),
                                     minlength=n_nodes) / np.maximum(count, 1),
             "covered": closure.any(axis=1)}
    cov = stats["covered"] & (count > 0)
    return _Drawn(real, i, chash, heads, samples.nodes[cov], count[cov], stats["correct"][cov],
                  probs, stats, spec)


def _write(hub, drawn: list[_Drawn], versions: tuple[str, str], ancestors: _Ancestors,
           made: dict[str, int], samples: _Samples, pool: ThreadPoolExecutor) -> None:
    """One transaction: the batch's model rows, classes, label summaries and index rows; the
    experts' label files are published first (a label without its row is never read)."""
    from sqlalchemy import insert, select

    from ..hub.records import LabelSummary, replace_serving
    from ..hub.store import ClassRow, ModelRow
    from ..labels.serving import serving_rows
    from ..labels.store import LabelStore

    store = hub.store
    labels = LabelStore(hub.root)
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    with store.write() as session:
        ids = [d.content_hash[:12] for d in drawn]
        there = set(session.scalars(select(ModelRow.id).where(ModelRow.id.in_(ids))))
        drawn = [d for d in drawn if d.content_hash[:12] not in there]
        if not drawn:
            return
        written = dict(zip((d.content_hash for d in drawn if d.stats is not None),
                           pool.map(lambda d: _publish(hub, labels, d, versions, samples, stamp),
                                    [d for d in drawn if d.stats is not None]), strict=True))
        models, classes, summaries, index = [], [], [], []
        for d in drawn:
            info, mid = d.real.info, d.content_hash[:12]
            spec = info.input_spec
            models.append({
                "id": mid, "content_hash": d.content_hash,
                "name": f"syn-{info.name}-{d.index:06d}", "kind": info.kind, "family": FAMILY,
                "source": f"synthetic copy of {info.id}", "license": "none",
                "n_params": info.n_params, "latency_ms": info.latency_ms,
                "input_size": spec.size, "input_channels": spec.channels,
                "input_mean": list(spec.mean), "input_std": list(spec.std),
                "backbone": None, "artifact_digest": written.get(d.content_hash, ("0" * 64,))[0],
                "artifact_bytes": written.get(d.content_hash, (None, 0))[1],
                "config": {"template": info.id, "index": d.index}, "metrics": {},
                "created_at": now})
            classes += [{"model_id": mid, "idx": j, "name": name, "wnid": w, "score": None,
                         "confirmed": True} for j, (name, w) in enumerate(d.heads)]
            summaries.append({
                "model_id": mid, "graph_version": versions[0], "corpus_version": versions[1],
                "images": int(d.real.count.sum()), "nodes_covered": len(d.nodes),
                "mean_accuracy": _accuracy(d), "labelling_seconds": 0.0,
                "bytes": written.get(d.content_hash, (None, 0, 0))[2],
                "labelled_at": stamp, "complete": d.stats is not None})
            stats = d.stats if d.stats is not None else {
                "nodes": d.nodes, "count": d.count, "correct": d.correct,
                "covered": np.ones(len(d.nodes), dtype=bool)}
            index += serving_rows(mid, info.kind, [w for _, w in d.heads], stats, ancestors)
            made[info.kind] += 1
        # Core inserts (one executemany each): the ORM's bulk path costs more than the rows
        session.execute(insert(ModelRow.__table__), models)
        if classes:
            session.execute(insert(ClassRow.__table__), classes)
        session.execute(insert(LabelSummary.__table__), summaries)
        replace_serving(session, [], index)
        made["rows"] += len(index)


def _accuracy(d: _Drawn) -> float | None:
    total = int(d.count.sum())
    return round(int(d.correct.sum()) / total, 4) if total else None


def _publish(hub, labels, d: _Drawn, versions: tuple[str, str], samples: _Samples,
             stamp: str) -> tuple[str, int, int]:
    """Store one synthetic expert's spec as its artifact and publish its compact label:
    (artifact digest, artifact bytes, label bytes). Runs in a writer thread (each label is its
    own directory renamed into place whole; artifacts are content-addressed atomic files)."""
    from ..hub.adapters.synthetic import spec_bytes
    from ..labels.store import Outputs, storage_bytes

    data = spec_bytes(d.spec)
    digest = hub.artifacts.put_bytes(data)
    dest = labels.label_dir(d.content_hash, *versions)
    labels.publish(dest, Outputs(samples.ids, d.probs), d.stats, {}, {
        "model_id": d.content_hash[:12], "content_hash": d.content_hash, "kind": "expert",
        "graph_version": versions[0], "corpus_version": versions[1],
        "images": len(samples.ids), "labelling_seconds": 0.0, "labelled_at": stamp,
        "nodes_covered": len(d.nodes), "nodes": len(samples.nodes),
        "images_in_domain": int(d.count.sum()), "mean_accuracy_own_classes": _accuracy(d),
        "synthetic": True}, n_classes=len(d.heads))
    return digest, len(data), storage_bytes(dest)
