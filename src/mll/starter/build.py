"""Build the starter hub: graph, corpus, pretrained models, trained experts and VLMs, labels.

Each phase looks at what the hub already holds and does only what is missing: a model is trained
only when the hub has no model of its planned name made by the current recipe, and it is added as
soon as it is trained, so an interrupted build resumes with the next model. Backbone features come from the hub's feature
cache, so the train images run through Lite0 once for all heads and LiT models, and labelling
reuses the same cache for the sample images. The node captions that matching needs are embedded
in a background thread meanwhile, on whatever CPU the phases leave idle (one-thread training,
waiting on files), so the first ``mll demo`` does not wait for them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .._io import StepTimer, progress
from ..config import resolve_hub
from ..errors import NotBuiltError, StoreError
from .plan import (
    BACKBONE,
    GrayExpert,
    HeadExpert,
    LitVLM,
    Pretrained,
    StarterPlan,
    recipe_digest,
    starter_plan,
)

logger = logging.getLogger(__name__)

GRAY_STYLE = "gray28/"
SPEC_KEY = "starter_spec"  # in a trained model's metrics: its recipe digest
HOLDOUT_STYLE = "emoji/twemoji"  # a design of its own (iconify-noto and the Noto font share one)


@dataclass
class ModelEntry:
    """One planned model as the hub holds it after the build."""

    id: str
    name: str
    kind: str
    family: str
    classes: int
    heldout_accuracy: float | None
    added: bool
    seconds: float = 0.0


@dataclass
class StarterReport:
    """What a starter build found, added and how long each phase took (``--json`` prints it)."""

    hub: str
    mode: str
    models: list[ModelEntry] = field(default_factory=list)
    left_out: dict[str, str] = field(default_factory=dict)  # planned name -> why
    replaced: list[str] = field(default_factory=list)  # stale trained models rebuilt
    phases: dict[str, float] = field(default_factory=dict)  # wall-clock seconds
    cpu_seconds: dict[str, float] = field(default_factory=dict)  # this process and its children
    background: dict[str, float] = field(default_factory=dict)  # wall seconds beside the phases
    labels: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def added(self) -> list[ModelEntry]:
        return [m for m in self.models if m.added]

    def count(self, kind: str, family: str | None = None) -> int:
        return sum(m.kind == kind and family in (None, m.family) for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        doc = asdict(self)
        doc["counts"] = {"experts": self.count("expert"), "vlms": self.count("vlm"),
                         "efficientnet_lite": self.count("expert", "efficientnet-lite"),
                         "added": len(self.added)}
        return doc


def build_starter(hub_dir: str | Path | None = None, quick: bool = False, *,
                  show_progress: bool | None = None) -> StarterReport:
    """Build (or complete) the starter hub in ``hub_dir``; a finished hub is left as it is."""
    from ..graph import open_graph
    from ..hub import Hub
    from ..labels import label_hub

    root = resolve_hub(hub_dir)
    plan = starter_plan(quick)
    timer = StepTimer("starter")
    report = StarterReport(hub=str(root), mode=plan.mode, phases=timer.seconds,
                           cpu_seconds=timer.cpu_seconds)
    start = time.perf_counter()
    with _phase(timer, "graph"):
        graph = open_graph(root, build=True)
    captions = _CaptionJob(root)
    with Hub.open(root) as hub:
        with _phase(timer, "corpus"):
            corpus = _ensure_corpus(root, plan, has_models=bool(hub.list()))
        builder = _Builder(hub, corpus, graph, plan, report)
        cores = os.cpu_count() or 1
        for name, step, threads in (("pretrained", builder.add_pretrained, cores),
                                    ("gray experts", builder.add_gray, 1),
                                    ("train features", builder.compute_features, cores),
                                    ("heads", builder.add_heads, 1),
                                    ("lit", builder.add_lits, 1)):
            with _phase(timer, name, threads):
                step()
    with _phase(timer, "labels"):
        labelled = label_hub(root, show_progress=show_progress)
    with _phase(timer, "caption embeddings (rest)"):
        report.background["caption embeddings"] = captions.wait()
    if not quick:  # the shipped calibration was fitted on the quick starter hub itself
        from ..bench.calibrate import calibrate_hub, calibrated

        if not calibrated(root):
            with _phase(timer, "calibration"):
                calibrate_hub(root)
    report.labels = {"models_labelled": len(labelled.models_labelled),
                     "models_up_to_date": len(labelled.models_up_to_date),
                     "sample_images": labelled.images,
                     "outputs_computed": labelled.outputs_computed}
    report.seconds = round(time.perf_counter() - start, 2)
    return report


class _CaptionJob:
    """The matcher's caption embeddings, computed in a background thread during the build.

    The first ``mll demo`` or ``mll select`` would otherwise wait for them. Everything is stored
    in the hub's text cache as it goes, so an interrupted build keeps what was embedded.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._thread = threading.Thread(target=self._run, name="mll-captions", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from ..graph import Matcher

        start = time.perf_counter()
        try:
            Matcher.for_hub(self.root)
        except BaseException as exc:  # re-raised in the main thread by wait()
            self.error = exc
        self.seconds = round(time.perf_counter() - start, 2)

    def wait(self) -> float:
        """Block until done; the job's own wall seconds (an error it met is raised here)."""
        self._thread.join()
        if self.error is not None:
            raise self.error
        return self.seconds


@contextmanager
def _phase(timer: StepTimer, name: str, threads: int | None = None) -> Iterator[None]:
    """Time a phase (wall and CPU seconds, announced on stderr) with the report's timer.

    Training the small models runs on one torch thread: their operations are too small to
    split (measured: a second thread gave no speed-up, only more CPU time).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads or before)
    logger.info("starter: %s", name)
    try:
        with timer.step(name):
            yield
    finally:
        torch.set_num_threads(before)


def _ensure_corpus(root: Path, plan: StarterPlan, has_models: bool):
    """The plan's corpus, built or brought up to date when its configuration differs.

    Switching a hub between the quick and the full corpus under trained models is refused: the
    models of one plan would stay, trained and labelled on data the other plan does not have.
    """
    from ..corpus import Corpus, build

    try:
        current = Corpus.open(root)
    except NotBuiltError:
        current = None
    config = current.meta.get("config", {}) if current is not None else {}
    if current is not None and config == plan.corpus.to_json():
        return current
    if current is not None and has_models and bool(config.get("quick")) != plan.corpus.quick:
        other = "quick" if config.get("quick") else "full"
        raise StoreError(f"{root} already holds models on a {other} corpus; build the {plan.mode} "
                       "starter hub in another --hub directory")
    build(root, plan.corpus)
    return Corpus.open(root)


class _Builder:
    """The model phases of one build, sharing the hub, the corpus and the graph."""

    def __init__(self, hub, corpus, graph, plan: StarterPlan, report: StarterReport) -> None:
        self.hub, self.corpus, self.graph, self.plan, self.report = hub, corpus, graph, plan, report
        self.existing = {m.name: m for m in hub.list()}
        self.features: dict[str, np.ndarray] = {}
        self._gray_cache: dict[str, tuple[list, np.ndarray]] = {}

    # -- bookkeeping ----------------------------------------------------------------------------
    def _current(self, spec: Pretrained | GrayExpert | HeadExpert | LitVLM) -> bool:
        """The hub has this model, trained by the current recipe."""
        info = self.existing.get(spec.name)
        return info is not None and (isinstance(spec, Pretrained) or info.metrics.get(SPEC_KEY)
                                     == recipe_digest(spec, self.plan))

    def _done(self, spec: Pretrained | GrayExpert | HeadExpert | LitVLM) -> bool:
        """True (and reported) when the hub has this model; a stale trained copy is removed."""
        if self._current(spec):
            self._record(self.existing[spec.name], added=False, seconds=0.0)
            return True
        if spec.name in self.existing:
            self.hub.remove(self.existing.pop(spec.name).id)
            self.report.replaced.append(spec.name)
        return False

    def _add(self, model: Any, spec, start: float, **kwargs: Any) -> None:
        if not isinstance(spec, Pretrained):
            model.metrics[SPEC_KEY] = recipe_digest(spec, self.plan)
        info = self.hub.add(model, name=spec.name, **kwargs)
        self.existing[spec.name] = info
        self._record(info, added=True, seconds=time.perf_counter() - start)

    def _record(self, info, added: bool, seconds: float) -> None:
        self.report.models.append(ModelEntry(
            id=info.id, name=info.name, kind=info.kind, family=info.family,
            classes=len(info.classes), heldout_accuracy=info.metrics.get("heldout_accuracy"),
            added=added, seconds=round(seconds, 2)))

    def _source(self, what: str) -> str:
        return f"mll starter ({self.plan.mode}): {what}, corpus {self.corpus.version[:12]} train role"

    # -- pretrained -----------------------------------------------------------------------------
    def add_pretrained(self) -> None:
        for spec in progress(self.plan.pretrained, "pretrained models"):
            if not self._done(spec):
                self._add(spec.variant, spec, time.perf_counter(), family=spec.family)

    # -- 28x28 gray CNNs ------------------------------------------------------------------------
    def add_gray(self) -> None:
        from ..hub.train import train_cnn

        for spec in progress(self.plan.gray, "gray experts"):
            if self._done(spec):
                continue
            start = time.perf_counter()
            images, labels, classes, license = self._gray_data(spec)
            trained = train_cnn(images, labels, [n for n, _ in classes], epochs=spec.epochs,
                                data_fraction=spec.data_fraction, batch_size=spec.batch_size,
                                name=spec.name)
            self._add(trained, spec, start, classes=[f"{n}\t{w}" for n, w in classes],
                      source=self._source(spec.source), license=license)

    def _gray_data(self, spec: GrayExpert) -> tuple[np.ndarray, np.ndarray,
                                                   list[tuple[str, str]], str]:
        """The spec's train images, labels, (class name, wnid) pairs and data license."""
        from ..corpus.mappings import load_mapping

        by_name = {row.extra[0]: row.wnid for row in load_mapping(spec.source).values()}
        classes = [(n, by_name[n]) for n in (spec.classes or tuple(by_name))]
        index = {w: i for i, (_, w) in enumerate(classes)}
        records, images = self._gray_source(spec.source)
        keep = [i for i, r in enumerate(records) if r.wnid in index]
        labels = np.array([index[records[i].wnid] for i in keep], dtype=np.int64)
        return images[keep], labels, classes, records[0].license

    def _gray_source(self, source: str) -> tuple[list, np.ndarray]:
        """All train records and pixels of one gray source, loaded once per build."""
        if source not in self._gray_cache:
            records = self.corpus.records(role="train", source=source)
            pixels = np.stack(self.corpus.load([r.image_id for r in records]))
            self._gray_cache[source] = (records, pixels)
        return self._gray_cache[source]

    # -- concepts, features ---------------------------------------------------------------------
    @cached_property
    def concept_images(self) -> dict[str, list[str]]:
        """Train image ids per icon/photo concept, at most ``images_per_concept`` of each.

        Ids are content hashes, so taking them in sorted order is a fixed pseudo-random choice
        that mixes styles and variants.
        """
        out: dict[str, list[str]] = {}
        for r in self.corpus.records(role="train"):
            if not r.style.startswith(GRAY_STYLE):
                out.setdefault(r.wnid, []).append(r.image_id)
        cap = self.plan.images_per_concept
        return {w: sorted(ids)[:cap] for w, ids in sorted(out.items())}

    def _below(self, roots: tuple[str, ...]) -> list[str]:
        """Train concepts in the subtrees of ``roots`` (synset names), sorted."""
        nodes: set[str] = set()
        for root in roots:
            nodes |= self.graph.descendants(self.graph.resolve(root), include_self=True)
        return sorted(w for w in self.concept_images if w in nodes)

    def head_classes(self, spec: HeadExpert) -> list[str]:
        """Concepts below the roots with at least two train images.

        Inner concepts stay next to their descendants (``dog`` beside ``poodle``): each is its
        own picture, as in the sources, and dropping them would lose the most common classes.
        """
        return [w for w in self._below(spec.roots) if len(self.concept_images[w]) >= 2]

    def _gray_extra(self, spec: LitVLM) -> list[tuple[str, str]]:
        """(image id, wnid) of up to ``gray_per_class`` gray train images per class."""
        out = []
        for source in spec.gray_sources:
            per_class: dict[str, list[str]] = {}
            for r in self.corpus.records(role="train", source=source):
                per_class.setdefault(r.wnid, []).append(r.image_id)
            out += [(i, w) for w, ids in sorted(per_class.items())
                    for i in sorted(ids)[: spec.gray_per_class]]
        return out

    def _lit_pairs(self, spec: LitVLM) -> list[tuple[str, str]]:
        pairs = [(i, w) for w in self._below(spec.roots) for i in self.concept_images[w]]
        return pairs + self._gray_extra(spec)

    def compute_features(self) -> None:
        """Lite0 features of every train image a missing head or LiT needs, in one pass."""
        ids: list[str] = []
        for spec in self.plan.heads:
            if not self._current(spec):
                ids += [i for w in self.head_classes(spec) for i in self.concept_images[w]]
        for lit in self.plan.lits:
            if not self._current(lit):
                ids += [i for i, _ in self._lit_pairs(lit)]
        ids = list(dict.fromkeys(ids))
        if ids:
            feats = self.hub.features.get(BACKBONE, keys=ids, load=self.corpus.load)
            self.features = dict(zip(ids, feats, strict=True))

    def _feats(self, ids: list[str]) -> np.ndarray:
        return np.stack([self.features[i] for i in ids])

    # -- heads and LiT --------------------------------------------------------------------------
    def class_names(self, wnids: list[str]) -> list[str]:
        """Node names, with the synset name where two classes would share one."""
        names = [self.graph.name(w) for w in wnids]
        return [self.graph.synset_name(w) if names.count(n) > 1 else n
                for w, n in zip(wnids, names, strict=True)]

    def add_heads(self) -> None:
        for spec in progress(self.plan.heads, "heads"):
            if self._done(spec):
                continue
            wnids = self.head_classes(spec)
            if len(wnids) < self.plan.min_classes:
                self.report.left_out[spec.name] = (f"{len(wnids)} concepts with train images "
                                                   f"below {', '.join(spec.roots)}")
                continue
            start = time.perf_counter()
            ids, labels = zip(*[(i, k) for k, w in enumerate(wnids)
                                for i in self.concept_images[w]], strict=True)
            names = self.class_names(wnids)
            feats, y = self._feats(list(ids)), np.array(labels)
            trained = self._fit_head(spec, feats, y, names)
            trained.metrics |= self._cross_style(spec, feats, y, names, ids)
            self._add(trained, spec, start,
                      classes=[f"{n}\t{w}" for n, w in zip(names, wnids, strict=True)],
                      source=self._source(f"{len(wnids)} concepts"), license=self._licenses(ids))

    @staticmethod
    def _fit_head(spec: HeadExpert, feats: np.ndarray, labels: np.ndarray, names: list[str]):
        from ..hub.train import train_head

        return train_head(feats, labels, names, backbone=BACKBONE, head=spec.head,
                          epochs=spec.epochs, data_fraction=spec.data_fraction, holdout=0.0,
                          name=spec.name)

    def _cross_style(self, spec: HeadExpert, feats: np.ndarray, labels: np.ndarray,
                     names: list[str], ids: tuple[str, ...]) -> dict[str, Any]:
        """Held-out accuracy on a design the estimate never saw.

        A random split of icon images would hold out re-renderings (sizes, flips, backgrounds)
        of pictures in the training set. So a copy of the head is fitted without one emoji style
        and tested on it; the head added to the hub is fitted on every style, so the figure is a
        conservative estimate of it.
        """
        held = np.array([self._train_records[i].style == HOLDOUT_STYLE for i in ids])
        if held.all() or not held.any():
            return {"heldout_accuracy": None, "n_heldout": 0}
        estimate = self._fit_head(spec, feats[~held], labels[~held], names)
        hits = estimate.predict_proba(feats[held]).argmax(1) == labels[held]
        return {"heldout_accuracy": round(float(hits.mean()), 4), "n_heldout": int(held.sum()),
                "heldout_style": HOLDOUT_STYLE}

    def add_lits(self) -> None:
        from ..hub.train import train_lit

        for spec in progress(self.plan.lits, "LiT models"):
            if self._done(spec):
                continue
            start = time.perf_counter()
            ids, wnids = zip(*self._lit_pairs(spec), strict=True)
            trained = train_lit(self._feats(list(ids)), [self.graph.caption(w) for w in wnids],
                                backbone=BACKBONE, epochs=spec.epochs, name=spec.name,
                                trained_on=self._source(f"{len(set(wnids))} concepts"))
            self._add(trained, spec, start, license=self._licenses(ids))

    @cached_property
    def _train_records(self) -> dict[str, Any]:
        return {r.image_id: r for r in self.corpus.records(role="train")}

    def _licenses(self, ids: tuple[str, ...]) -> str:
        """The licenses of the training images, which a derived model inherits."""
        return ", ".join(sorted({self._train_records[i].license for i in ids}))
