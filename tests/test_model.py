"""The layer stack a run's configuration builds (dropout placement, batch-norm order); JAX runs without TensorFlow."""
from __future__ import annotations

import json
import sys

import pytest

from tests.helpers import PROJECT_ROOT, run

BUILD = """
import json, sys
from ch11.training import backend
backend.select("jax")
from ch11 import params
from ch11.training import model
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
    out = run([sys.executable, "-c", BUILD, json.dumps(updates)], PROJECT_ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("run", CASES)
def test_layer_order_follows_the_configuration(stacks, run):
    assert stacks[run] == CASES[run][1]



SMOOTHING = """
import json
import numpy as np
from ch11.training import backend
backend.select("jax")
from ch11 import params
from ch11.training import model
config = params.load().run("e11_label_smoothing")
loss = model.loss_of(config)
probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]], dtype="float32")
labels = np.array([0, 1])
target = (1 - 0.1) * np.eye(3)[labels] + 0.1 / 3
expected = float(np.mean(-(target * np.log(probs)).sum(axis=1)))
print(json.dumps({"plain": model.loss_of(params.load().run("baseline_es")), "got": float(loss(labels, probs)),
                  "expected": expected, "config": loss.get_config()["smoothing"]}))
"""


def test_label_smoothing_targets_and_the_unchanged_plain_loss():
    """Smoothing 0.1 gives (1 - 0.1) * one_hot + 0.1 / classes as the target; smoothing 0 keeps Keras' own
    sparse cross-entropy (the code path, hence the numbers, of every other run)."""
    out = run([sys.executable, "-c", SMOOTHING], PROJECT_ROOT, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["plain"] == "sparse_categorical_crossentropy"
    assert found["got"] == pytest.approx(found["expected"], rel=1e-5) and found["config"] == 0.1


FIT_ON_JAX = """
import sys
import numpy as np
from ch11.training import backend
backend.select("jax")
backend.seed_everything(1, False)
import keras
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
model.compile(optimizer="sgd", loss="mse")
model.fit(np.zeros((8, 4)), np.zeros((8, 2)), verbose=0)
print("tensorflow" in sys.modules)
"""


def test_seeding_and_fitting_on_jax_never_load_tensorflow():
    """keras.utils.set_random_seed imports TensorFlow to seed it; a JAX training must not pay for that."""
    done = run([sys.executable, "-c", FIT_ON_JAX], PROJECT_ROOT, timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"
