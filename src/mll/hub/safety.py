"""Checks every uploaded file passes before anything parses it: size, and no pickle.

A pickle runs arbitrary code when loaded, so the hub refuses every format that needs one (a plain
``torch.save`` of a module, joblib and ``.pkl`` files, legacy ``.bin`` checkpoints) and names the
safe formats instead. Detection looks at the bytes, not only the file name.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ..errors import InvalidParameterError, UnsafeFormatError

DEFAULT_MAX_BYTES = 2 * 1024**3
PICKLE_SUFFIXES = {".pt": "torch.save", ".pth": "torch.save", ".ckpt": "checkpoint",
                   ".bin": "PyTorch .bin checkpoint", ".pkl": "pickle", ".pickle": "pickle",
                   ".joblib": "joblib", ".npz": "numpy archive"}

CONVERT_HINT = ("convert a PyTorch model with "
                "safetensors.torch.save_file(model.state_dict(), 'model.safetensors') or export it "
                "with torch.onnx.export")


def safe_formats() -> str:
    """The formats the hub accepts, in words: each family declares its own ``SAFE_FORMAT``."""
    from .adapters import families

    named = [families.get(n).SAFE_FORMAT for n in families if families.get(n).SAFE_FORMAT]
    return ", ".join(named[:-1]) + (", or " if len(named) > 1 else "") + named[-1]


def _is_safetensors(path: Path, head: bytes) -> bool:
    """An 8-byte little-endian header length, then that many bytes of a JSON object.

    The length's first byte can be 0x80 followed by 2..5 (a 0x0380-byte header, say), which on
    its own looks like a pickle's first two bytes.
    """
    size = int.from_bytes(head[:8], "little")
    if head[8:9] != b"{" or size + 8 > path.stat().st_size:
        return False
    with open(path, "rb") as fh:
        fh.seek(8)
        try:
            return isinstance(json.loads(fh.read(size)), dict)
        except ValueError:
            return False


def _pickle_kind(path: Path) -> str | None:
    """What kind of pickle-based file ``path`` is, or None when it is not one."""
    with open(path, "rb") as fh:
        head = fh.read(9)
    if (len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5
            and not _is_safetensors(path, head)):
        return "pickle"
    if head[:4] == b"PK\x03\x04" and zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            if any(n.endswith(".pkl") for n in zf.namelist()):
                return "torch.save"
    return PICKLE_SUFFIXES.get(path.suffix.lower())


def refuse_unsafe(path: Path) -> None:
    """Raise :class:`UnsafeFormatError` if loading ``path`` would need pickle."""
    kind = _pickle_kind(path)
    if kind is not None:
        raise UnsafeFormatError(
            f"{path.name} is a {kind} file, which needs pickle (arbitrary code) to load; the hub "
            f"accepts only safe formats: {safe_formats()}. Hint: {CONVERT_HINT}")


def check_size(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> int:
    """The size of ``path`` (a directory counts all its files), refusing more than ``max_bytes``."""
    files = [p for p in path.rglob("*") if p.is_file()] if path.is_dir() else [path]
    size = sum(p.stat().st_size for p in files)
    if size > max_bytes:
        raise InvalidParameterError(
            f"{path} is {size / 1e6:.1f} MB; the hub accepts models up to {max_bytes / 1e6:.1f} MB "
            "(raise the limit with --max-size)")
    if size == 0:
        raise InvalidParameterError(f"{path} is empty; not a model file")
    return size


def check_upload(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Existence, size and pickle checks for what is given to ``hub add``.

    For a directory only the size is checked here; each family refuses the unsafe files it would
    otherwise read (a Hugging Face directory may hold a ``.bin`` beside its ``.safetensors``).
    """
    if not path.exists():
        raise InvalidParameterError(f"model path {path} does not exist")
    check_size(path, max_bytes)
    if path.is_file():
        refuse_unsafe(path)
