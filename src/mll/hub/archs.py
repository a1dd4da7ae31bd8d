"""PyTorch architectures the hub can rebuild from a name and a JSON config.

Weights travel as safetensors, never as pickled modules, so the code of every architecture a hub
model uses lives here, registered by name; ``build(name, config)`` makes a fresh module whose
``state_dict`` keys match the stored weights. Importing this module imports torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .._registry import Registry
from ..errors import InvalidParameterError
from .spec import InputSpec


@dataclass(frozen=True)
class Architecture:
    """A registered architecture: how to build it and what it consumes.

    ``takes`` is ``"images"`` (a ``(N, C, H, W)`` batch in ``input_spec``) or ``"features"`` (pooled
    features of the backbone named in the config).
    """

    name: str
    build: Callable[[dict[str, Any]], nn.Module]
    takes: str
    defaults: dict[str, Any]

    def config(self, given: dict[str, Any]) -> dict[str, Any]:
        unknown = set(given) - set(self.defaults)
        if unknown:
            raise InvalidParameterError(
                f"architecture {self.name!r} has no parameter(s) {sorted(unknown)}; "
                f"it takes {sorted(self.defaults)}")
        missing = [k for k, v in self.defaults.items() if v is None and k not in given]
        if missing:
            raise InvalidParameterError(f"architecture {self.name!r} needs {missing}")
        return {**self.defaults, **given}


architectures: Registry[Architecture] = Registry("architecture")


def register_architecture(name: str, takes: str, **defaults: Any):
    """Decorator for ``build(config) -> nn.Module``; ``None`` defaults are required parameters."""

    def add(fn: Callable[[dict[str, Any]], nn.Module]) -> Callable[[dict[str, Any]], nn.Module]:
        architectures.register(name)(Architecture(name, fn, takes, defaults))
        return fn

    return add


def build(name: str, config: dict[str, Any]) -> nn.Module:
    """A fresh module of a registered architecture, tagged with its name and full config."""
    arch = architectures.get(name)
    full = arch.config(config)
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


@register_architecture("small-cnn", takes="images", n_classes=None, channels=1, size=28, width=16,
                       mean=[0.5], std=[0.5])
def small_cnn(c: dict[str, Any]) -> nn.Module:
    """Two conv blocks and a linear layer (about 20k parameters at width 16 for 28x28 inputs)."""
    w = int(c["width"])
    side = int(c["size"]) // 4
    return nn.Sequential(
        nn.Conv2d(int(c["channels"]), w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(w, 2 * w, 3, padding=1), nn.BatchNorm2d(2 * w), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(2 * w * side * side, int(c["n_classes"])))


@register_architecture("linear-head", takes="features", backbone=None, in_dim=None, n_classes=None)
def linear_head(c: dict[str, Any]) -> nn.Module:
    return nn.Linear(int(c["in_dim"]), int(c["n_classes"]))


@register_architecture("mlp-head", takes="features", backbone=None, in_dim=None, n_classes=None,
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
