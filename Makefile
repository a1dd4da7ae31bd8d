# The two commands of the README: `make demo` and `make test`. Each installs what it needs first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONHASHSEED := 0

.PHONY: setup demo test lint bench serve clean

setup:
	@bash scripts/setup.sh

demo: setup
	@bash scripts/demo.sh

test: setup
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q

bench: setup
	$(PY) -m mll bench --out bench-results

serve: setup
	$(PY) -m mll serve $(SERVE_ARGS)

clean:
	rm -rf $(VENV) node_modules .pytest_cache
