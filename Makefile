# Two entry points for a fresh machine (see README.md):
#   make smoke   - installs into .venv, then runs the whole pipeline on config/smoke.yaml (CPU, no network)
#   make test    - installs into .venv, then runs the test suite
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install smoke test lint bench clean-results

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

smoke: $(STAMP)
	$(BIN)/snakemake all --workflow-profile workflow/profiles/ci

test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint --workflow-profile workflow/profiles/ci

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-results:
	rm -rf results logs benchmarks/rules .snakemake
