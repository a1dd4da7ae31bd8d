"""The hostile-input suite: every test builds its bad input itself and states the contract.

Each test carries ``@pytest.mark.contract(area, given, does)``: the area ("security", "model
files", ...), the input in a few words, and what mll does with it. ``contract_table.py`` turns
those marks into the table in ``docs/hostile-input.md``; ``test_contract_doc.py`` keeps it current.
"""


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "contract(area, given, does): one row of the hostile-input table in docs")
