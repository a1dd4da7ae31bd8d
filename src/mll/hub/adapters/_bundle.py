"""One-file model bundles: safetensors tensors plus JSON metadata in the safetensors header.

Every family except ONNX stores its artifact this way, so an artifact is self-describing (family,
config, classes, metrics) and loading it never runs code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ...errors import InvalidParameterError, short_repr
from ...limits import Limits, check

PREFIX = "mll."


def save_bundle(path: Path, tensors: dict[str, np.ndarray], *, family: str,
                config: dict[str, Any], classes: list[str] | None = None,
                metrics: dict[str, Any] | None = None, files: dict[str, str] | None = None) -> Path:
    """Write tensors and metadata; ``files`` carries small text files (tokenizer, configs)."""
    from safetensors.numpy import save_file

    meta = {f"{PREFIX}family": family, f"{PREFIX}config": json.dumps(config, sort_keys=True)}
    if classes is not None:
        meta[f"{PREFIX}classes"] = json.dumps(list(classes))
    if metrics:
        meta[f"{PREFIX}metrics"] = json.dumps(metrics, sort_keys=True)
    for name, text in (files or {}).items():
        meta[f"{PREFIX}file.{name}"] = text
    arrays = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    save_file(arrays, str(path), metadata=meta)
    _canonicalise(path)
    return path


def _canonicalise(path: Path) -> None:
    """Rewrite the header with sorted keys: the same tensors and metadata give the same bytes.

    safetensors serialises its header from a hash map, so key order (and hence the file's content
    hash, which is the model's identity) would otherwise vary between runs.
    """
    raw = path.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = json.dumps(json.loads(raw[8: 8 + n]), sort_keys=True, separators=(",", ":"))
    header += " " * (-len(header) % 8)
    path.write_bytes(len(header).to_bytes(8, "little") + header.encode() + raw[8 + n:])


#: Largest safetensors header accepted (the format's own reader refuses more than 100 MB).
MAX_HEADER_BYTES = 100_000_000


def read_header(path: Path, limits: Limits | None = None) -> dict[str, Any]:
    """The JSON header of a safetensors file, bounded and checked before anything else is read.

    The first 8 bytes give the header length; a crafted file may claim more than the file holds
    or a header of gigabytes, so the length is checked against the file size, ``MAX_HEADER_BYTES``
    and ``Limits.max_model_bytes`` before it is read.
    """
    size = path.stat().st_size
    check(f"{path.name} size in bytes", size, "max_model_bytes", limits)
    with open(path, "rb") as fh:
        head = fh.read(8)
        if len(head) < 8:
            raise InvalidParameterError(f"{path.name} is not a valid safetensors file "
                                        f"({size} bytes, shorter than the 8-byte header length)")
        n = int.from_bytes(head, "little")
        if n > size - 8 or n > MAX_HEADER_BYTES:
            raise InvalidParameterError(
                f"{path.name} is not a valid safetensors file (its header claims {n:,} bytes; "
                f"the file has {size - 8:,} after the length)")
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidParameterError(
            f"{path.name} is not a valid safetensors file (header is not JSON: {exc})") from None
    if not isinstance(header, dict):
        raise InvalidParameterError(f"{path.name} is not a valid safetensors file (header is a "
                                    f"JSON {type(header).__name__}, not an object)")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise InvalidParameterError(f"{path.name} is not a valid safetensors file (__metadata__ "
                                    "must map names to strings)")
    return header


def read_meta(path: Path, limits: Limits | None = None) -> dict[str, str]:
    """The header metadata of a safetensors file; a clear error when it is not one."""
    from safetensors import SafetensorError, safe_open

    read_header(path, limits)
    try:  # the library checks tensor offsets, dtypes and shapes against the file
        with safe_open(str(path), framework="numpy") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError) as exc:
        raise InvalidParameterError(f"{path.name} is not a valid safetensors file ({exc})") from None


_KINDS = {"config": dict, "classes": list, "metrics": dict}


def bundle_info(meta: dict[str, str], source: str = "model file") -> dict[str, Any]:
    """Decoded ``family``, ``config``, ``classes``, ``metrics`` and ``files`` of a bundle header.

    Each ``mll.*`` entry is JSON of a fixed kind; anything else is the file's error, named here.
    """
    def load(key: str, default: Any) -> Any:
        if PREFIX + key not in meta:
            return default
        try:
            value = json.loads(meta[PREFIX + key])
        except ValueError as exc:
            raise InvalidParameterError(
                f"{source}: header entry {PREFIX}{key} is not valid JSON ({exc})") from None
        kind = _KINDS[key]
        if not isinstance(value, kind):
            raise InvalidParameterError(
                f"{source}: header entry {PREFIX}{key} must be a JSON "
                f"{'object' if kind is dict else 'list'}, got {type(value).__name__} "
                f"{short_repr(value)}")
        if key == "classes" and not all(isinstance(c, str) and c.strip() for c in value):
            raise InvalidParameterError(
                f"{source}: header entry {PREFIX}classes must list non-empty class names")
        return value

    files = {k[len(PREFIX) + 5:]: v for k, v in meta.items() if k.startswith(PREFIX + "file.")}
    return {"family": meta.get(PREFIX + "family"), "config": load("config", {}),
            "classes": load("classes", None), "metrics": load("metrics", {}), "files": files}


def load_arrays(path: Path) -> dict[str, np.ndarray]:
    """All tensors as numpy arrays; truncated or damaged files raise a clear error."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as exc:
        raise InvalidParameterError(f"{path.name}: cannot read safetensors tensors ({exc})") from None


def write_files(files: dict[str, str], directory: Path, allowed: tuple[str, ...] | None = None,
                limits: Limits | None = None) -> None:
    """Write a bundle's embedded text files into ``directory``, treating each name as hostile.

    A name must be one plain file name (and one of ``allowed`` when given), so a header entry
    such as ``mll.file.../../x`` cannot write outside; the total size is bounded by
    ``Limits.max_metadata_bytes``. Everything is checked before the first file is written.
    """
    from ..._safepath import child_path, create_new

    targets = []
    for name, text in files.items():
        if allowed is not None and name not in allowed:
            raise InvalidParameterError(f"bundle carries an unexpected file {name!r} (expected "
                                        f"only {sorted(allowed)}); the file is damaged or crafted")
        targets.append((child_path(directory, name, "bundle file name"), text.encode("utf-8")))
    check("bundle's embedded files, in bytes", sum(len(b) for _, b in targets),
          "max_metadata_bytes", limits)
    for target, data in targets:
        with create_new(target) as out:
            out.write(data)
