"""Where the installed data packages are, found without importing them."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ...errors import MissingDependencyError


def node_modules() -> Path:
    """``$MLL_NODE_MODULES``, else the nearest ``node_modules`` above the working directory or
    above this package (the repository's, where ``make setup`` runs ``npm install``)."""
    if os.environ.get("MLL_NODE_MODULES"):
        return Path(os.environ["MLL_NODE_MODULES"])
    for base in (Path.cwd(), Path(__file__).resolve()):
        for parent in (base, *base.parents):
            if (parent / "node_modules" / "@iconify-json").is_dir():
                return parent / "node_modules"
    return Path.cwd() / "node_modules"


def python_package_dir(name: str) -> Path:
    """The directory of an installed top-level package, without executing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(f"Python package {name!r} is not installed; run make setup")
    return Path(next(iter(spec.submodule_search_locations)))
