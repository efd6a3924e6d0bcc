# kgbias: `make paper` regenerates every figure and table; `make test` runs the test suite.
# Both build the virtual environment first when needed.

PYTHON ?= python3
VENV ?= .venv
# Users get the default torch build for their platform; CI pins the local CPU wheel.
TORCH_REQUIREMENT ?= torch
BIN := $(VENV)/bin
STAMP := $(VENV)/.kgbias-installed

.PHONY: setup test paper lab bench clean-results help

help:
	@echo "make setup   build $(VENV) with kgbias and its dependencies"
	@echo "make test    run the test suite (what CI runs)"
	@echo "make paper   regenerate every figure and table into figures/"
	@echo "make lab     open JupyterLab on notebooks/"
	@echo "make bench   speed benchmark (not part of test or CI)"

setup: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_REQUIREMENT)"
	$(BIN)/python -m pip install --quiet -e ".[notebooks,test]"
	touch $@

test: $(STAMP)
	$(BIN)/python -m pytest

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

bench: $(STAMP)
	$(BIN)/python -m bench
