"""Per-seed results as the evaluate stages wrote them, and seed-to-seed summaries: per-run mean, std, n, min, max
of each metric (numpy only; verdict rules: ch11/report/verdicts.py)."""
from __future__ import annotations

import json
import math

import numpy as np

from ch11 import paths
from ch11.errors import PipelineError
from ch11.params import Params

# The metrics summarized over seeds, here and in each evaluate stage's mean
SUMMARY_METRICS = ("test_accuracy", "test_loss", "best_val_accuracy", "best_epoch", "epochs", "overfit_gap",
                   "epoch1_val_accuracy", "mc_test_accuracy")


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


def is_finite(value) -> bool:
    """Whether ``value`` is a number other than NaN and inf (a diverged seed's metric is None or NaN)."""
    return value is not None and math.isfinite(float(value))


def finite(values) -> list[float]:
    """The finite numbers among ``values``."""
    return [float(v) for v in values if is_finite(v)]


def summarize(values: list[float | None]) -> dict:
    """mean, sample std (ddof=1; None for one value), n, min, max of the finite values."""
    vals = finite(values)
    if not vals:
        return {"mean": None, "std": None, "n": 0, "min": None, "max": None}
    arr = np.asarray(vals)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else None,
            "n": len(arr), "min": float(arr.min()), "max": float(arr.max())}


def aggregate(per_seed: list[dict]) -> dict:
    """Summary of one run from its per-seed metrics (diverged seeds have no accuracy: counted apart)."""
    out = {m: summarize([s.get(m) for s in per_seed]) for m in SUMMARY_METRICS if any(m in s for s in per_seed)}
    out["diverged_seeds"] = sum(bool(s.get("diverged")) for s in per_seed)
    out["seeds"] = len(per_seed)
    return out
