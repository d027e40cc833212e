"""Stage train@<run>: train one run with each of its seeds; write models, test predictions, histories, probes.

Usage: python -m stages.train <run>     (CH11_WORKERS=n: seeds at once; default every core, ch11/training/workers.py)
Seeds train in parallel worker processes, each seed alone in its process with one thread, so the outputs
are byte-identical whatever the number of workers. Each (run, seed) checkpoints every epoch under
.checkpoints/ (keyed by the run's configuration), and a finished seed is kept there until the whole run is
written, so a killed stage (or worker) resumes where it stopped and gives exactly what an uninterrupted one
gives. Outputs appear complete or not at all. Progress: a line per seed about every 30 s, and the stage's
time left after each seed (predicted from the run's recorded timings until a seed has finished here).
"""
from __future__ import annotations

import hashlib
import json
import math
import multiprocessing
import os
import platform
import resource
import shutil
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ch11 import atomic, paths, params as params_mod
from ch11.training import backend, workers
from ch11.data.splits import features, n_classes, run_splits
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
                         **backend_versions()},
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


def backend_versions() -> dict:
    import keras

    if keras.backend.backend() == "jax":
        import jax
        import jaxlib

        return {"jax": jax.__version__, "jaxlib": jaxlib.__version__}
    import tensorflow as tf

    return {"tensorflow": tf.__version__}


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
    from ch11.training import model as model_mod, engine

    model = model_mod.build_model(x_train.shape[1], n_classes(config), config)
    steps = math.ceil(len(x_train) / config.batch_size)
    engine.compile_model(model, model_mod.build_optimizer(config, steps), config)
    return model


WORKER: dict = {}   # in a worker process: the run, its configuration and data, loaded once


def start_worker(run: str, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # Ctrl-C is the stage's to handle (ch11/errors.py)
    workers.die_with_parent(parent)
    config, x, y = prepared(run)
    WORKER.update(run=run, config=config, x=x, y=y)


def train_in_worker(seed: int, folder: Path) -> None:
    train_seed(WORKER["run"], seed, WORKER["config"], WORKER["x"], WORKER["y"], folder)


def seed_times(run: str, dataset: str, folders: dict[int, Path]) -> tuple[list[float], float | None]:
    """Train times (s) per seed: those finished here since the last write, else the run's recorded ones;
    and the highest peak memory (MiB) recorded for this run, if any."""
    finished = [json.loads((f / "done" / "timing.json").read_text()) for f in folders.values()
                if (f / "done" / "timing.json").exists()]
    recorded = json.loads(paths.timing(dataset, run).read_text()).values() if paths.timing(dataset, run).exists() \
        else []
    peaks = [t["peak_rss_mb"] for t in [*finished, *recorded] if "peak_rss_mb" in t]
    times = [t["train_time_s"] for t in (finished or recorded) if not t.get("resumed")]
    return times, max(peaks, default=None)


def time_left(run: str, dataset: str, folders: dict[int, Path], pending: int, todo: int, n_workers: int,
              elapsed: float = 0.0) -> str:
    """', ~m min left' for the stage: ``pending`` seeds at the mean seed time, ``n_workers`` at a time, less
    the ``elapsed`` seconds since they started (which also covers the seeds half done in other workers)."""
    times, _ = seed_times(run, dataset, folders)
    if not times or not todo:
        return ""
    per_seed = sum(times) / len(times)
    seconds = max(pending * per_seed / n_workers - elapsed, per_seed / n_workers)
    return f", ~{seconds / 60:.0f} min left" if seconds >= 90 else f", ~{seconds:.0f} s left"


def train_pending(run: str, dataset: str, config: RunConfig, folders: dict[int, Path]) -> None:
    """Train the seeds without a finished result, ``workers.count`` at a time, reporting the time left."""
    pending = [seed for seed, folder in folders.items() if not (folder / "done").exists()]
    for seed in folders.keys() - set(pending):
        print(f"train {run} seed {seed}: finished earlier, kept", flush=True)
    for seed in pending:
        if (folders[seed] / "state").exists() or (folders[seed] / "frozen").exists():
            print(f"train {run} seed {seed}: resuming from its last finished epoch", file=sys.stderr)
    if not pending:
        return
    for seed in pending if config.transfer else []:   # before any training, in seed order
        if not (base := paths.model_file(config.transfer.base, seed)).exists():
            raise PipelineError(f"{base} not found: transfer base run {config.transfer.base!r} (seed {seed}) "
                                f"has not been trained. Run `dvc repro train@{config.transfer.base}` first.")
    n_workers = workers.count(len(pending), seed_times(run, dataset, folders)[1])
    print(f"train {run}: {len(pending)} seed(s) on {n_workers} worker(s)"
          f"{time_left(run, dataset, folders, len(pending), len(pending), n_workers)}", flush=True)
    start = time.perf_counter()
    if n_workers == 1:   # the serial loop, in this process
        config, x, y = prepared(run)
        jobs = (train_seed(run, seed, config, x, y, folders[seed]) for seed in pending)
    else:
        run_splits(dataset, config)   # the data's errors as one clear line here (a worker's would be lost)
        pool = ProcessPoolExecutor(n_workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=start_worker, initargs=(run, os.getpid()))
        jobs = as_completed([pool.submit(train_in_worker, seed, folders[seed]) for seed in pending])
    try:
        for done, job in enumerate(jobs, start=1):
            if n_workers > 1:
                job.result()
            left = time_left(run, dataset, folders, len(pending), len(pending) - done, n_workers,
                             time.perf_counter() - start)
            print(f"train {run}: {done} of {len(pending)} seed(s) done{left}", flush=True)
    except BrokenProcessPool as exc:
        raise PipelineError(f"a worker training run {run!r} died ({exc}); every finished epoch is "
                            "checkpointed, so rerunning the stage resumes each seed where it stopped") from None
    finally:
        if n_workers > 1:
            pool.shutdown(cancel_futures=True)


def train(run: str) -> None:
    params = params_mod.load()
    config = params.run(run)
    dataset = params.dataset_of(run)
    folders = {seed: workdir(run, seed, config) for seed in params.seeds_of(run)}
    train_pending(run, dataset, config, folders)
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
