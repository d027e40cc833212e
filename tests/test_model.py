"""The layer stack a run's configuration builds: dropout placement and batch-norm order."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

BUILD = """
import json, sys
from ch11 import backend
backend.select("jax")
from ch11 import model, params
stacks = {}
for run, update in json.loads(sys.argv[1]).items():
    config = params.load().run(run).model_copy(update=update)
    built = model.build_model(784, 10, config)
    stacks[run] = [type(layer).__name__ for layer in built.layers]
print(json.dumps(stacks))
"""

CASES = {  # run -> (configuration change, expected layers); hidden [300, 200, 100] unless said
    "baseline": ({}, ["Dense", "Activation"] * 3 + ["Dense"]),
    "e11_dropout_20": ({}, ["Dropout", "Dense", "Activation"] * 3 + ["Dropout", "Dense"]),
    "e13_production_common": ({}, ["Dense", "BatchNormalization", "Activation", "Dropout"] * 3 + ["Dense"]),
    "e13_production": ({}, ["Dropout", "Dense", "Activation", "BatchNormalization"] * 3 + ["Dropout", "Dense"]),
    "x08_alpha_dropout": ({"hidden": [100, 100]}, ["Dense", "Activation"] * 2 + ["AlphaDropout", "Dense"]),
}


@pytest.fixture(scope="module")
def stacks() -> dict:
    updates = {run: update for run, (update, _) in CASES.items()}
    out = subprocess.run([sys.executable, "-c", BUILD, json.dumps(updates)], capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("run", CASES)
def test_layer_order_follows_the_configuration(stacks, run):
    assert stacks[run] == CASES[run][1]

