"""PyTorch experts: an architecture registered in ``mll.hub.archs`` plus safetensors weights.

Accepted on ``add``: a module built with ``mll.hub.archs.build`` (or trained by ``mll.hub.train``),
a ``.safetensors`` bundle written by mll, a ``.safetensors`` file with options ``arch`` and
``arch_config``, or a directory holding ``model.safetensors`` and ``config.json``
(``{"arch": ..., "arch_config": {...}, "classes": [...]}``).
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InvalidParameterError, MLLWarning, UnsafeFormatError, first_line
from ..safety import CONVERT_HINT, refuse_unsafe
from . import families
from ._bundle import bundle_info, read_header, read_meta, save_bundle
from .base import Expert, PackContext, Packed, check_options, softmax

FAMILY = "torch-safetensors"


def _state_arrays(module) -> dict[str, np.ndarray]:
    return {k: v.detach().cpu().numpy() for k, v in module.state_dict().items()}


def _load_tensors(path: Path) -> dict[str, Any]:
    """Every tensor of a safetensors file as a torch tensor in its stored dtype (bfloat16 too)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    read_header(path)  # bounded header checks first; load_file checks the tensors
    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise InvalidParameterError(f"{path.name}: cannot read safetensors tensors ({exc})") from None


def _fit_dtypes(module, tensors: dict[str, Any]) -> dict[str, Any]:
    """Tensors in the dtypes the module holds: other float widths are cast (with a warning);
    integer or boolean values for floating-point weights, or floats for integer buffers, are the
    uploader's error (a cast would silently give a different model)."""
    import torch

    expected = module.state_dict()
    out, cast = {}, set()
    for key, tensor in tensors.items():
        target = expected.get(key)
        if target is None or tensor.dtype == target.dtype:
            out[key] = tensor  # unknown keys: load_state_dict names them
            continue
        if target.is_floating_point() != tensor.is_floating_point() or tensor.dtype == torch.bool:
            raise InvalidParameterError(
                f"weight {key!r} is stored as {str(tensor.dtype).removeprefix('torch.')} but the "
                f"architecture holds {str(target.dtype).removeprefix('torch.')} there; save the "
                "weights in floating point (float32) as trained")
        converted = tensor.to(target.dtype)
        if converted.is_floating_point() and not bool(torch.isfinite(converted).all()) \
                and bool(torch.isfinite(tensor).all()):
            raise InvalidParameterError(
                f"weight {key!r} holds values too large for "
                f"{str(target.dtype).removeprefix('torch.')}")
        cast.add(str(tensor.dtype).removeprefix("torch."))
        out[key] = converted
    if cast:
        warnings.warn(f"weights stored as {', '.join(sorted(cast))} were cast to float32, the "
                      "precision the hub runs torch models in", MLLWarning, stacklevel=2)
    return out


def _load_module(arch: Any, arch_config: Any, tensors: dict[str, Any]):
    """Build the architecture and load the weights; a mismatch is the uploader's error."""
    from ..archs import build

    if not isinstance(arch, str) or not arch:
        raise InvalidParameterError(f"the architecture must be named by a string, got {arch!r}")
    module = build(arch, arch_config)
    try:
        module.load_state_dict(_fit_dtypes(module, tensors))
    except RuntimeError as exc:
        raise InvalidParameterError(
            f"weights do not fit architecture {arch!r} with config {arch_config}: "
            f"{first_line(exc)}") from None
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
    if config.stat().st_size > MAX_CONFIG_BYTES:
        raise InvalidParameterError(f"{config} is {config.stat().st_size:,} bytes; a config.json "
                                    f"holds at most {MAX_CONFIG_BYTES:,}")
    try:
        meta = json.loads(config.read_bytes())
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameterError(f"{config} is not valid JSON ({exc})") from None
    if not isinstance(meta, dict):
        raise InvalidParameterError(f"{config} must hold a JSON object like {{\"arch\": ..., "
                                    f"\"arch_config\": {{...}}}}, got a {type(meta).__name__}")
    classes = meta.get("classes")
    if classes is not None and (not isinstance(classes, list) or not all(
            isinstance(c, str) and c.strip() for c in classes)):
        raise InvalidParameterError(f"{config}: 'classes' must be a list of class names")
    return weights, meta


MAX_CONFIG_BYTES = 16 * 1024**2  # a config.json names an architecture and its classes


@families.register(FAMILY)
class TorchExpert(Expert):
    """A registered torch architecture; on images, or on backbone features for heads."""

    family = FAMILY
    OPTIONS = {"arch": None, "arch_config": None}
    SUFFIXES = (".safetensors",)  # a bundle names its own family; plain weights are this one's
    SAFE_FORMAT = ("safetensors weights of an architecture registered in mll (--family "
                   "torch-safetensors: a .safetensors file, or a directory with model.safetensors "
                   "and config.json)")

    @classmethod
    def claims_directory(cls, config: dict[str, Any]) -> bool:
        return "arch" in config

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
        if opts["arch"] is not None and not isinstance(opts["arch"], str):
            raise InvalidParameterError(f"option arch must be an architecture name, got "
                                        f"{opts['arch']!r}")
        if opts["arch_config"] is not None and not isinstance(opts["arch_config"], dict):
            raise InvalidParameterError(
                "option arch_config must be a JSON object, e.g. -o 'arch_config={\"n_classes\": "
                f"10}}' (quoted for the shell), got {opts['arch_config']!r}")
        classes, metrics, name = None, {}, "model"
        if hasattr(model, "mll_arch"):
            arch, cfg = model.mll_arch, dict(model.mll_config)
            tensors = {k: v.detach().cpu() for k, v in model.state_dict().items()}
            name = model.mll_arch
        else:
            path = Path(model)
            name = path.stem
            if path.is_dir():
                path, meta = _from_directory(path)
                arch, cfg, classes = (meta.get("arch") or opts["arch"],
                                      meta.get("arch_config", opts["arch_config"] or {}),
                                      meta.get("classes"))
            else:
                if path.suffix != ".safetensors":
                    refuse_unsafe(path)
                    raise UnsafeFormatError(
                        f"{path.name}: family {FAMILY} takes .safetensors weights; {CONVERT_HINT}")
                info = bundle_info(read_meta(path), path.name)
                arch = info["config"].get("arch") or opts["arch"]
                cfg = info["config"].get("arch_config") or opts["arch_config"] or {}
                classes, metrics = info["classes"], info["metrics"]
            if not arch:
                raise InvalidParameterError(
                    f"{path.name} does not name its architecture; pass the option arch=NAME "
                    "(and arch_config) or use a bundle saved by mll.hub.train")
            tensors = _load_tensors(path)
        module = _load_module(arch, cfg, tensors)
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
        module = _load_module(config["arch"], config["arch_config"], _load_tensors(path))
        return cls(module, config["arch"], config["arch_config"], classes)

    def _run(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.module(torch.from_numpy(x)).float().numpy()

    def _proba_batch(self, x: np.ndarray) -> np.ndarray:
        return softmax(self._run(x))

    def _proba_features(self, features: np.ndarray) -> np.ndarray:
        return softmax(self._run(features))
