"""Seed-to-seed statistics: per-run summaries, Welch t-tests, and verdicts on the seed's claims.

Verdicts (the words the report prints):
  confirmed           the claim holds: a claimed difference is significant with the claimed sign, a claimed
                      value lies within its tolerance of our mean, a check passes in every seed
  within noise        our seeds cannot tell: the difference is not significant, or the claimed value is
                      what one more run of ours could plausibly give, or a check passes in only some seeds
  contradicted        our seeds disagree: a significant difference of the opposite sign, a claimed value
                      outside the range of our runs, or a check that fails in every seed
  undetermined (n<2)  fewer than two seeds on a side: no test is possible
"""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

SUMMARY_METRICS = ("test_accuracy", "test_loss", "best_val_accuracy", "best_epoch", "epochs", "overfit_gap",
                   "epoch1_val_accuracy", "mc_test_accuracy")
ALPHA = 0.05  # significance level of every test in the report
CONFIRMED, WITHIN_NOISE, CONTRADICTED, UNDETERMINED = ("confirmed", "within noise", "contradicted",
                                                       "undetermined (n<2)")


def finite(values) -> list[float]:
    """The finite numbers among ``values`` (None, NaN and inf left out)."""
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def summarize(values: list[float | None]) -> dict:
    """mean, sample std (ddof=1; None for one seed), n, min, max of the finite values."""
    vals = finite(values)
    if not vals:
        return {"mean": None, "std": None, "n": 0, "min": None, "max": None}
    arr = np.asarray(vals)
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
    a, b = finite(a), finite(b)
    if not a or not b:
        return math.nan, None
    diff = float(np.mean(a) - np.mean(b))
    if len(a) < 2 or len(b) < 2:
        return diff, None
    if np.var(a) == 0 and np.var(b) == 0:  # identical seeds on both sides: no noise to test against
        return diff, 0.0 if diff != 0 else 1.0
    return diff, float(sps.ttest_ind(a, b, equal_var=False).pvalue)


def paired(a: list[float], b: list[float]) -> tuple[float, float | None]:
    """Mean of the per-seed differences a - b and the two-sided paired t-test p-value (same seeds, same
    models: e.g. MC dropout vs plain inference). None when fewer than 2 pairs."""
    pairs = [(x, y) for x, y in zip(a, b) if x is not None and y is not None
             and math.isfinite(x) and math.isfinite(y)]
    if not pairs:
        return math.nan, None
    d = np.asarray([x - y for x, y in pairs])
    if len(d) < 2:
        return float(d.mean()), None
    if np.var(d) == 0:
        return float(d.mean()), 0.0 if d.mean() != 0 else 1.0
    return float(d.mean()), float(sps.ttest_1samp(d, 0.0).pvalue)


def comparison_verdict(a: list[float], b: list[float], claimed_diff: float) -> tuple[str, float, float | None]:
    """Verdict on a claim that mean(a) - mean(b) has the sign of ``claimed_diff`` (Welch, two-sided)."""
    diff, p = welch(a, b)
    if p is None:
        return UNDETERMINED, diff, p
    if p >= ALPHA:
        return WITHIN_NOISE, diff, p
    return (CONFIRMED if np.sign(diff) == np.sign(claimed_diff) else CONTRADICTED), diff, p


def prediction_interval(values: list[float]) -> tuple[float, float] | None:
    """95 % interval for one more run drawn like ``values`` (t with n-1 df; None below 2 values)."""
    vals = finite(values)
    if len(vals) < 2:
        return None
    mean, sd = float(np.mean(vals)), float(np.std(vals, ddof=1))
    half = float(sps.t.ppf(1 - ALPHA / 2, len(vals) - 1)) * sd * math.sqrt(1 + 1 / len(vals))
    return mean - half, mean + half


def value_p(values: list[float], claimed: float) -> float | None:
    """Two-sided p-value of the claimed number as one more run of ours: t = (claimed - mean) /
    (s * sqrt(1 + 1/n)), n-1 df. The seed reports single runs, so its own seed noise counts too."""
    vals = finite(values)
    if len(vals) < 2:
        return None
    mean, sd = float(np.mean(vals)), float(np.std(vals, ddof=1))
    if sd == 0:
        return 1.0 if claimed == mean else 0.0
    t = (claimed - mean) / (sd * math.sqrt(1 + 1 / len(vals)))
    return float(2 * sps.t.sf(abs(t), len(vals) - 1))


def value_verdict(values: list[float], claimed: float, tolerance: float = 0.0) -> tuple[str, float | None]:
    """Verdict on a claimed absolute value (same unit as ``values``) and its p-value (see ``value_p``).

    confirmed: |mean - claimed| <= tolerance; within noise: farther, but p >= ALPHA (a plausible single
    run of ours); contradicted: p < ALPHA; undetermined below 2 seeds."""
    vals = finite(values)
    p = value_p(vals, claimed)
    if p is None:
        return UNDETERMINED, None
    if abs(float(np.mean(vals)) - claimed) <= tolerance:
        return CONFIRMED, p
    return (WITHIN_NOISE if p >= ALPHA else CONTRADICTED), p


def check_verdict(passed: list[bool]) -> str:
    """Verdict on a qualitative claim checked seed by seed: all pass, some pass, none pass."""
    if len(passed) < 2:
        return UNDETERMINED
    if all(passed):
        return CONFIRMED
    return CONTRADICTED if not any(passed) else WITHIN_NOISE


def significance(p: float | None) -> str:
    """'significant' / 'not significant' at ALPHA, or 'untestable (n<2)'."""
    if p is None:
        return "untestable (n<2)"
    return "significant" if p < ALPHA else "not significant"
