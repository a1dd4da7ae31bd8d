"""PyTorch experts: an architecture registered in ``mll.hub.archs`` plus safetensors weights.

Accepted on ``add``: a module built with ``mll.hub.archs.build`` (or trained by ``mll.hub.train``),
a ``.safetensors`` bundle written by mll, a ``.safetensors`` file with options ``arch`` and
``arch_config``, or a directory holding ``model.safetensors`` and ``config.json``
(``{"arch": ..., "arch_config": {...}, "classes": [...]}``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InvalidParameterError, UnsafeFormatError
from ..safety import CONVERT_HINT, refuse_unsafe
from . import families
from ._bundle import bundle_info, load_arrays, read_meta, save_bundle
from .base import Expert, PackContext, Packed, check_options, softmax

FAMILY = "torch-safetensors"


def _state_arrays(module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def _load_module(arch: str, arch_config: dict[str, Any], arrays: dict[str, np.ndarray]):
    """Build the architecture and load the weights; a mismatch is the uploader's error."""
    import torch

    from ..archs import build

    module = build(arch, arch_config)
    try:
        module.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in arrays.items()})
    except RuntimeError as exc:
        raise InvalidParameterError(
            f"weights do not fit architecture {arch!r} with config {arch_config}: "
            f"{str(exc).splitlines()[0]}") from None
    return module.eval()


def _check_backbone(arch: str, cfg: dict[str, Any]) -> None:
    from ..archs import architectures
    from ..backbones import backbones

    if architectures.get(arch).takes != "features":
        return
    spec = backbones.get(cfg["backbone"])
    if int(cfg["in_dim"]) != spec.dim:
        raise InvalidParameterError(
            f"{arch} expects {cfg['in_dim']}-d features but backbone {spec.id} gives {spec.dim}")


def _from_directory(path: Path) -> tuple[Path, dict[str, Any]]:
    weights, config = path / "model.safetensors", path / "config.json"
    if not weights.is_file():
        for other in sorted(path.iterdir()):
            if other.is_file():
                refuse_unsafe(other)
        raise InvalidParameterError(f"{path} has no model.safetensors; {CONVERT_HINT}")
    if not config.is_file():
        raise InvalidParameterError(f"{path} has no config.json naming the architecture")
    return weights, json.loads(config.read_text())


@families.register(FAMILY)
class TorchExpert(Expert):
    """A registered torch architecture; on images, or on backbone features for heads."""

    family = FAMILY
    OPTIONS = {"arch": None, "arch_config": None}

    def __init__(self, module, arch: str, arch_config: dict[str, Any],
                 classes: Sequence[str]) -> None:
        from ..archs import arch_input_spec
        from ..backbones import backbones

        super().__init__(classes)
        self.module, self.arch, self.arch_config = module, arch, arch_config
        spec = arch_input_spec(arch, arch_config)
        if spec is None:
            self.backbone = arch_config["backbone"]
            spec = backbones.get(self.backbone).input_spec
        self.input_spec = spec
        self.n_params = sum(p.numel() for p in module.parameters())

    @classmethod
    def pack(cls, model: Any, options: dict[str, Any], ctx: PackContext) -> Packed:
        opts = check_options(FAMILY, options, cls.OPTIONS)
        classes, metrics, name = None, {}, "model"
        if hasattr(model, "mll_arch"):
            arch, cfg, arrays = model.mll_arch, dict(model.mll_config), _state_arrays(model)
            name = model.mll_arch
        else:
            path = Path(model)
            name = path.stem
            if path.is_dir():
                path, meta = _from_directory(path)
                arch, cfg, classes = meta.get("arch"), meta.get("arch_config", {}), meta.get(
                    "classes")
            else:
                if path.suffix != ".safetensors":
                    refuse_unsafe(path)
                    raise UnsafeFormatError(
                        f"{path.name}: family {FAMILY} takes .safetensors weights; {CONVERT_HINT}")
                info = bundle_info(read_meta(path))
                arch = info["config"].get("arch") or opts["arch"]
                cfg = info["config"].get("arch_config") or opts["arch_config"] or {}
                classes, metrics = info["classes"], info["metrics"]
            if not arch:
                raise InvalidParameterError(
                    f"{path.name} does not name its architecture; pass the option arch=NAME "
                    "(and arch_config) or use a bundle saved by mll.hub.train")
            arrays = load_arrays(path)
        module = _load_module(arch, cfg, arrays)
        full_cfg = module.mll_config
        _check_backbone(arch, full_cfg)
        config = {"arch": arch, "arch_config": full_cfg}
        out = save_bundle(ctx.workdir / "model.safetensors", _state_arrays(module), family=FAMILY,
                          config=config, classes=classes, metrics=metrics)
        return Packed(out, config, name=name, classes=tuple(classes) if classes else None,
                      metrics=metrics, source="upload")

    @classmethod
    def from_artifact(cls, path: Path, config: dict[str, Any],
                      classes: Sequence[str] = ()) -> TorchExpert:
        module = _load_module(config["arch"], config["arch_config"], load_arrays(path))
        return cls(module, config["arch"], config["arch_config"], classes)

    def _run(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(x)).float().numpy()

    def _proba_batch(self, x: np.ndarray) -> np.ndarray:
        return softmax(self._run(x))

    def _proba_features(self, features: np.ndarray) -> np.ndarray:
        return softmax(self._run(features))
