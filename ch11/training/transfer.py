"""Transfer learning as in the book: reuse a trained run's hidden layers, freeze, then unfreeze."""
from __future__ import annotations

from pathlib import Path

import keras

from ch11 import paths
from ch11.training import model as model_mod, engine
from ch11.params import RunConfig


def transferred_model(config: RunConfig, seed: int, classes: int) -> keras.Sequential:
    """The base run's (same seed) layers but its output layer, plus a new output layer; reused layers frozen."""
    base = keras.models.load_model(paths.model_file(config.transfer.base, seed))   # checked: pool.train_pending
    reused = base.layers[:-1]
    for layer in reused:
        layer.trainable = False
    head = keras.layers.Dense(classes, activation="softmax", dtype="float32", name="task_output")
    return keras.Sequential([keras.Input(shape=base.input_shape[1:]), *reused, head])


def fit_transfer(model, config: RunConfig, data: dict, seed: int, workdir: Path, steps: int,
                 callbacks: list | tuple = ()) -> list[dict]:
    """Train the new head for ``freeze_epochs`` with reused layers frozen, then everything at a lower rate."""
    freeze = min(config.transfer.freeze_epochs, config.epochs)
    model_mod.compile_model(model, config, steps)
    rows = engine.fit(model, config, data, seed, workdir / "frozen", epochs=freeze, callbacks=callbacks)
    for layer in model.layers:
        layer.trainable = True
    model_mod.compile_model(model, config, steps, lr0=config.transfer.unfrozen_learning_rate)
    return engine.fit(model, config, data, seed, workdir / "unfrozen", epochs=config.epochs,
                        first_epoch=freeze, rows=rows, callbacks=callbacks)
