# One command each: `make repro` (set up + run the pipeline), `make test` (set up + run the tests).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export GX_ANALYTICS_ENABLED := False
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup repro test bench clean-venv

$(BIN)/activate: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(BIN)/activate

setup: $(BIN)/activate

repro: setup
	$(BIN)/dvc repro --keep-going

test: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/flow_vs_repro.py

clean-venv:
	rm -rf $(VENV)
