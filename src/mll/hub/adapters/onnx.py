"""ONNX experts through onnxruntime (CPU).

The input spec is read from the graph's first input (``N x C x H x W``) where its dimensions are
fixed; options ``input_size``, ``channels``, ``mean``, ``std`` fill in or override it. Outputs are
logits unless the option ``outputs="probabilities"`` says the graph ends in a softmax.

An ONNX file is untrusted input: every tensor in it (initializers, ``Constant`` nodes and other
attribute tensors, in subgraphs and functions too) must carry its data inline, since external data
would make onnxruntime read other files; every operator must be one onnxruntime implements; the
declared input must fit :attr:`mll.limits.Limits.max_input_side`; and each run's output must be
``(batch, classes)``. The same checks run when a stored artifact is loaded or verified.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InvalidParameterError, first_line
from ...limits import check as check_limit
from ..safety import refuse_unsafe
from ..spec import InputSpec
from . import families
from .base import Expert, PackContext, Packed, check_options, softmax

FAMILY = "onnx"


#: Operator domains onnxruntime's CPU build implements (model-local functions are allowed too).
ORT_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml", "com.microsoft"})
#: Largest fixed batch dimension accepted; each run pads its batch to it.
MAX_FIXED_BATCH = 1024


def _read_model(path: Path):
    """Parse and validate an ONNX file without touching any file it refers to."""
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load(str(path), load_external_data=False)
        check_self_contained(model, path.name)  # first: the checker would look for the files
        onnx.checker.check_model(model)
    except (DecodeError, onnx.checker.ValidationError, ValueError) as exc:
        if isinstance(exc, InvalidParameterError):
            raise
        raise InvalidParameterError(
            f"{path.name} is not a valid ONNX model ({first_line(exc)})") from None
    return model


def _graph_tensors(graph, where: str) -> Iterator[tuple[str, Any]]:
    """Every ``TensorProto`` of a graph with where it sits: initializers and node attributes,
    descending into subgraphs (``If``/``Loop``/``Scan`` bodies)."""
    for t in graph.initializer:
        yield f"{where}initializer {t.name!r}", t
    for st in graph.sparse_initializer:
        yield f"{where}sparse initializer {st.values.name!r}", st.values
        yield f"{where}sparse initializer {st.values.name!r}", st.indices
    for node in graph.node:
        yield from _node_tensors(node, where)


def _node_tensors(node, where: str) -> Iterator[tuple[str, Any]]:
    label = f"{where}{node.op_type} node {node.name or ','.join(node.output)!r}"
    for attr in node.attribute:
        tensors = [*([attr.t] if attr.HasField("t") else []), *attr.tensors]
        for st in [*([attr.sparse_tensor] if attr.HasField("sparse_tensor") else []),
                   *attr.sparse_tensors]:
            tensors += [st.values, st.indices]
        yield from ((label, t) for t in tensors)
        for sub in [*([attr.g] if attr.HasField("g") else []), *attr.graphs]:
            yield from _graph_tensors(sub, f"{label} > ")


def _all_nodes(nodes) -> Iterator[Any]:
    """Nodes and, recursively, the nodes of their subgraphs."""
    for node in nodes:
        yield node
        for attr in node.attribute:
            for sub in [*([attr.g] if attr.HasField("g") else []), *attr.graphs]:
                yield from _all_nodes(sub.node)


def check_self_contained(model, name: str) -> None:
    """Refuse external tensor data anywhere, and operators onnxruntime does not implement."""
    import onnx

    tensors = list(_graph_tensors(model.graph, ""))
    for fn in model.functions:
        for node in fn.node:
            tensors += list(_node_tensors(node, f"function {fn.name!r} > "))
    for where, t in tensors:
        if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
            location = next((e.value for e in t.external_data if e.key == "location"), "?")
            raise InvalidParameterError(
                f"{name}: {where} keeps its data in an external file ({location!r}); mll stores "
                "one self-contained file: onnx.save(onnx.load(path), out, "
                "save_as_external_data=False)")
    local = {(fn.domain, fn.name) for fn in model.functions}
    nodes = [*_all_nodes(model.graph.node), *(n for fn in model.functions
                                                 for n in _all_nodes(fn.node))]
    for node in nodes:
        if node.domain not in ORT_DOMAINS and (node.domain, node.op_type) not in local:
            raise InvalidParameterError(
                f"{name} uses the custom operator {node.domain}::{node.op_type}, which "
                "onnxruntime does not implement; export it with standard ONNX operators")


def _run_error(exc: Exception) -> str:
    """onnxruntime's message, first line, without its ``[ONNXRuntimeError] : 1 : FAIL :`` prefix."""
    text = first_line(exc)
    return text.rsplit(" : ", 1)[-1] if text.startswith("[ONNXRuntimeError]") else text


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
    for side in (dims[2], dims[3], opts["input_size"]):
        if side:
            check_limit(f"the ONNX model's image input side ({dims[2]}x{dims[3]})", int(side),
                        "max_input_side")
    if dims[2] is not None and dims[3] is not None and dims[2] != dims[3]:
        raise InvalidParameterError(f"ONNX expert input must be square, got {dims[2]}x{dims[3]}")
    if not channels or not size:
        raise InvalidParameterError("the ONNX input has dynamic channels or size; pass the "
                                    "options channels=C and input_size=S")
    if dims[0] is not None and dims[0] > MAX_FIXED_BATCH:
        raise InvalidParameterError(f"the ONNX input has a fixed batch of {dims[0]} images (at "
                                    f"most {MAX_FIXED_BATCH}); export it with a dynamic batch axis")
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
        try:
            self.session = ort.InferenceSession(str(path), options,
                                                providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime's errors share no base class
            raise InvalidParameterError(f"onnxruntime cannot load the ONNX model "
                                        f"({_run_error(exc)})") from None
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
        _check_declared_outputs(proto)
        config = {"input_spec": _input_spec(dims, opts).to_dict(), "outputs": opts["outputs"],
                  "n_params": n_params, "fixed_batch": dims[0]}
        return Packed(path, config, name=path.stem, source="upload")

    @classmethod
    def from_artifact(cls, path: Path, config: dict[str, Any],
                      classes: Sequence[str] = ()) -> OnnxExpert:
        cls.check_artifact(path, config)  # a stored or shipped file is as untrusted as an upload
        return cls(path, config, classes)

    @classmethod
    def check_artifact(cls, path: Path, config: dict[str, Any]) -> None:
        """What ``pack`` checks, again, on a stored file (``hub verify``, loading a predictor)."""
        proto = _read_model(path)
        _, dims = _graph_input(proto)
        try:
            spec = InputSpec.from_dict(config["input_spec"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidParameterError(f"the ONNX model's stored config has no valid input_spec "
                                        f"({type(exc).__name__}: {exc})") from None
        check_limit("the ONNX model's image input side", spec.size, "max_input_side")
        _input_spec(dims, {"input_size": spec.size, "channels": spec.channels,
                           "mean": spec.mean, "std": spec.std})

    def _proba_batch(self, x: np.ndarray) -> np.ndarray:
        step = self.fixed_batch or len(x)  # graphs exported with a fixed batch size run in pieces
        parts = []
        for start in range(0, len(x), step):
            piece = x[start: start + step]
            padded = np.concatenate([piece, np.zeros((step - len(piece), *piece.shape[1:]),
                                                     dtype=piece.dtype)])
            try:
                raw = self.session.run(None, {self.input_name: padded})[0]
            except Exception as exc:  # noqa: BLE001 - onnxruntime's errors share no base class
                raise InvalidParameterError(f"the ONNX model fails on a batch of {len(padded)} "
                                            f"images ({_run_error(exc)})") from None
            parts.append(_scores(raw, len(padded))[: len(piece)])
        out = np.concatenate(parts)
        return out if self.probabilities else softmax(out)


def _scores(raw: Any, batch: int) -> np.ndarray:
    """``(batch, classes)`` float32 scores from one run's first output, or a clear error.

    Trailing size-1 axes are tolerated (``(N, C, 1, 1)`` from a convolutional head); anything
    else, such as one score per image or a ``(N, 3, 2)`` grid, is not a classifier's output.
    """
    raw = np.asarray(raw)
    extra = raw.shape[1:]
    if (raw.ndim < 2 or raw.shape[0] != batch or raw.dtype.kind not in "fiu"
            or int(np.prod(extra)) != max(extra)):
        raise InvalidParameterError(
            f"the ONNX model outputs {raw.dtype} of shape {raw.shape} for a batch of {batch} "
            "images; an expert must output (batch, classes) scores")
    return raw.reshape(batch, -1).astype(np.float32)


def _check_declared_outputs(proto) -> None:
    """The first output's fixed class dimensions within :attr:`Limits.max_classes`."""
    if not proto.graph.output:
        raise InvalidParameterError("the ONNX graph has no output")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in proto.graph.output[0].type.tensor_type.shape.dim]
    fixed = [d for d in dims[1:] if d]
    if fixed:
        check_limit("the ONNX model's declared classes", int(np.prod(fixed)), "max_classes")
