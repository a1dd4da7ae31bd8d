"""PyTorch architectures the hub can rebuild from a name and a JSON config.

Weights travel as safetensors, never as pickled modules, so the code of every architecture a hub
model uses lives here, registered by name; ``build(name, config)`` makes a fresh module whose
``state_dict`` keys match the stored weights. Importing this module imports torch.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .. import limits
from .._registry import Registry
from ..errors import InvalidParameterError, short_repr
from .spec import InputSpec


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: how to build it and what it consumes.

    ``takes`` is ``"images"`` (a ``(N, C, H, W)`` batch in ``input_spec``) or ``"features"`` (pooled
    features of the backbone named in the config). ``defaults`` holds each parameter's default, or
    its type (``int``, ``str``) when the parameter is required.
    """

    name: str
    build: Callable[[dict[str, Any]], nn.Module]
    takes: str
    defaults: dict[str, Any]

    def config(self, given: Any) -> dict[str, Any]:
        """The full, type-checked config; configs come from files other people wrote."""
        if not isinstance(given, dict):
            raise InvalidParameterError(
                f"arch_config of {self.name!r} must be a JSON object such as "
                f"{json.dumps(self.example())}, got {type(given).__name__} {short_repr(given)}")
        unknown = set(given) - set(self.defaults)
        if unknown:
            raise InvalidParameterError(
                f"architecture {self.name!r} has no parameter(s) {sorted(unknown)}; "
                f"it takes {sorted(self.defaults)}")
        missing = [k for k, v in self.defaults.items() if isinstance(v, type) and k not in given]
        if missing:
            raise InvalidParameterError(f"architecture {self.name!r} needs {missing}")
        full = {**self.defaults, **given}
        return {k: _checked(self.name, k, v, self.defaults[k]) for k, v in full.items()}

    def example(self) -> dict[str, Any]:
        """Required parameters with example values, for error messages."""
        samples = {int: 10, str: "efficientnet-lite0"}
        return {k: samples[v] for k, v in self.defaults.items() if isinstance(v, type)}


def _checked(arch: str, key: str, value: Any, default: Any) -> Any:
    """``value`` if it has the kind of ``default`` (or is of the required type); else an error.

    Integers are sizes and must be at least 1; floats (dropout) lie in [0, 1); lists hold finite
    numbers (per-channel mean and std).
    """
    kind = default if isinstance(default, type) else type(default)
    where = f"architecture {arch!r} parameter {key!r}"
    if kind is int:
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise InvalidParameterError(f"{where} must be a whole number >= 1, got {short_repr(value)}")
    elif kind is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
            raise InvalidParameterError(f"{where} must be a number in [0, 1), got {short_repr(value)}")
        value = float(value)
    elif kind is str:
        if not isinstance(value, str) or not value:
            raise InvalidParameterError(f"{where} must be a name, got {short_repr(value)}")
    elif kind is list:
        if (not isinstance(value, list) or not value
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                           and math.isfinite(v) for v in value)):
            raise InvalidParameterError(f"{where} must be a list of numbers, got {short_repr(value)}")
    return value


architectures: Registry[Architecture] = Registry("architecture")


def register_architecture(name: str, takes: str, **defaults: Any):
    """Decorator for ``build(config) -> nn.Module``; a type as default marks a required parameter."""

    def add(fn: Callable[[dict[str, Any]], nn.Module]) -> Callable[[dict[str, Any]], nn.Module]:
        architectures.register(name)(Architecture(name, fn, takes, defaults))
        return fn

    return add


def count_parameters(name: str, config: dict[str, Any]) -> int:
    """Parameters and buffers ``build(name, config)`` would allocate, counted without memory.

    The module is built on PyTorch's ``meta`` device, where tensors have shapes but no storage, so
    a config asking for a 36 GB layer costs nothing to measure.
    """
    arch = architectures.get(name)
    full = arch.config(config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. torch's lazy-module notices; nothing is kept
        with torch.device("meta"):
            module = arch.build(full)
    return sum(t.numel() for t in module.state_dict().values())


def build(name: str, config: dict[str, Any], limits_: limits.Limits | None = None) -> nn.Module:
    """A fresh module of a registered architecture, tagged with its name and full config.

    The config is type-checked and its size measured first: more than ``Limits.max_model_params``
    parameters is refused before any memory is allocated.
    """
    arch = architectures.get(name)
    full = arch.config(config)
    if arch.takes == "images":
        limits.check(f"architecture {name!r} input side", full["size"], "max_input_side", limits_)
    limits.check(f"architecture {name!r} with {json.dumps(config, sort_keys=True)[:120]}: the "
                 "parameter count", count_parameters(name, full), "max_model_params", limits_)
    module = arch.build(full)
    module.mll_arch, module.mll_config = name, full
    return module


def arch_input_spec(name: str, config: dict[str, Any]) -> InputSpec | None:
    """The image input of an image-taking architecture (None for heads on features)."""
    arch = architectures.get(name)
    if arch.takes != "images":
        return None
    full = arch.config(config)
    return InputSpec(full["size"], full["channels"], tuple(full["mean"]), tuple(full["std"]))


@register_architecture("small-cnn", takes="images", n_classes=int, channels=1, size=28, width=16,
                       mean=[0.5], std=[0.5])
def small_cnn(c: dict[str, Any]) -> nn.Module:
    """Two conv blocks and a linear layer (about 20k parameters at width 16 for 28x28 inputs)."""
    w = int(c["width"])
    side = int(c["size"]) // 4
    if side < 1:
        raise InvalidParameterError(f"small-cnn needs an input size of at least 4, got {c['size']}")
    return nn.Sequential(
        nn.Conv2d(int(c["channels"]), w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * w * side * side, int(c["n_classes"])))


@register_architecture("linear-head", takes="features", backbone=str, in_dim=int, n_classes=int)
def linear_head(c: dict[str, Any]) -> nn.Module:
    return nn.Linear(int(c["in_dim"]), int(c["n_classes"]))


@register_architecture("mlp-head", takes="features", backbone=str, in_dim=int, n_classes=int,
                       hidden=256, dropout=0.2)
def mlp_head(c: dict[str, Any]) -> nn.Module:
    return nn.Sequential(nn.Linear(int(c["in_dim"]), int(c["hidden"])), nn.ReLU(),
                         nn.Dropout(float(c["dropout"])), nn.Linear(int(c["hidden"]), int(c["n_classes"])))


class LiteFeatures(nn.Module):
    """EfficientNet-Lite without its classifier: image batch -> pooled 1280-d features."""

    def __init__(self, variant: str, state_dict: dict[str, torch.Tensor]) -> None:
        super().__init__()
        from efficientnet_lite_pytorch import EfficientNet

        net = EfficientNet.from_name(variant)
        net.load_state_dict(state_dict)
        net._fc = nn.Identity()
        self.net = net.eval()

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.net._avg_pooling(self.net.extract_features(x)).flatten(1)
