"""Hugging Face CLIP models (``transformers.CLIPModel``) as VLMs.

``hub add DIR --family hf-clip`` takes a directory written by ``save_pretrained`` (``config.json``,
``model.safetensors`` or safetensors shards, tokenizer files, optionally
``preprocessor_config.json``). Weights in ``pytorch_model.bin`` are refused: they need pickle.
Everything is packed into one safetensors bundle (tokenizer and configs in its header), so the hub
never needs the network to load it again. Needs the ``clip`` extra (transformers).
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..._safepath import child_path
from ...errors import InvalidParameterError, MissingDependencyError, UnsafeFormatError
from ...limits import check
from ..safety import refuse_unsafe, safe_formats
from ..spec import InputSpec
from . import families
from ._bundle import bundle_info, read_meta, save_bundle, write_files
from .base import VLM, PackContext, Packed, check_options, read_config

FAMILY = "hf-clip"
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt",
                   "special_tokens_map.json")
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def _transformers():
    try:
        import transformers
    except ImportError:
        raise MissingDependencyError("the hf-clip family needs transformers: pip install 'mll[clip]'") from None
    transformers.logging.set_verbosity_error()
    return transformers


def _weight_files(path: Path) -> list[Path]:
    index = path / "model.safetensors.index.json"
    if index.is_file():
        doc = read_config(index)
        try:
            shards = sorted(set(doc["weight_map"].values()))
        except (KeyError, TypeError, AttributeError) as exc:
            raise InvalidParameterError(f"{index} is not a valid shard index ({exc!r})") from None
        # shard names come from the file: each must be a plain name inside the model directory
        return [child_path(path, s, "shard name") for s in shards]
    if (path / "model.safetensors").is_file():
        return [path / "model.safetensors"]
    for other in sorted(path.iterdir()):
        if other.is_file():
            refuse_unsafe(other)
    raise UnsafeFormatError(f"{path} has no model.safetensors; the hub accepts {safe_formats()}")


def _load_weights(files: list[Path]) -> dict[str, Any]:
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    state: dict[str, Any] = {}
    for f in files:
        try:
            state.update(load_file(str(f)))
        except (SafetensorError, OSError) as exc:
            raise InvalidParameterError(f"{f.name} is not a valid safetensors file ({exc})") from None
    return {k: v.to(torch.float32) if v.is_floating_point() else v for k, v in state.items()}


def _input_spec(path: Path, hf_config: dict[str, Any]) -> InputSpec:
    size = int(hf_config.get("vision_config", {}).get("image_size", 224))
    mean, std = CLIP_MEAN, CLIP_STD
    pre = path / "preprocessor_config.json"
    if pre.is_file():
        p = read_config(pre)
        crop = p.get("crop_size", size)
        size = int(crop["height"] if isinstance(crop, dict) else crop)
        mean, std = tuple(p.get("image_mean", mean)), tuple(p.get("image_std", std))
    return InputSpec(size, 3, tuple(mean), tuple(std))


@families.register(FAMILY)
class HFClip(VLM):
    """``CLIPModel`` image and text towers with their projections."""

    family = FAMILY
    SAFE_FORMAT = "a Hugging Face CLIP directory with model.safetensors (--family hf-clip)"

    @classmethod
    def claims_directory(cls, config: dict[str, Any]) -> bool:
        return config.get("model_type") == "clip"

    def __init__(self, model, tokenizer, config: dict[str, Any]) -> None:
        self.model, self.tokenizer = model.eval(), tokenizer
        self.input_spec = InputSpec.from_dict(config["input_spec"])
        self.max_length = int(config["max_length"])
        self.dim = int(model.config.projection_dim)
        self.logit_scale = float(model.logit_scale.detach().exp())
        self.n_params = sum(p.numel() for p in model.parameters())

    @classmethod
    def pack(cls, model: Any, options: dict[str, Any], ctx: PackContext) -> Packed:
        check_options(FAMILY, options, {})
        path = Path(model)
        if not path.is_dir() or not (path / "config.json").is_file():
            raise InvalidParameterError(
                f"{path}: family {FAMILY} takes a directory saved by CLIPModel.save_pretrained "
                "(config.json, model.safetensors, tokenizer files)")
        hf_config = read_config(path / "config.json")
        if hf_config.get("model_type") != "clip":
            raise InvalidParameterError(
                f"{path} holds a {hf_config.get('model_type')!r} model, not 'clip'")
        present = [path / n for n in TOKENIZER_FILES if (path / n).is_file()]
        check(f"{path.name}'s tokenizer files, in bytes", sum(f.stat().st_size for f in present),
              "max_metadata_bytes")
        try:
            files = {f.name: f.read_text(encoding="utf-8") for f in present}
        except UnicodeDecodeError as exc:
            raise InvalidParameterError(f"{path}: a tokenizer file is not UTF-8 text ({exc})"
                                        ) from None
        if "tokenizer.json" not in files and "vocab.json" not in files:
            raise InvalidParameterError(f"{path} has no tokenizer files; save the tokenizer "
                                        "(or processor) into the same directory")
        state = _load_weights(_weight_files(path))
        config = {"hf_config": hf_config, "input_spec": _input_spec(path, hf_config).to_dict(),
                  "max_length": int(hf_config.get("text_config", {}).get(
                      "max_position_embeddings", 77))}
        arrays = {k: v.numpy() for k, v in state.items()}
        out = save_bundle(ctx.workdir / "model.safetensors", arrays, family=FAMILY, config=config,
                          files=files)
        return Packed(out, config, name=path.name, source=str(hf_config.get("_name_or_path", "")))

    @classmethod
    def from_artifact(cls, path: Path, config: dict[str, Any],
                      classes: Sequence[str] = ()) -> HFClip:
        tf = _transformers()
        files = bundle_info(read_meta(path))["files"]
        with tempfile.TemporaryDirectory() as tmp:
            # the names come from the file's header: only the known tokenizer files, inside tmp
            write_files(files, Path(tmp), TOKENIZER_FILES)
            try:
                tokenizer = tf.AutoTokenizer.from_pretrained(tmp)
            except Exception as exc:  # noqa: BLE001 - tokenizer parsers raise many kinds
                raise InvalidParameterError(f"{path.name}: its tokenizer files cannot be loaded "
                                            f"({type(exc).__name__}: {exc})") from None
        model = tf.CLIPModel(tf.CLIPConfig.from_dict(config["hf_config"]))
        result = model.load_state_dict(_load_weights([path]), strict=False)
        missing = [k for k in result.missing_keys if not k.endswith("position_ids")]
        if missing or result.unexpected_keys:
            raise InvalidParameterError(f"CLIP weights do not fit the config: missing {missing[:5]}"
                                        f", unexpected {result.unexpected_keys[:5]}")
        return cls(model, tokenizer, config)

    @staticmethod
    def _tensor(out):
        """``get_*_features`` return a tensor (transformers 4) or an output object (5)."""
        return out if hasattr(out, "numpy") else out.pooler_output

    def _embed_batch(self, x: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            out = self.model.get_image_features(pixel_values=torch.from_numpy(x))
        return self._tensor(out).float().numpy()

    def _embed_texts(self, texts: list[str]) -> np.ndarray:
        import torch

        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        with torch.inference_mode():
            out = self.model.get_text_features(input_ids=enc["input_ids"],
                                               attention_mask=enc["attention_mask"])
        return self._tensor(out).float().numpy()
