"""One seed of a run: its configuration and arrays prepared, its network compiled, trained (resuming from its
checkpoint folder) and its finished outputs written to ``<folder>/done`` (model, predictions, history, probes,
info, timing)."""
from __future__ import annotations

import hashlib
import json
import math
import platform
import resource
import time
from pathlib import Path

from ch11 import atomic, paths, params as params_mod
from ch11.data.splits import features, n_classes, run_splits
from ch11.params import RunConfig
from ch11.training import backend


def workdir(run: str, seed: int, config: RunConfig) -> Path:
    """.checkpoints/<run>-<seed>-<hash of the configuration>: a changed configuration starts afresh."""
    digest = hashlib.sha256(json.dumps(config.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    return paths.CHECKPOINTS / f"{run}-{seed}-{digest[:12]}"


def train_seed(run: str, seed: int, config: RunConfig, x: dict, y: dict, folder: Path) -> None:
    """Train one seed (resuming from ``folder``), write its finished outputs to ``folder/done``."""
    import keras
    import numpy as np

    from ch11.training import probes, engine, transfer

    backend.seed_everything(seed, config.mixed_precision)
    data = {"train": (x["train"], y["train"]), "valid": (x["valid"], y["valid"])}
    steps = math.ceil(len(x["train"]) / config.batch_size)
    resumed = (folder / "state").exists() or (folder / "frozen").exists()
    start = time.perf_counter()
    progress = [engine.Progress(f"train {run} seed {seed}", config.epochs)]
    if config.transfer:
        model = transfer.transferred_model(config, seed, n_classes(config))
        before = probes.probe(model, x["train"], y["train"])
        rows = transfer.fit_transfer(model, config, data, seed, folder, steps, progress)
    else:
        model = compiled_model(config, x["train"])
        before = probes.probe(model, x["train"], y["train"])
        rows = engine.fit(model, config, data, seed, folder / "state", epochs=config.epochs, callbacks=progress)
    wall = time.perf_counter() - start
    history = engine.history_frame(rows)
    diverged = not np.isfinite(history["loss"]).all()
    after = probes.probe(model, x["train"], y["train"])
    predictions = {"probs": engine.predict(model, x["test"])}
    if config.mc_samples:
        predictions["mc_probs"] = engine.mc_predict(model, x["test"], config.mc_samples)
    kind, device = backend.devices()
    info = {"run": run, "seed": seed, "diverged": diverged, "train_samples": len(x["train"]),
            "parameters": int(model.count_params()), "backend": keras.backend.backend(), "device": kind,
            "device_model": device,
            "versions": {"keras": keras.__version__, "python": platform.python_version(),
                         **backend.versions()},
            "layers_at_init": atomic.json_safe(before), "layers_after_training": atomic.json_safe(after)}
    with atomic.atomic_path(folder / "done", is_dir=True) as out:
        engine.save_model(model, out / "model.keras")
        np.savez(out / "predictions.npz", **predictions)
        atomic.normalize_zip(out / "predictions.npz")
        (out / "history.csv").write_text(history.to_csv(index=False))
        (out / "info.json").write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # this process's peak so far
        (out / "timing.json").write_text(json.dumps({"train_time_s": round(wall, 2), "resumed": resumed,
                                                     "peak_rss_mb": round(peak_mb)}))
    status = "DIVERGED (non-finite loss; see metrics)" if diverged else f"{len(history)} epochs"
    print(f"train {run} seed {seed}: {status} in {wall:.1f} s", flush=True)


def prepared(run: str, backend_name: str | None = None) -> tuple[RunConfig, dict, dict]:
    """The run's configuration and its features and labels per split, with Keras' backend selected (the
    run's own, or ``backend_name``: benchmarks compare backends)."""
    params = params_mod.load()
    config = params.run(run)
    splits = run_splits(params.dataset_of(run), config)
    backend.select(backend_name or config.backend)  # Keras is imported only now, once params and data are good
    x = {name: features(s.x, config, splits["train"].x) for name, s in splits.items()}
    return config, x, {name: s.y for name, s in splits.items()}


def compiled_model(config: RunConfig, x_train):
    """The run's network for inputs like ``x_train``, compiled with its loss, optimizer and metrics."""
    from ch11.training import model as model_mod

    model = model_mod.build_model(x_train.shape[1], n_classes(config), config)
    model_mod.compile_model(model, config, math.ceil(len(x_train) / config.batch_size))
    return model
