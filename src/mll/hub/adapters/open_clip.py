"""open_clip models as VLMs: an architecture name plus safetensors weights.

``hub add weights.safetensors --family open-clip -o arch=ViT-B-32`` builds the architecture with
``open_clip.create_model(arch, pretrained=None)``, loads the weights into it (no pickle), and
stores them as a bundle naming the architecture. A user with a network gets the weights of a
pretrained tag from open_clip's own download and saves them with ``safetensors``; the hub itself
never downloads. open_clip imports torchvision, and PyPI has no CPU torchvision build for
torch==2.13.0, so this family works only where ``pip install 'mll[openclip]'`` does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InvalidParameterError, MissingDependencyError, UnsafeFormatError, first_line
from ..safety import refuse_unsafe, safe_formats
from ..spec import InputSpec
from . import families
from ._bundle import bundle_info, read_meta, save_bundle
from .base import VLM, PackContext, Packed, check_options

FAMILY = "open-clip"


def _open_clip():
    try:
        import open_clip
    except ImportError as exc:
        raise MissingDependencyError(f"the open-clip family needs open_clip_torch and torchvision "
                       f"(pip install 'mll[openclip]'): {exc}") from None
    return open_clip


def _build(arch: str, state: dict[str, Any]):
    oc = _open_clip()
    if arch not in oc.list_models():
        raise InvalidParameterError(f"unknown open_clip architecture {arch!r}; see "
                                    "open_clip.list_models()")
    model = oc.create_model(arch, pretrained=None, device="cpu")
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise InvalidParameterError(f"weights do not fit open_clip {arch}: "
                                    f"{first_line(exc)}") from None
    return model.eval()


def _state(path: Path) -> dict[str, Any]:
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise InvalidParameterError(f"{path.name} is not a valid safetensors file ({exc})") from None
    return {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}


def _input_spec(model) -> InputSpec:
    cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    size = cfg.get("size", model.visual.image_size)
    size = size[0] if isinstance(size, (tuple, list)) else size
    oc = _open_clip()
    mean = tuple(cfg.get("mean", oc.OPENAI_DATASET_MEAN))
    std = tuple(cfg.get("std", oc.OPENAI_DATASET_STD))
    return InputSpec(int(size), 3, mean, std)


@families.register(FAMILY)
class OpenClip(VLM):
    """``model.encode_image`` / ``model.encode_text`` with the architecture's own tokenizer."""

    family = FAMILY
    OPTIONS = {"arch": None}

    def __init__(self, model, arch: str, config: dict[str, Any]) -> None:
        self.model, self.arch = model, arch
        self.tokenizer = _open_clip().get_tokenizer(arch)
        self.input_spec = InputSpec.from_dict(config["input_spec"])
        self.logit_scale = float(model.logit_scale.detach().exp())
        self.n_params = sum(p.numel() for p in model.parameters())
        self.dim = int(self._embed_texts(["a"]).shape[1])

    @classmethod
    def pack(cls, model: Any, options: dict[str, Any], ctx: PackContext) -> Packed:
        opts = check_options(FAMILY, options, cls.OPTIONS)
        path = Path(model)
        if path.suffix != ".safetensors":
            refuse_unsafe(path)
            raise UnsafeFormatError(f"{path.name}: family {FAMILY} takes .safetensors weights; "
                                    f"the hub accepts {safe_formats()}")
        arch = opts["arch"] or bundle_info(read_meta(path))["config"].get("arch")
        if not arch:
            raise InvalidParameterError("open-clip weights need the option arch=NAME "
                                        "(e.g. ViT-B-32)")
        state = _state(path)
        built = _build(arch, state)
        config = {"arch": arch, "input_spec": _input_spec(built).to_dict()}
        out = save_bundle(ctx.workdir / "model.safetensors", {k: v.numpy() for k, v in state.items()},
                          family=FAMILY, config=config)
        return Packed(out, config, name=f"open-clip-{arch}", source=f"open_clip:{arch}")

    @classmethod
    def from_artifact(cls, path: Path, config: dict[str, Any],
                      classes: Sequence[str] = ()) -> OpenClip:
        return cls(_build(config["arch"], _state(path)), config["arch"], config)

    def _embed_batch(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.encode_image(torch.from_numpy(x)).float().numpy()

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            return self.model.encode_text(self.tokenizer(texts)).float().numpy()
