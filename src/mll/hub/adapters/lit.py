"""LiT-style VLM: frozen backbone features aligned to a frozen text encoder by a trained projection.

Only the projection (standardise features, then linear to the text space) and a temperature are
learned, contrastively, on (image, caption) pairs; see ``mll.hub.train.train_lit``. The artifact is
a safetensors bundle of those few tensors.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InvalidParameterError
from ..backbones import backbones
from . import families
from ._bundle import bundle_info, load_arrays, read_meta
from .base import VLM, PackContext, Packed, TextTowerMixin, check_options
from .efficientnet_lite import check_backbone_digest

FAMILY = "lit"
TENSORS = ("feat_mean", "feat_std", "proj_weight", "proj_bias")


@families.register(FAMILY)
class LiT(TextTowerMixin, VLM):
    """Standardised backbone features -> linear projection into the text encoder's space."""

    family = FAMILY

    def __init__(self, arrays: dict[str, np.ndarray], config: dict[str, Any]) -> None:
        self.mean, self.std = arrays["feat_mean"], arrays["feat_std"]
        self.weight, self.bias = arrays["proj_weight"], arrays["proj_bias"]
        self.logit_scale = float(config["logit_scale"])
        self.backbone = config["backbone"]
        self.input_spec = backbones.get(self.backbone).input_spec
        self.text_encoder = self.default_text_encoder(config["text_encoder"])
        self.dim = self.weight.shape[0]
        self.n_params = int(config["backbone_params"]) + self.weight.size + self.bias.size

    @classmethod
    def pack(cls, model: Any, options: dict[str, Any], ctx: PackContext) -> Packed:
        check_options(FAMILY, options, {})
        path = Path(model)
        info = bundle_info(read_meta(path))
        if info["family"] != FAMILY:
            raise InvalidParameterError(
                f"{path.name} is not a LiT bundle; train one with 'mll hub train-lit' or "
                "mll.hub.train.train_lit")
        arrays = load_arrays(path)
        missing = [t for t in TENSORS if t not in arrays]
        if missing:
            raise InvalidParameterError(f"{path.name} lacks the tensors {missing}")
        return Packed(path, info["config"], name=path.stem, metrics=info["metrics"],
                      source=info["config"].get("trained_on", "upload"))

    @classmethod
    def from_artifact(cls, path: Path, config: dict[str, Any],
                      classes: Sequence[str] = ()) -> LiT:
        check_backbone_digest(config)
        return cls(load_arrays(path), config)

    def _embed_features(self, features: np.ndarray) -> np.ndarray:
        return ((features - self.mean) / self.std) @ self.weight.T + self.bias
