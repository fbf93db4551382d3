# Two commands on a fresh Debian machine with Python 3.11+:  make demo  |  make test
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: demo test install install-dev check bench serve clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e .

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev,spark]'

demo: install  ## migrate an embedded SQLite database, load the demo program, serve on :8000
	$(BIN)/allegiance demo --serve

test: install-dev  ## the whole suite: SQLite, then PostgreSQL (started by scripts/test)
	bash scripts/test

check: install-dev  ## lint, types, import contracts
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: install-dev  ## benchmarks; results go to bench/results and docs/benchmarks.md
	bash scripts/bench

serve: install
	$(BIN)/allegiance serve

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
