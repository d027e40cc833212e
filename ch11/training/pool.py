"""A run's seeds trained in parallel worker processes, each seed alone in its process with one thread, so the
outputs are byte-identical whatever the number of workers (``workers.count``; 1 = the serial loop in this
process). Prints a line per seed kept or resumed, and the time left after each seed (predicted from the run's
recorded timings until a seed has finished here)."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

from ch11 import paths
from ch11.data.splits import run_splits
from ch11.errors import PipelineError
from ch11.params import RunConfig
from ch11.training import workers
from ch11.training.seed import prepared, train_seed


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
