"""Stage train@<run>: train one run with each of its seeds; write models, test predictions, histories, probes.

Usage: python -m stages.train <run>
Each (run, seed) checkpoints every epoch under .checkpoints/ (keyed by the run's configuration), and a
finished seed is kept there until the whole run is written, so a killed stage resumes where it stopped
and gives exactly what an uninterrupted one gives. Outputs appear complete or not at all.
"""
from __future__ import annotations

import hashlib
import json
import math
import platform
import shutil
import sys
import time
from pathlib import Path

from ch11 import atomic, backend, paths, params as params_mod
from ch11.data import features, n_classes, run_splits
from ch11.errors import PipelineError, run_main
from ch11.params import RunConfig


def workdir(run: str, seed: int, config: RunConfig) -> Path:
    """.checkpoints/<run>-<seed>-<hash of the configuration>: a changed configuration starts afresh."""
    digest = hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    return paths.CHECKPOINTS / f"{run}-{seed}-{digest[:12]}"


def train_seed(run: str, seed: int, config: RunConfig, x: dict, y: dict, folder: Path) -> None:
    """Train one seed (resuming from ``folder``), write its finished outputs to ``folder/done``."""
    import keras
    import numpy as np

    from ch11 import model as model_mod, probes, training, transfer

    backend.seed_everything(seed, config.mixed_precision)
    data = {"train": (x["train"], y["train"]), "valid": (x["valid"], y["valid"])}
    steps = math.ceil(len(x["train"]) / config.batch_size)
    resumed = (folder / "state").exists() or (folder / "frozen").exists()
    start = time.perf_counter()
    if config.transfer:
        model = transfer.transferred_model(config, seed, n_classes(config))
        before = probes.probe(model, x["train"], y["train"])
        rows = transfer.fit_transfer(model, config, data, seed, folder, steps)
    else:
        model = model_mod.build_model(x["train"].shape[1], n_classes(config), config)
        before = probes.probe(model, x["train"], y["train"])
        training.compile_model(model, model_mod.build_optimizer(config, steps), config)
        rows = training.fit(model, config, data, seed, folder / "state", epochs=config.epochs)
    wall = time.perf_counter() - start
    history = training.history_frame(rows)
    diverged = not np.isfinite(history["loss"]).all()
    after = probes.probe(model, x["train"], y["train"])
    predictions = {"probs": training.predict(model, x["test"])}
    if config.mc_samples:
        predictions["mc_probs"] = training.mc_predict(model, x["test"], config.mc_samples)
    kind, device = backend.devices()
    info = {"run": run, "seed": seed, "diverged": diverged, "train_samples": len(x["train"]),
            "parameters": int(model.count_params()), "backend": keras.backend.backend(), "device": kind,
            "device_model": device,
            "versions": {"keras": keras.__version__, "python": platform.python_version(),
                         **backend_versions()},
            "layers_at_init": atomic.json_safe(before), "layers_after_training": atomic.json_safe(after)}
    with atomic.atomic_path(folder / "done", is_dir=True) as out:
        training.save_model(model, out / "model.keras")
        np.savez(out / "predictions.npz", **predictions)
        atomic.normalize_zip(out / "predictions.npz")
        (out / "history.csv").write_text(history.to_csv(index=False))
        (out / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        (out / "timing.json").write_text(json.dumps({"train_time_s": round(wall, 2), "resumed": resumed}))
    status = "DIVERGED (non-finite loss; see metrics)" if diverged else f"{len(history)} epochs"
    print(f"train {run} seed {seed}: {status} in {wall:.1f} s", flush=True)


def backend_versions() -> dict:
    import keras

    if keras.backend.backend() == "jax":
        import jax
        import jaxlib

        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}
    import tensorflow as tf

    return {"tensorflow": tf.__version__}


def train(run: str) -> None:
    params = params_mod.load()
    config = params.run(run)
    dataset = params.dataset_of(run)
    splits = run_splits(dataset, config)
    backend.select(config.backend)  # Keras (and its backend) is imported only now, once params and data are good
    x = {name: features(s.x, config, splits["train"].x) for name, s in splits.items()}
    y = {name: s.y for name, s in splits.items()}
    seeds = params.seeds_of(run)
    folders = {seed: workdir(run, seed, config) for seed in seeds}
    for seed, folder in folders.items():
        if (folder / "done").exists():
            print(f"train {run} seed {seed}: finished earlier, kept", flush=True)
        else:
            if (folder / "state").exists() or (folder / "frozen").exists():
                print(f"train {run} seed {seed}: resuming from its last finished epoch", file=sys.stderr)
            train_seed(run, seed, config, x, y, folder)
    timing = {}
    with atomic.atomic_path(paths.model_dir(run), is_dir=True) as models, \
            atomic.atomic_path(paths.train_dir(dataset, run), is_dir=True) as metrics:
        for seed, folder in folders.items():
            done = folder / "done"
            shutil.copy(done / "model.keras", models / paths.model_file(run, seed).name)
            shutil.copy(done / "predictions.npz", models / paths.predictions(run, seed).name)
            shutil.copy(done / "history.csv", metrics / paths.history(dataset, run, seed).name)
            shutil.copy(done / "info.json", metrics / paths.train_info(dataset, run, seed).name)
            timing[str(seed)] = json.loads((done / "timing.json").read_text())
    atomic.write_json(paths.timing(dataset, run), timing)
    for folder in folders.values():
        shutil.rmtree(folder, ignore_errors=True)


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise PipelineError("usage: python -m stages.train <run>  (a run name from params.yaml)")
    train(argv[0])


if __name__ == "__main__":
    run_main(main)
