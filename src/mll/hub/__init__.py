"""The model hub stage: a durable registry of expert classifiers and VLMs.

``Hub.open(hub_dir)`` is the entry point; ``hub.load(id)`` returns an adapter with the common
interface of ``mll.hub.adapters.base``; ``hub.features`` shares backbone features between models.
Importing this package imports neither torch nor any model library.
"""

from __future__ import annotations

from .adapters import VLM, Adapter, Expert, families
from .artifacts import ArtifactStore
from .backbones import backbones, get_backbone
from .features import FeatureCache, image_key
from .hub import Hub, probe_images, read_classes
from .records import Serving
from .spec import HeadClass, InputSpec, ModelInfo
from .store import Store

__all__ = ["VLM", "Adapter", "ArtifactStore", "Expert", "FeatureCache", "HeadClass", "Hub",
           "InputSpec", "ModelInfo", "Serving", "Store", "backbones", "families", "get_backbone",
           "image_key", "probe_images", "read_classes"]
