"""A toy label table: a 14-node WordNet, 48 sample images, two experts and two VLMs, in memory.

Every selection method runs on it in milliseconds, so the selector contract is tested for each
registered method without the starter hub. Outputs are synthetic but consistent: a VLM's image
embeddings lie near its own text embeddings of the image's node, an expert's heads are right most
of the time on their own nodes, and prototype features cluster by node.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from mll.graph.graph import SemanticGraph
from mll.graph.match import Matcher
from mll.graph.testing import write_wordnet
from mll.hub.spec import HeadClass, InputSpec, ModelInfo
from mll.selection.table import LabelTable, ModelLabel, SampleImages

# offset, lemmas, parents, gloss
SYNSETS = [
    (1, ["entity"], [], "that which exists"),
    (2, ["animal"], [1], "a living organism that moves"),
    (3, ["dog"], [2], "a domesticated canine that barks"),
    (4, ["cat"], [2], "a small domesticated feline"),
    (5, ["bird"], [2], "a warm-blooded egg-laying vertebrate with feathers"),
    (6, ["clothing"], [1], "a covering worn on the body"),
    (7, ["footwear"], [6], "clothing worn on the feet"),
    (8, ["sandal"], [7], "a shoe consisting of a sole fastened by straps"),
    (9, ["sneaker", "gym_shoe"], [7], "a canvas shoe with a rubber sole"),
    (10, ["boot"], [7], "footwear that covers the ankle"),
    (11, ["shirt"], [6], "a garment for the upper body with sleeves"),
    (12, ["vehicle"], [1], "a conveyance that transports people or objects"),
    (13, ["car"], [12], "a motor vehicle with four wheels"),
    (14, ["bicycle"], [12], "a wheeled vehicle with two wheels moved by pedals"),
]
SAMPLE_OFFSETS = [3, 4, 5, 8, 9, 10, 11, 13]  # bicycle (14) has no sample images
PER_NODE = 6  # three photos and three small grayscale images, in augmented pairs
TOY_TASK = ["dog", "cat", "sandal", "sneaker", "car", "bicycle"]
DIM = 32


def wnid(offset: int) -> str:
    return f"n{offset:08d}"


class HashingEncoder:
    """Deterministic bag-of-words text embeddings: each word a fixed random unit vector.

    It answers as the hub's text cache does (``id``, ``dim``, ``encode``), so the matcher takes it.
    """

    id = "toy-hashing"
    dim = DIM

    def encode(self, texts: list[str], chunk: int = 0, description: str = "") -> np.ndarray:
        out = np.zeros((len(texts), DIM), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in text.lower().replace(",", " ").replace(".", " ").split():
                out[i] += np.random.default_rng(zlib.crc32(word.encode())).standard_normal(DIM)
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class ToyTextTower:
    """What selection asks of a loaded VLM: its text tower and logit scale."""

    def __init__(self, encoder: HashingEncoder, logit_scale: float) -> None:
        self.encoder, self.logit_scale = encoder, logit_scale

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        return self.encoder.encode(texts)


def _info(model_id: str, kind: str, family: str, heads: list[int], latency: float) -> ModelInfo:
    classes = tuple(HeadClass(j, SYNSETS[o - 1][1][0], wnid(o)) for j, o in enumerate(heads))
    return ModelInfo(id=model_id, name=f"toy {model_id}", kind=kind, family=family, source="",
                     license="", n_params=1, latency_ms=latency,
                     input_spec=InputSpec(32, 3, (0.5,), (0.5,)), backbone=None,
                     content_hash=model_id * 4, artifact_digest="", artifact_bytes=0, config={},
                     metrics={}, created_at="", classes=classes, labelled=True)


def _expert(model_id: str, heads: list[int], nodes: np.ndarray, styles: np.ndarray,
            accurate_style: str, rng: np.random.Generator) -> ModelLabel:
    """Right on its own nodes 90% of the time in ``accurate_style``, 60% otherwise."""
    head_wnids = [wnid(o) for o in heads]
    out = rng.dirichlet(np.ones(len(heads)), len(nodes)).astype(np.float32)
    for i, node in enumerate(nodes):
        if node in head_wnids:
            right = head_wnids.index(node)
            hit = rng.random() < (0.9 if styles[i].startswith(accurate_style) else 0.6)
            top = right if hit else (right + 1) % len(heads)
            out[i] = 0.1 / max(len(heads) - 1, 1)
            out[i, top] = 0.9
    summary = {"mean_accuracy_own_classes": 0.8, "bytes": 1000}
    return ModelLabel(_info(model_id, "expert", "torch-safetensors", heads, 2.0), out,
                      {}, summary)


def _vlm(model_id: str, family: str, noise: float, nodes: np.ndarray, encoder: HashingEncoder,
         graph: SemanticGraph, rng: np.random.Generator) -> ModelLabel:
    """Image embeddings near the caption of the image's node; stats as labelling writes them."""
    text_nodes = np.array(sorted(set(nodes.tolist())))
    text_emb = encoder.encode([graph.caption(v) for v in text_nodes])
    pos = {v: i for i, v in enumerate(text_nodes.tolist())}
    emb = text_emb[[pos[v] for v in nodes]] + noise * rng.standard_normal((len(nodes), DIM))
    emb = (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32)
    pred = (emb @ text_emb.T).argmax(axis=1)
    truth = np.array([pos[v] for v in nodes])
    count = np.bincount(truth, minlength=len(text_nodes))
    correct = np.bincount(truth, weights=pred == truth, minlength=len(text_nodes))
    stats = {"nodes": text_nodes, "count": count, "correct": correct}
    summary = {"zero_shot_accuracy": round(float((pred == truth).mean()), 4), "bytes": 1000}
    return ModelLabel(_info(model_id, "vlm", family, [], 5.0), emb, stats, summary,
                      text_nodes=text_nodes, text_emb=text_emb)


def _matcher(graph: SemanticGraph, encoder: HashingEncoder, directory: Path) -> Matcher:
    """The matcher over the toy graph, with its caption embeddings as ``Matcher.for_hub`` makes
    them (a ``Captions`` index where the graph package has one, else the whole matrix)."""
    from mll.graph import match

    if hasattr(match, "Captions"):
        (directory / "graph").mkdir(exist_ok=True)
        return Matcher(graph, encoder, match.Captions(graph, encoder, directory / "graph"))
    return Matcher(graph, encoder, encoder.encode(graph.captions()))


def build_toy_table(directory: Path) -> LabelTable:
    rng = np.random.default_rng(0)
    graph = SemanticGraph.from_wordnet(write_wordnet(directory / "wordnet", SYNSETS, lexfile=6))
    encoder = HashingEncoder()
    matcher = _matcher(graph, encoder, directory)
    nodes = np.repeat([wnid(o) for o in SAMPLE_OFFSETS], PER_NODE)
    styles = np.array(["photo" if i % PER_NODE < PER_NODE // 2 else "gray28/toy"
                       for i in range(len(nodes))])
    samples = SampleImages([f"img{i:03d}" for i in range(len(nodes))], nodes, styles,
                           np.arange(len(nodes), dtype=np.int64) // 2)
    node_dim = {v: i for i, v in enumerate(sorted(set(nodes.tolist())))}
    proto = np.abs(rng.normal(0, 0.8, (len(nodes), 12)))
    proto[np.arange(len(nodes)), [node_dim[v] for v in nodes]] += 1.0
    models = [
        _expert("animals", [3, 4, 5], nodes, styles, "photo", rng),
        _expert("footwear", [8, 9, 10], nodes, styles, "gray28", rng),
        _vlm("conse", "conse", 1.5, nodes, encoder, graph, rng),
        _vlm("clip", "hf-clip", 0.6, nodes, encoder, graph, rng),
    ]
    adapters = {"conse": ToyTextTower(encoder, 50.0), "clip": ToyTextTower(encoder, 100.0)}
    return LabelTable.from_labels(models, samples, matcher, proto_features=proto,
                                  adapters=adapters, proto_backbone="toy-backbone")


@pytest.fixture(scope="module")
def toy_table(tmp_path_factory) -> LabelTable:
    return build_toy_table(tmp_path_factory.mktemp("toy"))


@pytest.fixture(scope="module")
def toy_classes() -> list[str]:
    """A task on the toy table: four classes with experts, one vehicle, one without samples."""
    return list(TOY_TASK)


@pytest.fixture(autouse=True)
def _template_descriptions(monkeypatch):
    """P2 describes classes through an LLM when MLL_LLM_URL is set; these tests use templates."""
    monkeypatch.delenv("MLL_LLM_URL", raising=False)
