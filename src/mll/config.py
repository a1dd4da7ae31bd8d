"""Where mll keeps what it builds: the hub directory and its database URL.

Resolution order for both: explicit argument, then environment (``MLL_HUB``, ``MLL_DB``), then the
documented default (``$XDG_DATA_HOME/mll/hub``, i.e. ``~/.local/share/mll/hub``; the database is
``<hub>/mll.db``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def default_hub() -> Path:
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "mll" / "hub"


def resolve_hub(path: str | os.PathLike[str] | None = None) -> Path:
    """The hub directory, from the argument, ``MLL_HUB`` or the default (not created here)."""
    chosen = path if path not in (None, "") else os.environ.get("MLL_HUB") or default_hub()
    return Path(chosen).expanduser().resolve()


@dataclass(frozen=True)
class HubPaths:
    """The fixed layout of a hub directory; every stage finds its inputs here."""

    root: Path

    @property
    def graph(self) -> Path:
        return self.root / "graph"

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def corpus(self) -> Path:
        return self.root / "corpus"

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    @property
    def labels(self) -> Path:
        return self.root / "labels"

    @property
    def db_file(self) -> Path:
        return self.root / "mll.db"


def resolve_db(url: str | None = None, hub: Path | None = None) -> str:
    """The SQLAlchemy URL of the hub's metadata store."""
    if url:
        return url
    if os.environ.get("MLL_DB"):
        return os.environ["MLL_DB"]
    return f"sqlite:///{HubPaths(resolve_hub(hub)).db_file}"
