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

# pytest exits 5 when it collects no test: that is a failure here, never a pass
test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider; rc=$$?; \
	  if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/snakemake --lint --workflow-profile workflow/profiles/ci

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean-results:
	rm -rf results logs benchmarks/rules .snakemake
