"""Train one (run, seed) on either Keras backend: fixed data order, callbacks, exact resume, predictions.

Determinism by construction: epoch e sees the training set in the order ``epoch_order(seed, e)`` and
every epoch's end saves all state (weights, optimizer, dropout RNG, callback counters, history), so a
run killed after any epoch and resumed continues exactly as the uninterrupted run would have.
"""
from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd

from ch11 import atomic
from ch11.training import clipping, model as model_mod
from ch11.params import RunConfig

TRAIN_EVAL_SIZE = 5000   # training images scored in inference mode after each epoch (overfitting gap)
INFERENCE_BATCH = 1024
STATEFUL = {keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
            keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch")}


def epoch_order(seed: int, epoch: int, n: int) -> np.ndarray:
    """The order of the ``n`` training examples in ``epoch`` (0-based): a function of (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(n)


class EpochBatches(keras.utils.PyDataset):
    """Training batches in ``epoch_order`` from ``first_epoch`` on (any backend; the JAX path)."""

    def __init__(self, x, y, batch_size: int, seed: int, first_epoch: int):
        super().__init__()
        self.x, self.y, self.batch_size, self.seed, self.epoch = x, y, batch_size, seed, first_epoch
        self.order = epoch_order(seed, first_epoch, len(x))

    def __len__(self) -> int:
        return math.ceil(len(self.x) / self.batch_size)

    def __getitem__(self, i):
        rows = self.order[i * self.batch_size:(i + 1) * self.batch_size]
        return self.x[rows], self.y[rows]

    def on_epoch_end(self):
        self.epoch += 1
        self.order = epoch_order(self.seed, self.epoch, len(self.x))


def tf_batches(x, y, batch_size: int, seed: int, first_epoch: int, epochs: int):
    """The same batches as ``EpochBatches`` as a tf.data pipeline (TensorFlow reads it ~1.7x faster than a
    PyDataset): each pass reads the epoch from a variable that the returned callback advances."""
    import tensorflow as tf

    orders = tf.constant(np.stack([epoch_order(seed, e, len(x)) for e in range(first_epoch, epochs)]),
                         dtype=tf.int32)
    epoch = tf.Variable(0, dtype=tf.int32, trainable=False)
    xs, ys = tf.constant(x), tf.constant(y)
    rows = tf.data.Dataset.from_tensors(0).flat_map(
        lambda _: tf.data.Dataset.from_tensor_slices(tf.gather(orders, epoch)).batch(batch_size)
    ).apply(tf.data.experimental.assert_cardinality(math.ceil(len(x) / batch_size)))  # else Keras warns
    advance = keras.callbacks.LambdaCallback(on_epoch_end=lambda *_: epoch.assign_add(1))
    return rows.map(lambda r: (tf.gather(xs, r), tf.gather(ys, r))).prefetch(tf.data.AUTOTUNE), advance


def inference_input(x, y=None) -> dict:
    """Keyword arguments ``x`` (, ``y``, ``batch_size``) for ``evaluate``/``predict``. On TensorFlow a plain
    tf.data pipeline: Keras' array adapter adds a parallel map that op determinism rewrites, and TensorFlow
    then logs a harmless but alarming ``NodeDef mentions attribute use_unbounded_threadpool`` error."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return {"x": tf.data.Dataset.from_tensor_slices(x if y is None else (x, y)).batch(INFERENCE_BATCH)}
    return {"x": x, "batch_size": INFERENCE_BATCH} | ({} if y is None else {"y": y})


class EpochLog(keras.callbacks.Callback):
    """Per epoch: learning rate, inference-mode accuracy on the first training images, and the row kept."""

    def __init__(self, x_train, y_train, rows: list[dict]):
        super().__init__()
        self.x, self.y, self.rows = x_train[:TRAIN_EVAL_SIZE], y_train[:TRAIN_EVAL_SIZE], rows

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        scores = self.model.evaluate(**inference_input(self.x, self.y), verbose=0, return_dict=True)
        logs["train_eval_accuracy"] = float(scores["accuracy"])
        self.rows.append({"epoch": epoch, **{k: float(v) for k, v in logs.items()}})


class Progress(keras.callbacks.Callback):
    """A line after the first epoch this process trains, then about every ``every_s`` seconds: epoch k of n,
    validation accuracy and an upper bound of the time left (early stopping may end the seed sooner)."""

    def __init__(self, label: str, epochs: int, every_s: float = 30.0):
        super().__init__()
        self.label, self.epochs, self.every_s = label, epochs, every_s
        self.start, self.first, self.last = time.monotonic(), None, None

    def on_epoch_end(self, epoch, logs=None):
        now, self.first = time.monotonic(), epoch if self.first is None else self.first
        if epoch + 1 == self.epochs or (self.last is not None and now - self.last < self.every_s):
            return
        self.last = now
        left = (now - self.start) / (epoch + 1 - self.first) * (self.epochs - epoch - 1)
        print(f"{self.label}: epoch {epoch + 1}/{self.epochs}, val acc {(logs or {}).get('val_accuracy', 0):.4f}, "
              f"<= {left:.0f} s left", flush=True)


class Checkpoint(keras.callbacks.Callback):
    """After each epoch, everything a resumed run needs, swapped into ``folder`` atomically."""

    def __init__(self, folder: Path, rows: list[dict], stateful: list):
        super().__init__()
        self.folder, self.rows, self.stateful = folder, rows, stateful

    def on_epoch_end(self, epoch, logs=None):
        with atomic.atomic_path(self.folder, is_dir=True) as tmp:
            save_state(self.model, self.stateful, self.rows, epoch + 1, tmp)


def rng_states(model) -> list:
    """The dropout layers' seed-generator states (not part of Keras weight files)."""
    return [v for v in model.variables if v.path.endswith("seed_generator_state")]


def plain(value):
    """A callback counter as a JSON value (NumPy/backend scalars become floats or ints)."""
    if value is None or isinstance(value, (int, float)):
        return value
    return float(keras.ops.convert_to_numpy(value))


def save_state(model, stateful: list, rows: list[dict], epochs_done: int, folder: Path) -> None:
    model.save_weights(folder / "model.weights.h5")
    np.savez(folder / "rng.npz", *[keras.ops.convert_to_numpy(v) for v in rng_states(model)])
    callbacks = []
    for cb in stateful:
        state = {a: plain(getattr(cb, a)) for a in STATEFUL[type(cb)]}
        if getattr(cb, "best_weights", None) is not None:
            np.savez(folder / "best_weights.npz", *cb.best_weights)
        callbacks.append(state)
    (folder / "state.json").write_text(json.dumps({"epochs_done": epochs_done, "rows": rows,
                                                   "callbacks": callbacks}))


def restore_state(model, stateful: list, rows: list[dict], folder: Path) -> int:
    """Load a checkpoint saved by ``Checkpoint``; returns the number of epochs already done (0: none)."""
    if not (folder / "state.json").exists():
        return 0
    state = json.loads((folder / "state.json").read_text())
    model.optimizer.build(model.trainable_variables)
    model.load_weights(folder / "model.weights.h5")
    with np.load(folder / "rng.npz") as saved:
        for var, key in zip(rng_states(model), saved.files):
            var.assign(saved[key])
    for cb, saved_cb in zip(stateful, state["callbacks"]):
        for attr, value in saved_cb.items():
            setattr(cb, attr, value)
        if (folder / "best_weights.npz").exists() and hasattr(cb, "best_weights"):
            with np.load(folder / "best_weights.npz") as best:
                cb.best_weights = [best[k] for k in best.files]
    rows[:] = state["rows"]
    return state["epochs_done"]


class Resumable(keras.callbacks.Callback):
    """Stops Keras callbacks' ``on_train_begin`` from resetting the counters restored from a checkpoint."""

    def __init__(self, inner, restored: bool):
        super().__init__()
        self.inner, self.restored = inner, restored

    def set_model(self, model):
        super().set_model(model)
        self.inner.set_model(model)

    def on_train_begin(self, logs=None):
        if not self.restored:
            self.inner.on_train_begin(logs)

    def on_epoch_begin(self, epoch, logs=None):
        self.inner.on_epoch_begin(epoch, logs)

    def on_epoch_end(self, epoch, logs=None):
        self.inner.on_epoch_end(epoch, logs)

    def on_train_end(self, logs=None):
        self.inner.on_train_end(logs)


def stateful_callbacks(config: RunConfig) -> list:
    """The callbacks whose counters a checkpoint keeps: the schedule's (plateau) and early stopping."""
    found = model_mod.schedule_callbacks(config.schedule)
    if config.early_stopping.patience:
        found.append(keras.callbacks.EarlyStopping(
            monitor="val_loss", patience=config.early_stopping.patience,
            restore_best_weights=config.early_stopping.restore_best_weights))
    return found


def fit(model, config: RunConfig, data: dict, seed: int, workdir: Path, *, epochs: int,
        first_epoch: int = 0, rows: list[dict] | None = None, callbacks: list | tuple = ()) -> list[dict]:
    """Train epochs ``first_epoch`` .. ``epochs - 1`` (resuming from ``workdir`` when it holds a checkpoint
    of this phase); returns the per-epoch rows of the whole history. ``callbacks``: extra ones that only
    watch (progress), run after the checkpoint."""
    rows = [] if rows is None else rows
    stateful = stateful_callbacks(config)
    done = restore_state(model, stateful, rows, workdir)
    start = max(first_epoch, done)
    if start >= epochs or any(getattr(cb, "stopped_epoch", 0) for cb in stateful):
        for cb in stateful:  # finished before the kill: EarlyStopping restores the best weights
            cb.set_model(model)
            cb.on_train_end()
        return rows
    x, y = data["train"]
    if keras.backend.backend() == "tensorflow":
        batches, advance = tf_batches(x, y, config.batch_size, seed, start, epochs)
        extra = [advance]
    else:
        batches, extra = EpochBatches(x, y, config.batch_size, seed, start), []
    if config.clip_value or config.clip_norm:
        extra.append(clipping.ClipShare(math.ceil(len(x) / config.batch_size)))
    callbacks = [*extra, EpochLog(x, y, rows), keras.callbacks.TerminateOnNaN(),
                 *[Resumable(cb, restored=done > 0) for cb in stateful], Checkpoint(workdir, rows, stateful),
                 *callbacks]
    valid = inference_input(*data["valid"])
    model.fit(batches, validation_data=(valid["x"], valid["y"]) if "y" in valid else valid["x"],
              validation_batch_size=valid.get("batch_size"), epochs=epochs,
              initial_epoch=start, shuffle=False, verbose=0, callbacks=callbacks)
    return rows


def history_frame(rows: list[dict]) -> pd.DataFrame:
    """The per-epoch history: epoch (1-based), loss, accuracy, val_*, train_eval_accuracy, learning_rate (and
    clip_share for runs with clipping)."""
    frame = pd.DataFrame(rows)
    frame["epoch"] = frame["epoch"] + 1
    first = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "train_eval_accuracy", "learning_rate"]
    return frame[first + sorted(c for c in frame.columns if c not in first)]


def predict(model, x: np.ndarray) -> np.ndarray:
    return model.predict(**inference_input(x), verbose=0)


def mc_predict(model, x: np.ndarray, samples: int, batch_size: int = INFERENCE_BATCH) -> np.ndarray:
    """MC dropout: mean of ``samples`` passes with (alpha) dropout active and everything else in inference."""
    stochastic = (keras.layers.Dropout, keras.layers.AlphaDropout)
    total = np.zeros((len(x), model.output_shape[-1]), dtype=np.float64)
    for _ in range(samples):
        for start in range(0, len(x), batch_size):
            h = keras.ops.convert_to_tensor(x[start:start + batch_size])
            for layer in model.layers:
                h = layer(h, training=isinstance(layer, stochastic))
            total[start:start + batch_size] += keras.ops.convert_to_numpy(h)
    return (total / samples).astype(np.float32)


def save_model(model, path: Path) -> None:
    """``model.save`` made byte-reproducible: no save date, object ids renumbered, fixed zip times."""
    def rewrite(name: str, data: bytes) -> bytes:
        if name == "metadata.json":
            meta = json.loads(data)
            meta.pop("date_saved", None)
            return json.dumps(meta, sort_keys=True).encode()
        if name == "config.json":  # shared_object_id values are Python id()s: renumber in order seen
            ids: dict[bytes, str] = {}
            return re.sub(rb'"shared_object_id": (\d+)',
                          lambda m: b'"shared_object_id": ' + ids.setdefault(m[1], str(len(ids) + 1)).encode(),
                          data)
        return data

    model.save(path)
    atomic.normalize_zip(path, rewrite)

