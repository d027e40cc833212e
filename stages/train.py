"""Stage train@<run>: train one run with each of its seeds; write models, test predictions, histories, probes.

Usage: python -m stages.train <run>     (CH11_WORKERS=n: seeds at once; default every core, ch11/training/workers.py)
Seeds train in parallel worker processes (ch11/training/pool.py), each alone with one thread, so the outputs
are byte-identical whatever the number of workers. Each (run, seed) checkpoints every epoch under
.checkpoints/ (keyed by the run's configuration), and a finished seed is kept there until the whole run is
written, so a killed stage (or worker) resumes where it stopped and gives exactly what an uninterrupted one
gives. Outputs appear complete or not at all.
"""
from __future__ import annotations

import json
import shutil

from ch11 import atomic, paths, params as params_mod
from ch11.errors import PipelineError, run_main
from ch11.training.pool import train_pending
from ch11.training.seed import workdir


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
