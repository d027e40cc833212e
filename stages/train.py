"""Stage train@<run>-<seed>: train one run with one seed; write the model, test predictions and history.

Usage: python -m stages.train <run> <seed>
A killed training resumes from its last completed epoch (Keras BackupAndRestore under .checkpoints/);
outputs are moved into place only when complete.
"""
from __future__ import annotations

import math
import platform
import shutil
import sys
import time

from ch11 import atomic, paths, params as params_mod
from ch11.data import features, n_classes, run_splits
from ch11.errors import PipelineError, run_main


def finite_rows(rows: list[dict]) -> list[dict]:
    """Probe rows with non-finite floats (a diverged run) replaced by None, so the JSON stays valid."""
    return [{k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in row.items()}
            for row in rows]


def train(run: str, seed: int) -> None:
    params = params_mod.load()
    config = params.run(run)
    dataset = params.dataset_of(run)
    splits = run_splits(dataset, config)

    import keras  # TensorFlow is imported only here, once params and data are known to be good
    import numpy as np
    import tensorflow as tf
    from ch11 import model as model_mod, probes, training, transfer

    training.configure_tensorflow(seed, config.mixed_precision)
    x = {name: features(s.x, config, splits["train"].x) for name, s in splits.items()}
    y = {name: s.y for name, s in splits.items()}
    train_ds = training.dataset(x["train"], y["train"], config.batch_size, seed, shuffle=True)
    valid_ds = training.dataset(x["valid"], y["valid"], 1024, seed, shuffle=False)
    steps = math.ceil(len(x["train"]) / config.batch_size)
    workdir = paths.CHECKPOINTS / paths.job(run, seed)
    resumed = training.start_workdir(workdir)
    if resumed:
        print(f"resuming {paths.job(run, seed)} from its last completed epoch", file=sys.stderr)

    start = time.perf_counter()
    if config.transfer:
        model = transfer.transferred_model(config, seed, n_classes(config))
        before = probes.probe(model, x["train"], y["train"], config.initializer)
        transfer.fit_transfer(model, config, train_ds, valid_ds, workdir, steps)
    else:
        model = model_mod.build_model(x["train"].shape[1], n_classes(config), config)
        before = probes.probe(model, x["train"], y["train"], config.initializer)
        training.compile_model(model, model_mod.build_optimizer(config, steps), config)
        training.fit(model, config, train_ds, valid_ds, workdir, epochs=config.epochs)
    wall = time.perf_counter() - start
    history = training.final_history(workdir)
    diverged = not np.isfinite(history["loss"]).all()
    after = probes.probe(model, x["train"], y["train"], config.initializer)

    predictions = {"probs": training.predict(model, x["test"])}
    if config.mc_samples:
        predictions["mc_probs"] = training.mc_predict(model, x["test"], config.mc_samples)
    info = {"run": run, "seed": seed, "dataset": dataset, "diverged": diverged, "train_time_s": round(wall, 2),
            "resumed": resumed, "train_samples": len(x["train"]), "parameters": int(model.count_params()),
            "device": "GPU" if tf.config.list_physical_devices("GPU") else "CPU",
            "versions": {"tensorflow": tf.__version__, "keras": keras.__version__,
                         "python": platform.python_version()},
            "layers_at_init": finite_rows(before), "layers_after_training": finite_rows(after)}

    with atomic.atomic_path(paths.model_dir(run, seed), is_dir=True) as out:
        training.save_model(model, out / "model.keras")
        np.savez(out / "predictions.npz", **predictions)
        atomic.normalize_zip(out / "predictions.npz")
    atomic.write_text(paths.history(dataset, run, seed), history.to_csv(index=False))
    atomic.write_json(paths.train_info(dataset, run, seed), info)
    shutil.rmtree(workdir, ignore_errors=True)
    status = "DIVERGED (non-finite loss; see metrics)" if diverged else "done"
    print(f"train {paths.job(run, seed)}: {status} in {wall:.1f} s")


def main(argv: list[str]) -> None:
    if len(argv) != 2 or not argv[1].isdigit():
        raise PipelineError("usage: python -m stages.train <run> <seed>  (seed: a non-negative integer)")
    train(argv[0], int(argv[1]))


if __name__ == "__main__":
    run_main(main)
