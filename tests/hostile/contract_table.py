"""Render docs/hostile-input.md from the ``contract`` marks of the hostile-input tests.

Run ``python tests/hostile/contract_table.py > docs/hostile-input.md`` after adding a test.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

HERE = Path(__file__).resolve().parent
HEADER = """# What mll does with hostile and careless input

Generated from the `contract` marks of `tests/hostile/` by `python tests/hostile/contract_table.py`;
every row is a test that builds the input itself and checks the behaviour. Limits are set with
environment variables (`MLL_MAX_IMAGE_PIXELS`, `MLL_MAX_MODEL_BYTES`, ...; see `mll/limits.py`).
"""


def rows() -> list[tuple[str, str, str, str]]:
    """(area, input, behaviour, test) for every marked test, in file then definition order."""
    out = []
    for path in sorted(HERE.glob("test_*.py")):
        spec = importlib.util.spec_from_file_location(f"_hostile_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        tests = [(name, fn) for name, fn in vars(module).items()
                 if name.startswith("test_") and callable(fn)]
        tests.sort(key=lambda t: inspect.getsourcelines(t[1])[1])
        for name, fn in tests:
            for mark in getattr(fn, "pytestmark", []):
                if mark.name == "contract":
                    area, given, does = mark.args
                    out.append((area, given, does, f"{path.name}::{name}"))
    return out


def render() -> str:
    lines = [HEADER]
    areas: dict[str, list[tuple[str, str, str]]] = {}
    for area, given, does, test in rows():
        areas.setdefault(area, []).append((given, does, test))
    for area, items in areas.items():
        lines += [f"## {area}", "", "| input | what mll does | test |", "|---|---|---|"]
        lines += [f"| {g} | {d} | `{t}` |" for g, d, t in items]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(render(), end="")
