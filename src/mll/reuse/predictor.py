"""One predictor for a task: runs each chosen model once per batch and combines per the plan.

A saved predictor is a single zip holding the plan, its arrays and every model artifact it needs,
so ``load_predictor(path)`` works in any Python process with mll installed: no hub, no database.
Nothing in it is pickled: JSON, ``.npz`` without object arrays, and the models' own safe formats.
"""

from __future__ import annotations

import json
import logging
import tempfile
import zipfile
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .._io import atomic_path
from ..errors import InvalidParameterError
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

        feats: dict[str, np.ndarray] = {}

        def features(backbone: str) -> np.ndarray:
            if backbone not in feats:
                feats[backbone] = get_backbone(backbone).features(list(images), batch_size)
            return feats[backbone]

        out: dict[str, np.ndarray] = {}
        for comp in self.plan.components:
            if comp.source in out:
                continue
            if comp.kind == "proto":
                out[comp.source] = features(comp.source)
                continue
            model = self.adapters[comp.source]
            if model.kind == "expert":
                out[comp.source] = (model.predict_proba_from_features(features(model.backbone))
                                    if model.backbone else model.predict_proba(images, batch_size))
            else:
                out[comp.source] = (model.encode_images_from_features(features(model.backbone))
                                    if model.backbone else model.encode_images(images, batch_size))
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


def load_predictor(path: str | Path, workdir: str | Path | None = None) -> TaskPredictor:
    """Rebuild a saved predictor; model files are unpacked under ``workdir`` (a temp dir)."""
    from ..hub.adapters import Expert, families

    path = Path(path)
    if not zipfile.is_zipfile(path):
        raise InvalidParameterError(f"{path} is not a saved mll predictor (expected a zip)")
    work = Path(workdir or tempfile.mkdtemp(prefix="mll-predictor-"))
    with zipfile.ZipFile(path) as zf:
        manifest = json.loads(zf.read("manifest.json"))
        if manifest.get("format") != FORMAT:
            raise InvalidParameterError(f"{path}: unknown predictor format {manifest.get('format')!r}")
        with zf.open("arrays.npz") as fh, np.load(fh, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        adapters = {}
        for mid, meta in manifest["meta"].get("models", {}).items():
            target = work / mid
            target.write_bytes(zf.read(f"models/{mid}"))
            adapter = families.get(meta["family"]).from_artifact(target, meta["config"],
                                                                  meta["classes"])
            adapter.id = mid
            if isinstance(adapter, Expert):
                adapter.wnids = list(meta["wnids"])
            adapters[mid] = adapter
    comps = []
    for i, d in enumerate(manifest["components"]):
        for f in _ARRAY_FIELDS:
            d[f] = arrays.get(f"{i}.{f}")
        comps.append(Component(**d))
    plan = Plan(comps, manifest["rule"], len(manifest["classes"]))
    return TaskPredictor(manifest["classes"], plan, adapters, manifest["meta"])
