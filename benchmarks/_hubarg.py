"""The labelled hub the serving and labelling benchmarks start from: ``--hub``, by default
``$MLL_TEST_HUB`` or the tests' quick starter hub ``.test-hub``, checked before anything runs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def add_hub_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hub", type=Path,
                        default=Path(os.environ.get("MLL_TEST_HUB", REPO / ".test-hub")),
                        help="A labelled hub (default: $MLL_TEST_HUB, else .test-hub); it is "
                             "copied, never changed.")


def hub_problem(hub: Path) -> str | None:
    """One ``Error:`` line when ``hub`` is not a labelled hub, else None."""
    if (hub / "mll.db").exists() and (hub / "labels").is_dir():
        return None
    return f"Error: no labelled hub at {hub}; build one with 'mll starter --quick'"
