"""Reading the per-seed results that the evaluate stages wrote (numpy/pandas only)."""
from __future__ import annotations

import json

from ch11 import paths
from ch11.errors import PipelineError
from ch11.params import Params


def runs_of(params: Params, dataset: str) -> list[str]:
    return [run for run in params.run_names() if params.dataset_of(run) == dataset]


def per_seed_metrics(params: Params, dataset: str, run: str) -> dict[int, dict]:
    """seed -> eval metrics of ``run``, for the seeds params.yaml gives it today (never stale seeds)."""
    path = paths.eval_metrics(dataset, run)
    if not path.exists():
        raise PipelineError(f"{path} not found; run `dvc repro evaluate@{run}` first.")
    found = json.loads(path.read_text())["per_seed"]
    seeds = params.seeds_of(run)
    missing = [s for s in seeds if str(s) not in found]
    if missing:
        raise PipelineError(f"{path} has no result for seed(s) {missing} that params.yaml lists; run "
                            f"`dvc repro evaluate@{run}`.")
    return {s: found[str(s)] for s in seeds}
