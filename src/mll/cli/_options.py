"""Options shared by every command: where the hub is and how to print."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from ..config import resolve_hub


def hub_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--hub", "hub", type=click.Path(file_okay=False, path_type=Path),
                        default=None, envvar="MLL_HUB",
                        help="Hub directory (default: $MLL_HUB or ~/.local/share/mll/hub).",
                        callback=lambda ctx, param, value: resolve_hub(value))(fn)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout.")(fn)


def _default(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def emit_json(obj: Any) -> None:
    click.echo(json.dumps(obj, default=_default, indent=2, ensure_ascii=False))
