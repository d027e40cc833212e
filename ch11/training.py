"""Train one (run, seed): deterministic set-up, fast input pipeline, callbacks, probes, predictions."""
from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from ch11 import atomic
from ch11.errors import PipelineError
from ch11.params import RunConfig


def configure_tensorflow(seed: int, mixed_precision: bool) -> None:
    """Seed every RNG, make ops deterministic, use CH11_THREADS threads per op (default 1).

    One thread by default: float reductions then do not depend on the core count, so a (run, seed)
    gives bit-identical results on any CPU host, and parallel trainings share the cores without contention.
    """
    threads = int(os.environ.get("CH11_THREADS", "1"))
    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()
    if mixed_precision and tf.config.list_physical_devices("GPU"):
        keras.mixed_precision.set_global_policy("mixed_float16")


def dataset(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int, shuffle: bool):
    """An in-memory tf.data pipeline: shuffled each epoch with a fixed seed, batched, prefetched."""
    ds = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        ds = ds.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class EpochLog(keras.callbacks.Callback):
    """Adds the learning rate and the epoch's wall time to the logs (placed before CSVLogger)."""

    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["learning_rate"] = float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
        logs["epoch_time"] = time.perf_counter() - self.start


def callbacks(config: RunConfig, workdir: Path, resume: bool) -> list:
    found = [EpochLog(), keras.callbacks.TerminateOnNaN(),
             keras.callbacks.CSVLogger(str(workdir / "history.csv"), append=True)]
    if resume:
        # two checkpoints: a kill while one is being written leaves the previous one to resume from
        found.append(keras.callbacks.BackupAndRestore(str(workdir / "backup"), double_checkpoint=True))
    if config.schedule.name == "plateau":
        found.append(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=config.schedule.factor,
                                                       patience=config.schedule.patience))
    if config.early_stopping:
        found.append(keras.callbacks.EarlyStopping(monitor="val_loss",
                                                   patience=config.early_stopping.patience,
                                                   restore_best_weights=config.early_stopping.restore_best_weights))
    return found


def fit(model, config: RunConfig, train, valid, workdir: Path, *, epochs: int, initial_epoch: int = 0,
        resume: bool = True) -> None:
    model.fit(train, validation_data=valid, epochs=epochs, initial_epoch=initial_epoch, verbose=2,
              callbacks=callbacks(config, workdir, resume))


def compile_model(model, optimizer, config: RunConfig) -> None:
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"],
                  steps_per_execution=config.steps_per_execution)


def start_workdir(workdir: Path) -> bool:
    """Prepare the checkpoint folder; True when an interrupted run's backup is there to resume from."""
    resuming = (workdir / "backup").exists() and (workdir / "history.csv").exists()
    if not resuming:
        shutil.rmtree(workdir, ignore_errors=True)
        workdir.mkdir(parents=True)
    return resuming


def predict(model, x: np.ndarray, batch_size: int = 1024) -> np.ndarray:
    return model.predict(x, batch_size=batch_size, verbose=0)


def mc_predict(model, x: np.ndarray, samples: int, batch_size: int = 1024) -> np.ndarray:
    """MC dropout: mean of ``samples`` passes with (alpha) dropout active and everything else in inference."""
    stochastic = (keras.layers.Dropout, keras.layers.AlphaDropout)
    ds = tf.data.Dataset.from_tensor_slices(x).batch(batch_size)

    @tf.function
    def one_pass(batch):
        h = batch
        for layer in model.layers:
            h = layer(h, training=isinstance(layer, stochastic))
        return h

    total = np.zeros((len(x), model.output_shape[-1]), dtype=np.float64)
    for _ in range(samples):
        total += np.concatenate([one_pass(b).numpy() for b in ds])
    return (total / samples).astype(np.float32)


def final_history(workdir: Path) -> pd.DataFrame:
    """The per-epoch log; an epoch logged twice (killed between log and backup, then resumed) kept once."""
    path = workdir / "history.csv"
    if not path.exists():
        raise PipelineError(f"{path} missing after training; the run recorded no epoch.")
    return pd.read_csv(path).drop_duplicates("epoch", keep="last").reset_index(drop=True)


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
