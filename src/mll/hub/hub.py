"""The hub facade: add, list, load, map and remove models.

``Hub.open(hub_dir)`` wires the metadata store (``<hub>/mll.db`` unless ``db`` or ``MLL_DB`` says
otherwise), the artifact store (``<hub>/artifacts``) and the feature cache (``<hub>/cache/features``).
Adding a model checks the upload (size, no pickle), packs it into one artifact, loads it back and
runs it on probe images, maps its head classes to graph nodes, and only then stores the artifact
and commits the row in one transaction; a failure at any step leaves nothing behind.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import IO, Any

import numpy as np

from .._io import sha256_file
from .._types import is_wnid
from ..classfile import read_class_file
from ..config import HubPaths, resolve_db, resolve_hub
from ..errors import (
    ArtifactIntegrityError,
    InvalidParameterError,
    MLLError,
    MLLWarning,
    NotBuiltError,
    UnknownNameError,
    first_line,
)
from .adapters import Adapter, Expert, Packed, families
from .adapters.base import PackContext, TextTowerMixin, read_config
from .artifacts import ArtifactStore
from .features import FeatureCache
from .records import Serving, serving
from .safety import DEFAULT_MAX_BYTES, check_upload, refuse_unsafe
from .spec import KINDS, HeadClass, ModelInfo
from .store import ClassRow, ModelRow, Store

logger = logging.getLogger(__name__)

ID_LENGTH = 12


def read_classes(path: str | Path) -> list[tuple[str, str | None]]:
    """A class file's ``(name, wnid or None)`` rows; the format is :mod:`mll.classfile`'s."""
    return read_class_file(path)


def _class_rows(classes: str | Path | Sequence[str] | None) -> list[tuple[str, str | None]] | None:
    if classes is None:
        return None
    if isinstance(classes, (str, Path)):
        return read_classes(classes)
    return [(c.partition("\t")[0].strip(), c.partition("\t")[2].strip() or None) for c in classes]


def _check_class_names(rows: list[tuple[str, str | None]]) -> None:
    names = [n for n, _ in rows]
    if not names or any(not n for n in names):
        raise InvalidParameterError("an expert needs a non-empty name for every class")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise InvalidParameterError(f"duplicate class names {dup}; every head class needs its own")
    bad = [w for _, w in rows if w is not None and not is_wnid(w)]
    if bad:
        raise InvalidParameterError(f"pinned nodes must be wnids like n02084071, got {bad}")


def probe_images() -> list[np.ndarray]:
    """A few fixed images in both shapes the hub uses (gray 28x28, RGB), to exercise a model."""
    rng = np.random.default_rng(0)
    checker = ((np.indices((64, 64)).sum(axis=0) // 8) % 2 * 255).astype(np.uint8)
    return [rng.integers(0, 256, (48, 48, 3), dtype=np.uint8),
            np.tile(np.linspace(0, 255, 28, dtype=np.uint8), (28, 1)),
            np.full((32, 40, 3), 255, dtype=np.uint8), np.stack([checker] * 3, axis=2)]


def check_outputs(adapter: Adapter, n_classes: int | None) -> float:
    """Run the model on the probe images; validate outputs; return its latency in ms per image.

    Latency is the best of three timed runs on the four probe images, after one warm-up run.
    """
    images = probe_images()
    run = adapter.predict_proba if isinstance(adapter, Expert) else adapter.encode_images
    try:
        first = run(images)
    except MLLError:
        raise
    except (RuntimeError, ValueError, TypeError, IndexError, ArithmeticError) as exc:
        # the model's own code or graph failing on ordinary images is a property of the upload
        raise InvalidParameterError(f"the model fails on {len(images)} probe images "
                                    f"({type(exc).__name__}: {first_line(exc)})") from None
    timings = []
    for _ in range(3):  # best of three: these machines are shared and timings jitter
        start = time.perf_counter()
        run(images)
        timings.append(time.perf_counter() - start)
    latency = 1000 * min(timings) / len(images)
    if isinstance(adapter, Expert):
        _check_expert_outputs(first, n_classes, len(images))
    else:
        _check_vlm_outputs(adapter, first, len(images))
    return round(latency, 3)


def _check_expert_outputs(probs: np.ndarray, n_classes: int | None, n_images: int) -> None:
    """One row of ``n_classes`` probabilities per image, or an error saying what came instead."""
    probs = np.asarray(probs)
    if probs.ndim != 2 or probs.shape[0] != n_images:
        raise InvalidParameterError(
            f"the model outputs shape {probs.shape} for {n_images} images; an expert must "
            f"output one row of {n_classes} class scores per image")
    if probs.shape[1] != n_classes:
        raise InvalidParameterError(
            f"the model outputs {probs.shape[1]} scores per image but {n_classes} classes were "
            "declared")
    if not np.all(np.isfinite(probs)) or not np.allclose(probs.sum(axis=1), 1, atol=1e-3):
        raise InvalidParameterError("the model's probabilities are not finite or do not sum to 1 "
                                    "(for an ONNX model ending in softmax pass outputs=probabilities)")


def _check_vlm_outputs(vlm, image_emb: np.ndarray, n_images: int) -> None:
    """One unit-length embedding per image, in the space of the text embeddings."""
    image_emb = np.asarray(image_emb)
    text_emb = np.asarray(vlm.encode_texts(["a photo of a dog", "a shoe"]))
    if image_emb.ndim != 2 or image_emb.shape[0] != n_images:
        raise InvalidParameterError(f"the model outputs shape {image_emb.shape} for {n_images} "
                                    "images; a VLM must output one embedding per image")
    if text_emb.ndim != 2 or text_emb.shape[0] != 2 or image_emb.shape[1] != text_emb.shape[1]:
        raise InvalidParameterError(f"image embeddings {image_emb.shape} and text embeddings "
                                    f"{text_emb.shape} do not share one space")
    for what, emb in (("image", image_emb), ("text", text_emb)):
        if not np.all(np.isfinite(emb)) or not np.allclose(np.linalg.norm(emb, axis=1), 1,
                                                           atol=1e-3):
            raise InvalidParameterError(f"{what} embeddings are not finite unit vectors")


_OWNER_LOCK = ".owner.lock"
_TMP_GRACE_SECONDS = 60  # an add takes its lock microseconds after creating its directory
_TMP_UNLOCKED_SECONDS = 3600  # directories without a lock (older mll) count as stale after this


def _sweep_tmp(tmp: Path) -> None:
    """Remove ``add-*`` directories left by adds that were killed; best effort, never raises.

    A directory is stale when its owner's lock can be taken (the owner is gone), or, lacking a
    lock file, when it is over an hour old. Directories younger than a minute are always left
    alone, so an add that has just created its directory is never swept. On a read-only hub
    nothing can be removed and nothing is tried beyond a failed lock or unlink.
    """
    try:
        candidates = [d for d in tmp.glob("add-*") if d.is_dir() and not d.is_symlink()]
    except OSError:
        return
    now = time.time()
    for d in candidates:
        try:
            age = now - d.stat().st_mtime
            if age < _TMP_GRACE_SECONDS:
                continue
            lock_path = d / _OWNER_LOCK
            if not lock_path.exists():
                if age > _TMP_UNLOCKED_SECONDS:
                    shutil.rmtree(d)
                continue
            with open(lock_path, "rb") as lock:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # BlockingIOError: owner alive
                shutil.rmtree(d)
                logger.info("removed %s, left by an add that did not finish", d)
        except OSError:  # owner alive, already removed by another sweeper, or read-only
            continue


def content_hash(digest: str, kind: str, family: str, config: dict[str, Any],
                 classes: Sequence[str]) -> str:
    """What identifies a model: its artifact, how it is rebuilt, and its head class names."""
    doc = {"artifact": digest, "kind": kind, "family": family, "config": config,
           "classes": list(classes)}
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()


def check_kind(kind: str | None) -> None:
    """Refuse a model kind other than None (any) or one of :data:`KINDS`."""
    if kind is not None and kind not in KINDS:
        raise InvalidParameterError(f"kind must be one of {KINDS}, got {kind!r}")


def family_of_kind(family: str, kind: str | None) -> type[Adapter]:
    """The adapter class of ``family``, refused when it does not hold models of ``kind``."""
    cls = families.get(family)
    if kind is not None and kind != cls.kind:
        raise InvalidParameterError(f"family {family!r} holds {cls.kind}s, not {kind}s")
    return cls


class Hub:
    """A model hub in one directory (plus a database URL)."""

    def __init__(self, root: Path, store: Store) -> None:
        self.root = root
        self.paths = HubPaths(root)
        self.store = store
        self.artifacts = ArtifactStore(self.paths.artifacts)

    @classmethod
    def open(cls, hub: str | Path | None = None, db: str | None = None, *,
             create: bool = True) -> Hub:
        """Open the hub; ``create=False`` (reading commands) refuses a hub that does not exist.

        A mistyped ``--hub`` must say so, not leave an empty hub behind.
        """
        root = resolve_hub(hub)
        url = resolve_db(db, root)
        default_db = url == f"sqlite:///{HubPaths(root).db_file}"
        if default_db and not create and not HubPaths(root).db_file.exists():
            raise NotBuiltError(f"no hub at {root} (no database {HubPaths(root).db_file}); build "
                                "one with 'mll starter --quick' or pass --hub")
        if default_db and create:
            root.mkdir(parents=True, exist_ok=True)
        opened = cls(root, Store(url, create=create))
        _sweep_tmp(opened.paths.root / "tmp")
        return opened

    def close(self) -> None:
        self.store.engine.dispose()

    def __enter__(self) -> Hub:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @cached_property
    def features(self) -> FeatureCache:
        """The hub's shared backbone-feature cache."""
        return FeatureCache(self.paths.cache / "features")

    # -- queries --------------------------------------------------------------------------------
    def list(self, kind: str | None = None, family: str | None = None) -> list[ModelInfo]:
        """Models in the order they were added, optionally of one kind or family."""
        check_kind(kind)
        return [m for m in self.store.infos() if kind in (None, m.kind)
                and family in (None, m.family)]

    def get(self, ref: str) -> ModelInfo:
        """A model by id, id prefix or unique name."""
        return self.store.get(self.store.resolve(ref))

    def serving(self, node: str, *, kind: str | None = None,
                limit: int | None = 20) -> list[Serving]:
        """The labelled models that serve ``node`` (a wnid), best measured accuracy first.

        One query on the candidate index the labels stage writes with each label, so it costs
        the same at 50 models and at 100,000. ``kind`` keeps experts or VLMs only; ``limit``
        None answers every model.
        """
        if not is_wnid(node):
            raise InvalidParameterError(f"node must be a WordNet id such as n02084071, got "
                                        f"{node!r}")
        if kind is not None and kind not in KINDS:
            raise InvalidParameterError(f"kind must be one of {KINDS}, got {kind!r}")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)
                                  or limit < 1):
            raise InvalidParameterError(f"limit must be a positive whole number or None, got "
                                        f"{limit!r}")
        with self.store.read() as session:
            return serving(session, node, kind=kind, limit=limit)

    def load(self, ref: str) -> Adapter:
        """Rebuild a model's adapter from its verified artifact."""
        info = self.get(ref)
        path = self.artifacts.get(info.artifact_digest)
        adapter = families.get(info.family).rebuild(path, info.config,
                                                     [c.name for c in info.classes], info.id,
                                                     info.wnids)
        if hasattr(adapter, "bind"):  # a synthetic expert runs its source model
            try:
                source = self.get(adapter.source_id)
            except UnknownNameError:
                raise NotBuiltError(f"model {info.id} is a synthetic copy of {adapter.source_id},"
                                    f" which is not in this hub") from None
            adapter.bind(self.load(source.id), source.content_hash)
        if isinstance(adapter, TextTowerMixin):
            from ..text import EmbeddingCache

            adapter.text_encoder = EmbeddingCache(self.paths.cache / "text.sqlite",
                                                  adapter.text_encoder)
        return adapter

    # -- add / remove ---------------------------------------------------------------------------
    def add(self, model: Any, *, kind: str | None = None, family: str | None = None,
            classes: str | Path | Sequence[str] | None = None, name: str | None = None,
            source: str | None = None, license: str | None = None, domain: str = "",
            options: Mapping[str, Any] | None = None,
            max_bytes: int = DEFAULT_MAX_BYTES) -> ModelInfo:
        """Validate, store and register a model; adding the same model again returns it.

        ``model`` is a path (file or directory), a family-specific name (``efficientnet-lite0``
        for the ``efficientnet-lite`` and ``conse`` families), a module of a registered
        architecture, or an object with ``family`` and ``save(path)`` (``mll.hub.train``'s
        results). ``classes`` is a class file or a list of names (``"name<TAB>wnid"`` pins a
        node); ``domain`` words help match class names to nodes.
        """
        family = self._family(model, family)
        cls = family_of_kind(family, kind)
        self.paths.root.mkdir(parents=True, exist_ok=True)
        workdir, owner = self._add_workdir()
        try:
            model = self._materialise(model, cls, workdir)
            if isinstance(model, Path):
                check_upload(model, max_bytes)
            rows = _class_rows(classes)  # a bad class file is refused before packing
            ctx = PackContext(workdir, self.paths.cache / "text.sqlite")
            packed = cls.pack(model, dict(options or {}), ctx)
            return self._register(cls, packed, rows, name=name, source=source,
                                  license=license, domain=domain)
        finally:
            owner.close()
            shutil.rmtree(workdir, ignore_errors=True)

    def remove(self, ref: str) -> ModelInfo:
        """Delete a model's row, and its artifact when no other model shares it."""
        info = self.get(ref)
        self.store.delete(info.id, on_orphan=self.artifacts.delete)
        return info

    # -- class -> node mapping ------------------------------------------------------------------
    def map(self, ref: str, *, assign: Mapping[str, str] | None = None,
            confirm: Iterable[str] = (), confirm_all: bool = False, rematch: bool = False,
            domain: str = "") -> ModelInfo:
        """Review an expert's class -> node mapping.

        ``assign`` sets nodes by hand (confirmed), ``confirm`` marks classes reviewed,
        ``rematch`` re-runs the matcher on unconfirmed classes, ``confirm_all`` confirms every
        mapped class. With no argument it only returns the current mapping.
        """
        info = self.get(ref)
        if info.kind != "expert":
            raise InvalidParameterError(f"{info.name} is a VLM; only experts have head classes")
        by_name = {c.name: c for c in info.classes}
        for cname in [*(assign or {}), *confirm]:
            if cname not in by_name:
                raise UnknownNameError("class", cname, by_name, hint=f"of model {info.id}")
        self._check_wnids(list((assign or {}).values()))
        if rematch:
            by_name.update(self._rematch(info, domain))
        for cname, wnid in (assign or {}).items():
            by_name[cname] = HeadClass(by_name[cname].index, cname, wnid, None, True)
        for cname in confirm:
            by_name[cname] = _confirmed(by_name[cname])
        if confirm_all:
            by_name = {n: _confirmed(c) if c.wnid else c for n, c in by_name.items()}
        self.store.update_classes(info.id, list(by_name.values()))
        return self.store.get(info.id)

    # -- internals ------------------------------------------------------------------------------
    def _tmp(self) -> Path:
        tmp = self.paths.root / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        return tmp

    def _add_workdir(self) -> tuple[Path, IO[str]]:
        """A private directory for one ``add`` and its owner lock; close the lock, then remove it.

        The lock (``flock`` on ``.owner.lock`` inside it) is released by the kernel however the
        process ends, so :func:`_sweep_tmp` can tell a killed add's leftovers from a running one.
        """
        workdir = Path(tempfile.mkdtemp(prefix="add-", dir=self._tmp()))
        owner = open(workdir / _OWNER_LOCK, "w")  # held for the whole add, closed by add
        fcntl.flock(owner, fcntl.LOCK_EX)
        return workdir, owner

    @staticmethod
    def _family(model: Any, family: str | None) -> str:
        if family:
            families.get(family)
            return family
        inferred = getattr(model, "family", None) if hasattr(model, "save") else None
        if inferred is None and hasattr(model, "mll_arch"):
            inferred = "torch-safetensors"
        if inferred is None and isinstance(model, (str, Path)):
            inferred = _family_of_path(Path(model))
        if inferred is None:
            raise InvalidParameterError(
                f"cannot tell the family of {model!r}; pass family= one of {families.list()}")
        return inferred

    @staticmethod
    def _materialise(model: Any, cls: type[Adapter], workdir: Path) -> Any:
        """Trained-model objects are saved to a bundle first; paths become ``Path``."""
        if hasattr(model, "save") and hasattr(model, "family"):
            return Path(model.save(workdir / "upload.safetensors"))
        if isinstance(model, (str, Path)) and not cls.NAMED:
            return Path(model).expanduser()
        return model

    def _register(self, cls: type[Adapter], packed: Packed,
                  declared: list[tuple[str, str | None]] | None, *, name: str | None,
                  source: str | None, license: str | None, domain: str) -> ModelInfo:
        rows = self._resolve_classes(cls, packed, declared)
        names = [n for n, _ in rows]
        packed_digest = sha256_file(packed.path)
        chash = content_hash(packed_digest, cls.kind, cls.family, packed.config, names)
        if (existing := self.store.find_hash(chash)) is not None:
            logger.info("model already in the hub as %s", existing)
            return self.store.get(existing)
        adapter = cls.from_artifact(packed.path, packed.config, names)
        latency = check_outputs(adapter, len(names) if cls.kind == "expert" else None)
        head = self._map_new(rows, domain) if rows else []
        digest = self.artifacts.put_file(packed.path)
        if digest != packed_digest:
            raise ArtifactIntegrityError(f"{packed.path} changed while it was being added")
        row = _model_row(chash, cls, packed, adapter, latency, digest,
                         self.artifacts.size(digest), name=name, source=source, license=license)
        row.classes = [ClassRow(idx=c.index, name=c.name, wnid=c.wnid, score=c.score,
                                confirmed=c.confirmed) for c in head]
        try:
            inserted = self.store.insert(row, before_commit=lambda: self.artifacts.ensure(
                digest, packed.path))
        except BaseException:
            if not self.store.referenced(digest):
                self.artifacts.delete(digest)
            raise
        model_id = row.id if inserted else self.store.find_hash(chash)
        return self.store.get(model_id)

    @staticmethod
    def _resolve_classes(cls: type[Adapter], packed: Packed,
                         declared: list[tuple[str, str | None]] | None
                         ) -> list[tuple[str, str | None]]:
        if cls.kind == "vlm":
            if declared:
                raise InvalidParameterError("VLMs have no head classes; drop --classes")
            return []
        if declared is None:
            if packed.classes is None:
                raise InvalidParameterError("an expert needs its class names: pass classes= "
                                            "(a file with one class per line)")
            wnids = packed.wnids or (None,) * len(packed.classes)
            declared = list(zip(packed.classes, wnids, strict=True))
        elif packed.classes is not None and len(packed.classes) != len(declared):
            raise InvalidParameterError(f"{len(declared)} classes given but the model file names "
                                        f"{len(packed.classes)}")
        _check_class_names(declared)
        return declared

    def _graph_ready(self) -> bool:
        return (self.paths.graph / "current.json").is_file()

    def _matcher(self):
        from ..graph import Matcher

        return Matcher.for_hub(self.root)

    def _graph(self):
        """The hub's semantic graph, or None before 'mll graph build'."""
        if not self._graph_ready():
            return None
        from ..graph import open_graph

        return open_graph(self.root, build=False)

    def _check_wnids(self, wnids: list[str]) -> None:
        bad = [w for w in wnids if not is_wnid(w)]
        if bad:
            raise InvalidParameterError(f"nodes must be wnids like n02084071, got {bad}")
        graph = self._graph() if wnids else None
        unknown = [w for w in wnids if graph is not None and w not in graph]
        if unknown:
            raise InvalidParameterError(f"{unknown} are not nodes of the hub's graph")

    def _map_new(self, rows: list[tuple[str, str | None]], domain: str) -> list[HeadClass]:
        """Pinned nodes are confirmed; the rest are matched by text when the hub has a graph."""
        self._check_wnids([w for _, w in rows if w is not None])
        head = [HeadClass(i, n, w, 1.0 if w else None, w is not None)
                for i, (n, w) in enumerate(rows)]
        todo = [c for c in head if c.wnid is None]
        if not todo:
            return head
        if not self._graph_ready():
            warnings.warn(f"{len(todo)} classes left unmapped: the hub has no graph yet; run "
                          "'mll graph build' and then 'mll hub map ID --rematch'", MLLWarning,
                          stacklevel=4)
            return head
        matched = self._match(todo, [c.name for c in head if c.wnid is not None], domain)
        return [matched.get(c.index, c) for c in head]

    def _match(self, todo: list[HeadClass], context: list[str],
               domain: str) -> dict[int, HeadClass]:
        """Best node per class; a name that matches no concept stays unmapped (a wrong node would
        be evidence for the wrong class), and both those and low-confidence matches are reported."""
        from ..graph.match import match_status

        ranked = self._matcher().match([c.name for c in todo], context=context, domain=domain,
                                       top=1)
        out, none, uncertain = {}, [], []
        for c, cands in zip(todo, ranked, strict=True):
            best = cands[0] if cands else None
            status = match_status(best)
            guess = f"{best.name} {best.score:.2f}" if best else "no candidate"
            if status == "none":
                none.append(f"{c.name!r} ({guess})")
            elif status == "uncertain":
                uncertain.append(f"{c.name!r} -> {guess}")
            out[c.index] = HeadClass(c.index, c.name, best.wnid if status != "none" else None,
                                     float(best.score) if best else None, False)
        if none or uncertain:
            parts = ([f"{len(none)} class(es) match no concept and stay unmapped: "
                      + _first(none)] if none else [])
            parts += ([f"{len(uncertain)} class(es) matched with low confidence: "
                       + _first(uncertain)] if uncertain else [])
            warnings.warn("; ".join(parts) + "; review them with 'mll hub map ID --unconfirmed' "
                          "and set nodes with --set CLASS=WNID", MLLWarning, stacklevel=4)
        return out

    def _rematch(self, info: ModelInfo, domain: str) -> dict[str, HeadClass]:
        if not self._graph_ready():
            raise InvalidParameterError("the hub has no graph to match against; run "
                                        "'mll graph build' first")
        todo = [c for c in info.classes if not c.confirmed]
        if not todo:
            return {}
        context = [c.name for c in info.classes if c.confirmed]
        return {c.name: c for c in self._match(todo, context, domain).values()}


def _first(items: list[str], n: int = 8) -> str:
    """The first ``n`` items, joined, and how many more there are."""
    return ", ".join(items[:n]) + (f" and {len(items) - n} more" if len(items) > n else "")


def _family_of_path(path: Path) -> str | None:
    """The family a file or a saved directory evidently belongs to, if any.

    Files that need pickle are refused here already, so the message names the safe formats.
    """
    if path.is_dir() and (path / "config.json").is_file():
        config = read_config(path / "config.json")
        # the first family (by name) whose Adapter.claims_directory accepts the config
        return next((n for n in families if families.get(n).claims_directory(config)), None)
    if path.is_file():
        refuse_unsafe(path)
    if path.suffix.lower() == ".safetensors" and path.is_file():
        from .adapters._bundle import bundle_info, read_meta

        if family := bundle_info(read_meta(path), path.name)["family"]:
            return family  # a bundle names its own family
    # else the first family (by name) that declares the suffix in Adapter.SUFFIXES
    return next((n for n in families if path.suffix.lower() in families.get(n).SUFFIXES), None)


def _confirmed(c: HeadClass) -> HeadClass:
    return HeadClass(c.index, c.name, c.wnid, c.score, True)


def _model_row(chash: str, cls: type[Adapter], packed: Packed, adapter: Adapter,
               latency: float, digest: str, size: int, *, name: str | None, source: str | None,
               license: str | None) -> ModelRow:
    spec = adapter.input_spec
    return ModelRow(
        id=chash[:ID_LENGTH], content_hash=chash, name=name or packed.name, kind=cls.kind,
        family=cls.family, source=source if source is not None else packed.source,
        license=license if license is not None else packed.license,
        n_params=int(adapter.n_params), latency_ms=latency, input_size=spec.size,
        input_channels=spec.channels, input_mean=list(spec.mean), input_std=list(spec.std),
        backbone=adapter.backbone, artifact_digest=digest, artifact_bytes=size,
        config=packed.config, metrics=packed.metrics, created_at=datetime.now(UTC))
