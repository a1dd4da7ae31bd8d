"""The hostile-input table in docs is generated from the tests and must match them."""

import importlib.util
from pathlib import Path

HERE = Path(__file__).resolve().parent
DOC = HERE.parents[1] / "docs" / "hostile-input.md"


def test_table_in_docs_is_current():
    spec = importlib.util.spec_from_file_location("_contract_table", HERE / "contract_table.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.rows(), "no contract marks found"
    assert DOC.read_text() == module.render(), (
        "docs/hostile-input.md is stale: python tests/hostile/contract_table.py > "
        "docs/hostile-input.md")
