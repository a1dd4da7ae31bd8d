"""Options shared by every command: where the hub is and how to print."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from .._json import dumps
from ..config import resolve_hub


def hub_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--hub", "hub", type=click.Path(file_okay=False, path_type=Path),
                        default=None, envvar="MLL_HUB",
                        help="Hub directory (default: $MLL_HUB or ~/.local/share/mll/hub).",
                        callback=lambda ctx, param, value: resolve_hub(value))(fn)


def json_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout.")(fn)


def emit_json(obj: Any) -> None:
    click.echo(dumps(obj))
