"""ONNX experts through onnxruntime (CPU).

The input spec is read from the graph's first input (``N x C x H x W``) where its dimensions are
fixed; options ``input_size``, ``channels``, ``mean``, ``std`` fill in or override it. Outputs are
logits unless the option ``outputs="probabilities"`` says the graph ends in a softmax.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InvalidParameterError
from ..safety import refuse_unsafe
from ..spec import InputSpec
from . import families
from .base import Expert, PackContext, Packed, check_options, softmax

FAMILY = "onnx"


def _read_model(path: Path):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError, ValueError) as exc:
        raise InvalidParameterError(f"{path.name} is not a valid ONNX model ({exc})") from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in model.graph.initializer):
        raise InvalidParameterError(f"{path.name} keeps weights in external files; save it as one "
                                    "file (onnx.save(model, path, save_as_external_data=False))")
    return model


def _graph_input(model) -> tuple[str, list[int | None]]:
    inits = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise InvalidParameterError(f"ONNX experts take one image input; this graph has "
                                    f"{[i.name for i in inputs]}")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in inputs[0].type.tensor_type.shape.dim]
    return inputs[0].name, dims


def _input_spec(dims: list[int | None], opts: dict[str, Any]) -> InputSpec:
    if len(dims) != 4:
        raise InvalidParameterError(f"ONNX expert input must be N x C x H x W, got {len(dims)} dims")
    channels = opts["channels"] or dims[1]
    size = opts["input_size"] or dims[2]
    if dims[2] is not None and dims[3] is not None and dims[2] != dims[3]:
        raise InvalidParameterError(f"ONNX expert input must be square, got {dims[2]}x{dims[3]}")
    if not channels or not size:
        raise InvalidParameterError("the ONNX input has dynamic channels or size; pass the "
                                    "options channels=C and input_size=S")
    mean = opts["mean"] if opts["mean"] is not None else [0.0] * channels
    std = opts["std"] if opts["std"] is not None else [1.0] * channels
    return InputSpec(int(size), int(channels), tuple(map(float, mean)), tuple(map(float, std)))


@families.register(FAMILY)
class OnnxExpert(Expert):
    """An ONNX graph from image batch to class scores."""

    family = FAMILY
    SUFFIXES = (".onnx",)
    SAFE_FORMAT = "ONNX (--family onnx)"
    OPTIONS = {"input_size": None, "channels": None, "mean": None, "std": None,
               "outputs": "logits"}

    def __init__(self, path: Path, config: dict[str, Any], classes: Sequence[str]) -> None:
        import onnxruntime as ort

        super().__init__(classes)
        self.input_spec = InputSpec.from_dict(config["input_spec"])
        self.probabilities = config["outputs"] == "probabilities"
        options = ort.SessionOptions()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.n_params = int(config.get("n_params", 0))
        self.fixed_batch = config.get("fixed_batch")

    @classmethod
    def pack(cls, model: Any, options: dict[str, Any], ctx: PackContext) -> Packed:
        opts = check_options(FAMILY, options, cls.OPTIONS)
        if opts["outputs"] not in ("logits", "probabilities"):
            raise InvalidParameterError(
                f"option outputs must be 'logits' or 'probabilities', got {opts['outputs']!r}")
        path = Path(model)
        refuse_unsafe(path)
        proto = _read_model(path)
        _, dims = _graph_input(proto)
        n_params = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
        config = {"input_spec": _input_spec(dims, opts).to_dict(), "outputs": opts["outputs"],
                  "n_params": n_params, "fixed_batch": dims[0]}
        return Packed(path, config, name=path.stem, source="upload")

    @classmethod
    def from_artifact(cls, path: Path, config: dict[str, Any],
                      classes: Sequence[str] = ()) -> OnnxExpert:
        return cls(path, config, classes)

    def _proba_batch(self, x: np.ndarray) -> np.ndarray:
        step = self.fixed_batch or len(x)  # graphs exported with a fixed batch size run in pieces
        parts = []
        for start in range(0, len(x), step):
            piece = x[start: start + step]
            padded = np.concatenate([piece, np.zeros((step - len(piece), *piece.shape[1:]),
                                                     dtype=piece.dtype)])
            parts.append(self.session.run(None, {self.input_name: padded})[0][: len(piece)])
        out = np.concatenate(parts).astype(np.float32).reshape(len(x), -1)
        return out if self.probabilities else softmax(out)
