"""Reading the per-seed results that the evaluate stages wrote (numpy/pandas only)."""
from __future__ import annotations

import json

from ch11 import paths
from ch11.errors import PipelineError
from ch11.params import Params


def runs_of(params: Params, dataset: str) -> list[str]:
    return [run for run in params.run_names() if params.dataset_of(run) == dataset]


def per_seed_metrics(params: Params, dataset: str, run: str) -> list[dict]:
    """The eval metrics of ``run`` for every seed params.yaml lists today (never stale files of removed seeds)."""
    found = []
    for seed in params.seeds:
        path = paths.eval_metrics(dataset, run, seed)
        if not path.exists():
            raise PipelineError(f"{path} not found; run `dvc repro {params.evaluate_stage(run)}@{run}-{seed}` "
                                "first.")
        found.append(json.loads(path.read_text()))
    return found
