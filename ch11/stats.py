"""Seed-to-seed statistics: per-run summaries, Welch t-tests, and verdicts on the seed's claims."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

SUMMARY_METRICS = ("test_accuracy", "best_val_accuracy", "best_epoch", "overfit_gap", "train_time_s",
                   "epoch1_val_accuracy", "mc_test_accuracy")
ALPHA = 0.05  # significance level of every test in the report


def summarize(values: list[float | None]) -> dict:
    """mean, sample std (ddof=1; None for one seed), n, min, max of the finite values."""
    finite = [float(v) for v in values if v is not None and math.isfinite(v)]
    if not finite:
        return {"mean": None, "std": None, "n": 0, "min": None, "max": None}
    arr = np.asarray(finite)
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else None,
            "n": len(arr), "min": float(arr.min()), "max": float(arr.max())}


def aggregate(per_seed: list[dict]) -> dict:
    """Summary of one run from its per-seed metrics dicts (as written by the evaluate stage)."""
    out = {m: summarize([s.get(m) for s in per_seed]) for m in SUMMARY_METRICS
           if any(m in s for s in per_seed)}
    out["diverged_seeds"] = sum(bool(s.get("diverged")) for s in per_seed)
    return out


def welch(a: list[float], b: list[float]) -> tuple[float, float | None]:
    """Mean difference a - b and the two-sided Welch t-test p-value (None when a side has < 2 seeds)."""
    diff = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return diff, None
    if np.var(a) == 0 and np.var(b) == 0:
        return diff, 0.0 if diff != 0 else 1.0
    return diff, float(sps.ttest_ind(a, b, equal_var=False).pvalue)


def comparison_verdict(a: list[float], b: list[float], claimed_diff: float) -> tuple[str, float, float | None]:
    """Verdict on a claim that mean(a) - mean(b) has the sign of ``claimed_diff``."""
    diff, p = welch(a, b)
    if p is None:
        return "undetermined (n<2)", diff, p
    if p >= ALPHA:
        return "within noise", diff, p
    return ("confirmed" if np.sign(diff) == np.sign(claimed_diff) else "contradicted"), diff, p


def value_verdict(values: list[float], claimed: float) -> tuple[str, tuple[float, float] | None]:
    """Verdict on a claimed absolute value: inside the 95 % t-interval of our mean, or not."""
    if len(values) < 2:
        return "undetermined (n<2)", None
    mean, sem = float(np.mean(values)), float(np.std(values, ddof=1) / math.sqrt(len(values)))
    half = float(sps.t.ppf(1 - ALPHA / 2, len(values) - 1)) * sem
    low, high = mean - half, mean + half
    return ("confirmed" if low <= claimed <= high else "contradicted"), (low, high)
