# One command each: `make repro` (set up + run the pipeline), `make test` (set up + run the tests).
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
FASHION_MNIST := /usr/share/datasets/fashion-mnist
export GX_ANALYTICS_ENABLED := False
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: setup data repro repro-serial test test-fast bench clean-venv

$(BIN)/activate: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(BIN)/activate

setup: $(BIN)/activate data
	@# What `dvc exp run --allow-missing` needs on a fresh clone: the validated arrays (byte-identical to dvc.lock's)
	@$(BIN)/dvc repro validate@fashion_mnist >/dev/null 2>&1 || \
	  echo "note: validate@fashion_mnist could not run (no Fashion-MNIST here?); run 'dvc repro validate@fashion_mnist' to see why"

# Fashion-MNIST: Debian's package where this machine can install it; else download@fashion_mnist fetches
# the official files (internet), else it stops with one message naming both ways.
data:
	@if [ -d $(FASHION_MNIST) ]; then exit 0; fi; \
	if command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  echo "Installing Debian's dataset-fashion-mnist (the real Fashion-MNIST, checksummed by the pipeline)"; \
	  (apt-get install -y -qq dataset-fashion-mnist >/dev/null 2>&1 || \
	   (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null)) || \
	  echo "note: could not install dataset-fashion-mnist; download@fashion_mnist will try the official URLs"; \
	else \
	  echo "note: $(FASHION_MNIST) is absent and apt-get needs root here: run 'sudo apt-get install dataset-fashion-mnist'," \
	       "or let download@fashion_mnist fetch the official files (needs internet); tests that need the data are skipped"; \
	fi

# The whole pipeline through the Prefect flow: independent stages in parallel (one per core), progress and
# ETA after each stage, recorded in dvc.lock exactly as `dvc repro` would (repro-serial: plain dvc repro).
repro: setup
	$(BIN)/python -m flows.pipeline --keep-going

repro-serial: setup
	$(BIN)/dvc repro --keep-going

test: setup
	$(BIN)/python -m pytest -q

test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow"

bench: setup
	$(BIN)/python bench/train_speed.py
	$(BIN)/python bench/study_cost.py
	$(BIN)/python bench/noop_dvc.py

clean-venv:
	rm -rf $(VENV)
