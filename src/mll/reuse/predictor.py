"""One predictor for a task: runs each chosen model once per batch and combines per the plan.

A saved predictor is a single zip holding the plan, its arrays and every model artifact it needs,
so ``load_predictor(path)`` works in any Python process with mll installed: no hub, no database.
Nothing in it is pickled: JSON, ``.npz`` without object arrays, and the models' own safe formats.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
import tempfile
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from .._io import atomic_path
from .._safepath import child_path, create_new
from ..errors import (
    ArtifactIntegrityError,
    InvalidParameterError,
    MissingDependencyError,
    MLLError,
)
from ..limits import Limits, check, current
from ..selection.plan import Component, Plan, combine

logger = logging.getLogger(__name__)

FORMAT = "mll-predictor/1"
_ARRAY_FIELDS = ("head_map", "text_emb", "prototypes")


class TaskPredictor:
    """``predict(images)`` -> class indices; ``predict_proba(images)`` -> (N, K)."""

    def __init__(self, classes: Sequence[str], plan: Plan, adapters: dict[str, object],
                 meta: dict | None = None) -> None:
        self.classes = list(classes)
        self.plan = plan
        self.adapters = adapters
        self.meta = meta or {}
        missing = [c.source for c in plan.components
                   if c.kind != "proto" and c.source not in adapters]
        if missing:
            raise InvalidParameterError(f"predictor is missing models {missing}")

    @classmethod
    def from_selection(cls, selection, hub) -> TaskPredictor:
        adapters = {s: hub.load(s) for s in selection.plan.sources()
                    if any(c.source == s and c.kind != "proto" for c in selection.plan.components)}
        meta = {"method": selection.method, "predicted_accuracy": selection.predicted_accuracy,
                "domain": selection.task.domain,
                "models": {s: _model_meta(hub.get(s)) for s in adapters}}
        return cls(selection.task.classes, selection.plan, adapters, meta)

    # -- inference ------------------------------------------------------------------------------
    def outputs(self, images: Sequence[np.ndarray], batch_size: int = 32) -> dict[str, np.ndarray]:
        """Each source's raw output; models on one backbone share a single forward pass."""
        from ..hub.backbones import get_backbone
        from ..hub.features import model_outputs

        feats: dict[str, np.ndarray] = {}

        def features(backbone: str) -> np.ndarray:
            if backbone not in feats:
                feats[backbone] = get_backbone(backbone).features(list(images), batch_size)
            return feats[backbone]

        out: dict[str, np.ndarray] = {}
        for comp in self.plan.components:
            if comp.source in out:
                continue
            out[comp.source] = (features(comp.source) if comp.kind == "proto" else model_outputs(
                self.adapters[comp.source], features, lambda: images, batch_size))
        return out

    def proba_from_outputs(self, outputs: dict[str, np.ndarray]) -> np.ndarray:
        return combine(self.plan, [c.proba(outputs[c.source]) for c in self.plan.components])

    def predict_proba(self, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        images = list(images)
        if not images:
            return np.zeros((0, len(self.classes)), dtype=np.float32)
        return self.proba_from_outputs(self.outputs(images, batch_size))

    def predict(self, images: Sequence[np.ndarray], batch_size: int = 32) -> np.ndarray:
        return self.predict_proba(images, batch_size).argmax(axis=1)

    # -- persistence ----------------------------------------------------------------------------
    def save(self, path: str | Path, hub) -> Path:
        """Write one zip with the plan, its arrays and the model artifacts (weights embedded)."""
        path = Path(path)
        comps, arrays = [], {}
        for i, c in enumerate(self.plan.components):
            d = {k: v for k, v in asdict(c).items() if k not in _ARRAY_FIELDS}
            for f in _ARRAY_FIELDS:
                if getattr(c, f) is not None:
                    arrays[f"{i}.{f}"] = np.asarray(getattr(c, f))
            comps.append(d)
        manifest = {"format": FORMAT, "classes": self.classes, "rule": self.plan.rule,
                    "components": comps, "meta": self.meta}
        with atomic_path(path) as tmp:
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.writestr("manifest.json", json.dumps(manifest, indent=1))
                with tempfile.TemporaryFile() as buf:
                    np.savez(buf, **arrays)
                    buf.seek(0)
                    zf.writestr("arrays.npz", buf.read())
                for mid in self.adapters:
                    info = hub.get(mid)
                    zf.write(hub.artifacts.get(info.artifact_digest), f"models/{mid}")
        return path


def _model_meta(info) -> dict:
    return {"family": info.family, "config": info.config, "name": info.name,
            "classes": [c.name for c in info.classes], "wnids": list(info.wnids),
            "content_hash": info.content_hash}


def load_predictor(path: str | Path, workdir: str | Path | None = None,
                   limits: Limits | None = None) -> TaskPredictor:
    """Rebuild a saved predictor, treating the file as hostile until it has been validated.

    The manifest is checked completely (types, class counts, model ids, families, components)
    before anything is written; then each member is streamed, never trusted for its declared
    size, into a private directory under ``workdir`` (the system temp dir by default), checked
    against the model's content hash and loaded. Every family reads its artifact eagerly, so that
    directory is gone again when this returns, whether loading worked or not.
    """
    path = Path(path)
    lim = limits or current()
    if not path.is_file():
        raise InvalidParameterError(f"{path} does not exist or is not a file")
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as exc:
        raise InvalidParameterError(f"{path} is not a saved mll predictor (expected a zip: "
                                    f"{exc})") from None
    with zf:
        try:
            manifest = _validated_manifest(_read_json(zf, path, lim), path, lim)
            with _unpack_dir(workdir) as work:
                arrays = _read_arrays(zf, path, work, len(manifest["components"]), lim)
                adapters = {mid: _load_model(zf, path, work, mid, meta, lim)
                            for mid, meta in manifest["meta"]["models"].items()}
        except MLLError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError,
                OSError, ValueError) as exc:  # damaged (offsets past the end), encrypted, exotic
            raise InvalidParameterError(f"{path} is damaged: {exc}") from None
    comps = _components(manifest, arrays, adapters, path)
    plan = Plan(comps, manifest["rule"], len(manifest["classes"]))
    return TaskPredictor(manifest["classes"], plan, adapters, manifest["meta"])


# -- loading, every step bounded ---------------------------------------------------------------
_MODEL_ID = re.compile(r"[0-9a-f]{12}")  # the hub's ids: the first 12 hex digits of content_hash
_CONTENT_HASH = re.compile(r"[0-9a-f]{64}")
_RULES = ("gated", "entropy", "mean")
_KINDS = ("expert", "vlm", "proto")
_ROLES = ("general", "expert")
_COMPONENT_KEYS = {"kind", "source", "weight", "role", "classes", "scale"}
_RATIO_FLOOR = 1 << 20  # members smaller than this are not ratio-checked (see Limits)
_CHUNK = 1 << 20


@contextmanager
def _unpack_dir(workdir: str | Path | None) -> Iterator[Path]:
    """A fresh private directory (inside ``workdir`` if given), removed on leaving."""
    if workdir is not None and not Path(workdir).is_dir():
        raise InvalidParameterError(f"workdir {workdir} is not a directory")
    with tempfile.TemporaryDirectory(prefix="mll-predictor-", dir=workdir) as tmp:
        yield Path(tmp)


def _member(zf: zipfile.ZipFile, name: str, path: Path) -> zipfile.ZipInfo:
    try:
        return zf.getinfo(name)
    except KeyError:
        raise InvalidParameterError(f"{path} has no {name}; it is not a complete saved "
                                    "predictor") from None


def _stream(zf: zipfile.ZipFile, info: zipfile.ZipInfo, out: BinaryIO, path: Path,
            limit_name: str, lim: Limits) -> str:
    """Copy one member to ``out`` in chunks; return its sha256.

    Sizes and the compression ratio are checked from the zip directory first, then again on the
    bytes actually inflated, so a member that lies about its size is stopped at the limit.
    """
    what = f"{path.name}: member {info.filename}"
    _check_declared(info, what, limit_name, lim)
    digest, n = hashlib.sha256(), 0
    with zf.open(info) as src:
        while block := src.read(_CHUNK):
            n += len(block)
            check(f"{what}: unpacked size", n, limit_name, lim)
            if n > _RATIO_FLOOR:
                check(f"{what}: compression ratio", n / max(info.compress_size, 1),
                      "max_zip_ratio", lim)
            digest.update(block)
            out.write(block)
    return digest.hexdigest()


def _check_declared(info: zipfile.ZipInfo, what: str, limit_name: str, lim: Limits) -> None:
    """Refuse a member from the zip directory alone: its declared size, then its ratio."""
    check(f"{what}: declared size", info.file_size, limit_name, lim)
    if info.file_size > _RATIO_FLOOR:
        check(f"{what}: compression ratio", info.file_size / max(info.compress_size, 1),
              "max_zip_ratio", lim)


def _read_json(zf: zipfile.ZipFile, path: Path, lim: Limits) -> Any:
    buf = io.BytesIO()
    _stream(zf, _member(zf, "manifest.json", path), buf, path, "max_metadata_bytes", lim)
    try:
        return json.loads(buf.getvalue().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise InvalidParameterError(f"{path}: manifest.json is not valid JSON ({exc})") from None


def _validated_manifest(doc: Any, path: Path, lim: Limits) -> dict:
    """The manifest, after checking every field a loader will use; nothing is written before."""
    from ..hub.adapters import families
    from ..hub.backbones import backbones

    def bad(msg: str) -> InvalidParameterError:
        return InvalidParameterError(f"{path}: {msg}; the file is damaged or was not written by "
                                     "TaskPredictor.save")

    if not isinstance(doc, dict):
        raise bad("manifest.json is not a JSON object")
    if doc.get("format") != FORMAT:
        raise InvalidParameterError(f"{path}: unknown predictor format {doc.get('format')!r} "
                                    f"(this mll reads {FORMAT})")
    classes = doc.get("classes")
    if not _is_str_list(classes) or not classes:
        raise bad("'classes' must be a non-empty list of class names")
    check(f"{path}: number of classes", len(classes), "max_classes", lim)
    if doc.get("rule") not in _RULES:
        raise bad(f"'rule' must be one of {_RULES}, got {doc.get('rule')!r}")
    meta = doc.get("meta", {})
    if not isinstance(meta, dict) or not isinstance(meta.setdefault("models", {}), dict):
        raise bad("'meta' must be an object whose 'models' is an object")
    kinds = {}
    for mid, info in meta["models"].items():
        if not _MODEL_ID.fullmatch(mid):
            raise bad(f"model id {mid!r} is not 12 hex digits of a content hash")
        kinds[mid] = _check_model_meta(mid, info, path, lim, bad, families)
    comps = doc.get("components")
    if not isinstance(comps, list) or not comps:
        raise bad("'components' must be a non-empty list")
    for i, c in enumerate(comps):
        if not isinstance(c, dict) or not {"kind", "source"} <= set(c) <= _COMPONENT_KEYS:
            raise bad(f"component {i} must be an object with kind, source and only "
                      f"{sorted(_COMPONENT_KEYS)}")
        kind, source = c["kind"], c["source"]
        if kind not in _KINDS or not isinstance(source, str):
            raise bad(f"component {i} has kind {kind!r} (expected one of {_KINDS}) or a "
                      "non-text source")
        if kind == "proto":
            if source not in backbones:
                raise bad(f"component {i} uses unknown backbone {source!r}")
        elif kinds.get(source) != kind:
            raise bad(f"component {i} needs {kind} model {source!r}, which the file does not hold")
        if c.get("role", "general") not in _ROLES:
            raise bad(f"component {i} has role {c.get('role')!r}, not one of {_ROLES}")
        if not all(_is_number(c.get(k, 1.0)) and c.get(k, 1.0) >= 0 for k in ("weight", "scale")):
            raise bad(f"component {i}: weight and scale must be finite non-negative numbers")
        idx = c.get("classes", [])
        if not isinstance(idx, list) or not all(
                type(k) is int and 0 <= k < len(classes) for k in idx):
            raise bad(f"component {i}: 'classes' must list class indices 0..{len(classes) - 1}")
    return doc


def _check_model_meta(mid: str, info: Any, path: Path, lim: Limits, bad, families) -> str:
    """Check one model's entry; return its kind."""
    if not isinstance(info, dict):
        raise bad(f"model {mid}: its entry is not an object")
    family = info.get("family")
    if not isinstance(family, str) or family not in families:
        raise bad(f"model {mid}: unknown family {family!r} (known: {families.list()})")
    kind = families.get(family).kind
    if not isinstance(info.get("config"), dict):
        raise bad(f"model {mid}: 'config' must be an object")
    names = info.get("classes")
    if not _is_str_list(names):
        raise bad(f"model {mid}: 'classes' must be a list of names")
    check(f"{path}: model {mid}'s number of classes", len(names), "max_classes", lim)
    if kind == "expert":
        wnids = info.get("wnids")
        if not isinstance(wnids, list) or len(wnids) != len(names) or not all(
                w is None or isinstance(w, str) for w in wnids):
            raise bad(f"model {mid}: 'wnids' must give a node id or null per class")
        if not names:
            raise bad(f"model {mid}: an expert needs its class names")
    chash = info.get("content_hash")
    if not isinstance(chash, str) or not _CONTENT_HASH.fullmatch(chash) or chash[:12] != mid:
        raise bad(f"model {mid}: 'content_hash' must be 64 hex digits starting with its id")
    return kind


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_arrays(zf: zipfile.ZipFile, path: Path, work: Path, n_components: int,
                 lim: Limits) -> dict[str, np.ndarray]:
    """``arrays.npz`` through a file on disk: every inner member bounded, no pickles, 2-D only."""
    allowed = {f"{i}.{f}" for i in range(n_components) for f in _ARRAY_FIELDS}
    npz = work / "arrays.npz"
    with create_new(npz) as out:
        _stream(zf, _member(zf, "arrays.npz", path), out, path, "max_model_bytes", lim)
    arrays = {}
    try:
        inner = zipfile.ZipFile(npz)
    except zipfile.BadZipFile as exc:
        raise InvalidParameterError(f"{path}: arrays.npz is not an npz archive ({exc})") from None
    with inner:
        for info in inner.infolist():
            key = info.filename.removesuffix(".npy")
            if key not in allowed or key in arrays:
                raise InvalidParameterError(f"{path}: arrays.npz holds an unexpected array "
                                            f"{info.filename!r}")
            _check_declared(info, f"{path}: array {key}", "max_model_bytes", lim)
            arrays[key] = _read_npy(inner, info, f"{path}: array {key}")
    return arrays


def _read_npy(npz: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> np.ndarray:
    """One 2-D numeric array whose header promises no more bytes than the member holds."""
    fmt = np.lib.format
    try:
        with npz.open(info) as fh:
            version = fmt.read_magic(fh)
            header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
            shape, _, dtype = header(fh)
            if dtype.hasobject or dtype.kind not in "biuf" or len(shape) != 2:
                raise InvalidParameterError(f"{what} must be a 2-D numeric array, got "
                                            f"{dtype} {shape}")
            if math.prod(shape) * dtype.itemsize > info.file_size:
                raise InvalidParameterError(f"{what} declares {shape} but holds fewer bytes")
        with npz.open(info) as fh:
            array = fmt.read_array(fh, allow_pickle=False)
    except ValueError as exc:  # bad magic, header or truncated data
        raise InvalidParameterError(f"{what} is not a valid .npy array ({exc})") from None
    if not np.all(np.isfinite(array)):
        raise InvalidParameterError(f"{what} holds NaN or infinite values")
    return array


def _load_model(zf: zipfile.ZipFile, path: Path, work: Path, mid: str, meta: dict,
                lim: Limits):
    """Unpack one model inside ``work``, prove it is the model its id names, then load it."""
    from ..hub.adapters import families
    from ..hub.hub import content_hash

    cls = families.get(meta["family"])
    target = child_path(work, mid, "model id")
    with create_new(target) as out:
        digest = _stream(zf, _member(zf, f"models/{mid}", path), out, path, "max_model_bytes",
                         lim)
    expected = content_hash(digest, cls.kind, cls.family, meta["config"], meta["classes"])
    if expected != meta["content_hash"]:
        raise ArtifactIntegrityError(f"{path}: model {mid} does not match its content hash "
                                     "(the file is damaged or was edited); save it again")
    try:
        return cls.rebuild(target, meta["config"], meta["classes"], mid,
                           meta["wnids"] if cls.kind == "expert" else ())
    except MissingDependencyError:
        raise
    except MLLError as exc:
        raise InvalidParameterError(f"{path}: model {mid} ({cls.family}): {exc}") from None


def _components(manifest: dict, arrays: dict[str, np.ndarray], adapters: dict,
                path: Path) -> list[Component]:
    """Components with their arrays, each array's shape checked against what it meets."""
    from ..hub.backbones import backbones

    k = len(manifest["classes"])
    comps = []
    for i, d in enumerate(manifest["components"]):
        d = dict(d)
        for f in _ARRAY_FIELDS:
            d[f] = arrays.get(f"{i}.{f}")
        kind = d["kind"]
        if kind == "expert":
            field, want = "head_map", (len(adapters[d["source"]].classes), k)
        elif kind == "vlm":
            field, want = "text_emb", (k, adapters[d["source"]].dim or None)
        else:
            field, want = "prototypes", (k, backbones.get(d["source"]).dim)
        got = d[field]
        if got is None or any(w is not None and g != w
                              for g, w in zip(got.shape, want, strict=True)):
            raise InvalidParameterError(
                f"{path}: component {i} ({kind} {d['source']}) needs a {field} of shape "
                f"{tuple(w if w is not None else 'D' for w in want)}, got "
                f"{None if got is None else got.shape}; the file is damaged")
        comps.append(Component(**d))
    return comps
