"""Training utilities for hub models: small CNN experts, heads on frozen features, LiT VLMs.

Everything is seeded and records its held-out accuracy; ``epochs`` and ``data_fraction`` make
deliberately weak experts possible. Results are objects with ``family`` and ``save(path)``, so
``hub.add(trained)`` stores them directly (as safetensors bundles)::

    feats = hub.features.get("efficientnet-lite0@224", keys=ids, load=corpus.load)
    expert = train_head(feats, labels, classes, backbone="efficientnet-lite0@224")
    hub.add(expert, classes=classes_with_wnids)
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ..errors import InvalidParameterError
from .adapters._bundle import save_bundle
from .backbones import backbones
from .spec import InputSpec

logger = logging.getLogger(__name__)


@dataclass
class TrainedModel:
    """A trained torch expert: a module of a registered architecture, its classes and metrics."""

    family: ClassVar[str] = "torch-safetensors"
    module: Any
    classes: list[str]
    metrics: dict[str, Any]
    name: str

    def save(self, path: str | Path) -> Path:
        arrays = {k: v.detach().cpu().numpy() for k, v in self.module.state_dict().items()}
        config = {"arch": self.module.mll_arch, "arch_config": self.module.mll_config}
        return save_bundle(Path(path), arrays, family=self.family, config=config,
                           classes=self.classes, metrics=self.metrics)

    def predict_proba(self, inputs: np.ndarray) -> np.ndarray:
        """Probabilities for a prepared image batch or a feature matrix."""
        import torch

        self.module.eval()
        with torch.inference_mode():
            return torch.softmax(self.module(torch.from_numpy(inputs)), dim=1).numpy()


@dataclass
class TrainedLiT:
    """A trained LiT projection, ready for ``hub.add``."""

    family: ClassVar[str] = "lit"
    arrays: dict[str, np.ndarray]
    config: dict[str, Any]
    metrics: dict[str, Any]
    name: str
    captions: list[str] = field(default_factory=list)

    def save(self, path: str | Path) -> Path:
        return save_bundle(Path(path), self.arrays, family=self.family, config=self.config,
                           metrics=self.metrics)


# -- data splits ----------------------------------------------------------------------------------
def split_indices(labels: np.ndarray, *, holdout: float, data_fraction: float,
                  seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Stratified (train, held-out) indices; the train part keeps ``data_fraction`` per class."""
    if not 0 <= holdout < 1:
        raise InvalidParameterError(f"holdout must be in [0, 1), got {holdout}")
    if not 0 < data_fraction <= 1:
        raise InvalidParameterError(f"data_fraction must be in (0, 1], got {data_fraction}")
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == label))
        n_test = int(round(holdout * len(idx))) if len(idx) > 1 else 0
        rest = idx[n_test:]
        train.append(rest[: max(1, int(math.ceil(data_fraction * len(rest))))])
        test.append(idx[:n_test])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


def _check_labels(labels: Sequence[int], n: int, classes: Sequence[str]) -> np.ndarray:
    y = np.asarray(labels, dtype=np.int64)
    if y.shape != (n,):
        raise InvalidParameterError(f"{n} inputs but {len(y)} labels")
    if len(y) and (y.min() < 0 or y.max() >= len(classes)):
        raise InvalidParameterError(f"labels must be class indices in 0..{len(classes) - 1}")
    if len(classes) < 2:
        raise InvalidParameterError("an expert needs at least two classes")
    return y


def _fit(module, x: np.ndarray, y: np.ndarray, *, epochs: int, lr: float, weight_decay: float,
         batch_size: int, seed: int) -> None:
    """Plain seeded minibatch Adam with cross-entropy."""
    import torch

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    opt = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    module.train()
    for _ in range(epochs):
        for batch in torch.randperm(len(xt), generator=gen).split(batch_size):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(module(xt[batch]), yt[batch]).backward()
            opt.step()
    module.eval()


def _accuracy(model: TrainedModel, x: np.ndarray, y: np.ndarray) -> float | None:
    if len(y) == 0:
        return None
    probs = np.concatenate([model.predict_proba(x[i: i + 1024]) for i in range(0, len(x), 1024)])
    return round(float((probs.argmax(1) == y).mean()), 4)


def _metrics(y_train: np.ndarray, y_test: np.ndarray, **extra: Any) -> dict[str, Any]:
    return {"n_train": int(len(y_train)), "n_heldout": int(len(y_test)), **extra}


# -- experts --------------------------------------------------------------------------------------
def train_cnn(images: Sequence[np.ndarray] | np.ndarray, labels: Sequence[int],
              classes: Sequence[str], *, epochs: int = 1, data_fraction: float = 1.0,
              holdout: float = 0.2, seed: int = 0, width: int = 16, size: int = 28,
              lr: float = 3e-3, batch_size: int = 128, name: str | None = None) -> TrainedModel:
    """A small CNN for gray images (28x28 by default), e.g. Fashion-MNIST or MNIST subsets."""
    from .archs import build

    classes = list(classes)
    y = _check_labels(labels, len(images), classes)
    spec = InputSpec(size, 1, (0.5,), (0.5,))
    x = np.concatenate([spec.prepare(images[i: i + 4096]) for i in range(0, len(images), 4096)])
    train, test = split_indices(y, holdout=holdout, data_fraction=data_fraction, seed=seed)
    import torch

    torch.manual_seed(seed)
    module = build("small-cnn", {"n_classes": len(classes), "width": width, "size": size})
    _fit(module, x[train], y[train], epochs=epochs, lr=lr, weight_decay=1e-4,
         batch_size=batch_size, seed=seed)
    model = TrainedModel(module, classes, {}, name or f"cnn-{len(classes)}")
    model.metrics = _metrics(y[train], y[test], heldout_accuracy=_accuracy(model, x[test], y[test]),
                             epochs=epochs, data_fraction=data_fraction, seed=seed)
    return model


def train_head(features: np.ndarray, labels: Sequence[int], classes: Sequence[str], *,
               backbone: str, head: str = "linear", hidden: int = 256, epochs: int = 30,
               data_fraction: float = 1.0, holdout: float = 0.2, seed: int = 0, lr: float = 1e-3,
               weight_decay: float = 1e-4, batch_size: int = 256,
               name: str | None = None) -> TrainedModel:
    """A linear or MLP head on frozen backbone features (``FeatureCache.get`` gives them)."""
    from .archs import build

    if head not in ("linear", "mlp"):
        raise InvalidParameterError(f"head must be 'linear' or 'mlp', got {head!r}")
    spec = backbones.get(backbone)
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != spec.dim:
        raise InvalidParameterError(f"{backbone} features are (N, {spec.dim}), got {x.shape}")
    classes = list(classes)
    y = _check_labels(labels, len(x), classes)
    train, test = split_indices(y, holdout=holdout, data_fraction=data_fraction, seed=seed)
    import torch

    torch.manual_seed(seed)
    cfg = {"backbone": backbone, "in_dim": spec.dim, "n_classes": len(classes)}
    module = build(f"{head}-head", {**cfg, "hidden": hidden} if head == "mlp" else cfg)
    _fit(module, x[train], y[train], epochs=epochs, lr=lr, weight_decay=weight_decay,
         batch_size=batch_size, seed=seed)
    model = TrainedModel(module, classes, {}, name or f"{head}-{len(classes)}-{backbone}")
    model.metrics = _metrics(y[train], y[test], heldout_accuracy=_accuracy(model, x[test], y[test]),
                             epochs=epochs, data_fraction=data_fraction, seed=seed)
    return model


# -- LiT ------------------------------------------------------------------------------------------
def _lit_head(in_dim: int, text_emb: np.ndarray):
    """Projection into the (fixed) caption embeddings, with a learned temperature."""
    import torch
    from torch import nn

    class LiTHead(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.proj = nn.Linear(in_dim, text_emb.shape[1])
            self.log_scale = nn.Parameter(torch.tensor(math.log(1 / 0.07)))
            self.register_buffer("text", torch.from_numpy(text_emb))

        def scale(self) -> torch.Tensor:
            return self.log_scale.clamp(max=math.log(100)).exp()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.scale() * nn.functional.normalize(self.proj(x), dim=1) @ self.text.T

    return LiTHead()


def train_lit(features: np.ndarray, captions: Sequence[str], *, backbone: str,
              text_encoder: str = "minilm-l6", epochs: int = 60, lr: float = 3e-3,
              weight_decay: float = 1e-3, holdout: float = 0.2, data_fraction: float = 1.0,
              seed: int = 0, batch_size: int = 256, name: str | None = None,
              trained_on: str = "") -> TrainedLiT:
    """Align frozen backbone features to a frozen text encoder (LiT, Zhai et al., 2022).

    Each image's positive is its caption and every other distinct caption of the training set a
    negative (in-batch negatives would include images of the same concept). Held-out accuracy is
    caption retrieval among all distinct captions, for held-out images.
    """
    import torch

    from ..text import get_text_encoder
    from .backbones import get_backbone

    spec = backbones.get(backbone)
    x = np.asarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != spec.dim or len(x) != len(captions):
        raise InvalidParameterError(f"need (N, {spec.dim}) {backbone} features and N captions, "
                                    f"got {x.shape} and {len(captions)}")
    texts = sorted(set(captions))
    if len(texts) < 2:
        raise InvalidParameterError("LiT training needs at least two distinct captions")
    encoder = get_text_encoder(text_encoder)
    position = {t: i for i, t in enumerate(texts)}
    y = np.asarray([position[c] for c in captions], dtype=np.int64)
    train, test = split_indices(y, holdout=holdout, data_fraction=data_fraction, seed=seed)
    mean, std = x[train].mean(0), x[train].std(0) + 1e-6
    z = ((x - mean) / std).astype(np.float32)
    torch.manual_seed(seed)
    head = _lit_head(spec.dim, encoder.encode(texts).astype(np.float32))
    _fit(head, z[train], y[train], epochs=epochs, lr=lr, weight_decay=weight_decay,
         batch_size=batch_size, seed=seed)
    with torch.inference_mode():
        acc = (float((head(torch.from_numpy(z[test])).argmax(1).numpy() == y[test]).mean())
               if len(test) else None)
        scale = float(head.scale())
    config = {"backbone": backbone, "backbone_digest": spec.digest,
              "backbone_params": get_backbone(backbone).n_params, "text_encoder": text_encoder,
              "text_encoder_id": encoder.id, "logit_scale": round(scale, 4),
              "trained_on": trained_on}
    arrays = {"feat_mean": mean.astype(np.float32), "feat_std": std.astype(np.float32),
              "proj_weight": head.proj.weight.detach().numpy().copy(),
              "proj_bias": head.proj.bias.detach().numpy().copy()}
    metrics = _metrics(y[train], y[test], heldout_accuracy=None if acc is None else round(acc, 4),
                       n_captions=len(texts), epochs=epochs, data_fraction=data_fraction,
                       seed=seed)
    return TrainedLiT(arrays, config, metrics, name or f"lit-{backbone}-{len(texts)}", texts)


def train_lit_from_corpus(hub: str | Path | None, *, backbone: str = "efficientnet-lite0@224",
                          role: str = "train", sources: Sequence[str] | None = None,
                          wnids: Sequence[str] | None = None, epochs: int = 60,
                          data_fraction: float = 1.0, holdout: float = 0.2, seed: int = 0,
                          name: str | None = None) -> TrainedLiT:
    """Train LiT on the corpus: each image paired with its node's caption (graph text)."""
    from ..corpus import Corpus
    from .features import FeatureCache

    corpus = Corpus.open(hub)
    records = corpus.records(role=role, source=sources, wnids=wnids)
    if not records:
        raise InvalidParameterError(f"the corpus has no {role!r} images for these filters")
    graph = corpus.graph
    captions = [graph.caption(r.wnid) for r in records]
    feats = FeatureCache.for_hub(corpus.hub_dir).get(
        backbone, keys=[r.image_id for r in records], load=corpus.load)
    trained_on = (f"corpus {corpus.version[:12]} role={role}"
                  + (f" sources={','.join(sources)}" if sources else "")
                  + (f" concepts={len(set(r.wnid for r in records))}"))
    return train_lit(feats, captions, backbone=backbone, epochs=epochs,
                     data_fraction=data_fraction, holdout=holdout, seed=seed, name=name,
                     trained_on=trained_on)
