"""One JSON form for what mll returns: the CLI's ``--json`` and the server's answers share it."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any


def default(obj: Any) -> Any:
    """``json.dumps(default=...)``: dataclasses as dicts, paths as text, arrays and sets as lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def dumps(obj: Any, *, indent: int | None = 2) -> str:
    """The JSON text of ``obj``, non-ASCII characters kept as they are."""
    return json.dumps(obj, default=default, indent=indent, ensure_ascii=False)


def plain(obj: Any) -> Any:
    """``obj`` as plain JSON values (dicts, lists, numbers, strings), as :func:`dumps` writes it."""
    return json.loads(dumps(obj, indent=None))
