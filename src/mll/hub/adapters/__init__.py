"""Model families, one module each, behind one registry: ``families.get("onnx")``.

Importing this package registers every family but imports no heavy dependency; each family
imports torch, onnxruntime, transformers or open_clip only when a model is packed or loaded.
"""

from __future__ import annotations

from ..._registry import Registry
from .base import VLM, Adapter, Expert, Packed

families: Registry[type[Adapter]] = Registry("model family")

from . import (  # noqa: E402  (the modules register themselves in ``families``)
    conse,
    efficientnet_lite,
    hf_clip,
    lit,
    onnx,
    open_clip,
    synthetic,
    torch_safetensors,
)

__all__ = ["VLM", "Adapter", "Expert", "Packed", "families", "conse", "efficientnet_lite",
           "hf_clip", "lit", "onnx", "open_clip", "synthetic", "torch_safetensors"]
