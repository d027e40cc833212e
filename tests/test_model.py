"""The layer stack a run's configuration builds (dropout placement, batch-norm order); JAX runs without TensorFlow."""
from __future__ import annotations

import json

import pytest
import yaml

from tests.helpers import PROJECT_ROOT, program, run


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
    out = run(program("layer_stacks", json.dumps(updates)), PROJECT_ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("run", CASES)
def test_layer_order_follows_the_configuration(stacks, run):
    assert stacks[run] == CASES[run][1]


def test_label_smoothing_targets_and_the_unchanged_plain_loss():
    """Smoothing 0.1 gives (1 - 0.1) * one_hot + 0.1 / classes as the target; smoothing 0 keeps Keras' own
    sparse cross-entropy (the code path, hence the numbers, of every other run)."""
    out = run(program("label_smoothing"), PROJECT_ROOT, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["plain"] == "sparse_categorical_crossentropy"
    assert found["got"] == pytest.approx(found["expected"], rel=1e-5) and found["config"] == 0.1


def test_seeding_and_fitting_on_jax_never_load_tensorflow():
    """keras.utils.set_random_seed imports TensorFlow to seed it; a JAX training must not pay for that."""
    done = run(program("jax_fit"), PROJECT_ROOT, timeout=120, check=True)
    assert done.stdout.strip().splitlines()[-1] == "False"


def test_every_optimizer_in_the_table_builds_its_keras_class_with_the_tables_values(tmp_path):
    """A name in params.yaml's `optimizers` table is a Keras optimizer of that name, and each key of its entry
    reaches that optimizer under the key's own name with the table's value (null: Keras' default, none)."""
    table = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))["optimizers"]
    out = run(program("optimizer_table", str(tmp_path)), PROJECT_ROOT, check=True)
    built = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(built) == set(table)
    for name, (cls, config) in built.items():
        assert cls.lower() == name
        assert {key: config[key] for key in table[name]} == table[name], name
