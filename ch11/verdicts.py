"""Verdict rules: how one claim of the write-up is judged against our per-seed numbers (pure functions).

Verdicts:
  confirmed                          a claimed difference is significant (Holm-adjusted) with the claimed
                                     sign and, when the write-up gives its size, that size lies in our 95 %
                                     confidence interval; a claimed value lies in our 95 % prediction
                                     interval for one more run; a per-seed check holds in every seed
  direction confirmed, size differs  significant with the claimed sign, but the claimed size is outside
                                     our confidence interval
  contradicted                       significant with the opposite sign; a claimed value outside our
                                     prediction interval; a check that fails in every seed
  equivalent                         not significant, and equivalence within ±delta is shown (TOST)
  inconclusive                       neither: our seeds cannot tell (with the minimum detectable effect
                                     at 80 % power); a check that holds in some seeds only
  not tested                         the data cannot test the claim (fewer than 2 seeds with a value, or
                                     a precondition such as "the schedule changed the LR" fails)
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps

ALPHA = 0.05
POWER = 0.80
CONFIRMED, SIZE_DIFFERS, CONTRADICTED = "confirmed", "direction confirmed, size differs", "contradicted"
EQUIVALENT, INCONCLUSIVE, NOT_TESTED = "equivalent", "inconclusive", "not tested"
VERDICTS = (CONFIRMED, SIZE_DIFFERS, CONTRADICTED, EQUIVALENT, INCONCLUSIVE, NOT_TESTED)


def finite(values) -> list[float]:
    """The finite numbers among ``values`` (None, NaN and inf left out)."""
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


@dataclass(frozen=True)
class Difference:
    """mean(a) - mean(b) with its test: paired over shared seeds, else Welch."""
    diff: float
    se: float
    df: float
    n_a: int
    n_b: int
    paired: bool

    def p(self) -> float:
        """Two-sided p-value of 'no difference'."""
        if self.se == 0:
            return 1.0 if self.diff == 0 else 0.0
        return float(2 * sps.t.sf(abs(self.diff / self.se), self.df))

    def ci(self, level: float = 1 - ALPHA) -> tuple[float, float]:
        half = float(sps.t.ppf(0.5 + level / 2, self.df)) * self.se
        return self.diff - half, self.diff + half

    def tost_p(self, delta: float) -> float:
        """p-value of the two one-sided tests that |true difference| < delta (equivalence)."""
        if self.se == 0:
            return 0.0 if abs(self.diff) < delta else 1.0
        lower = sps.t.sf((self.diff + delta) / self.se, self.df)
        upper = sps.t.cdf((self.diff - delta) / self.se, self.df)
        return float(max(lower, upper))

    def mde(self, alpha: float = ALPHA, power: float = POWER) -> float:
        """Smallest true difference this design detects with ``power`` at two-sided ``alpha``."""
        return float((sps.t.ppf(1 - alpha / 2, self.df) + sps.t.ppf(power, self.df)) * self.se)


def compare(a: dict[int, float | None], b: dict[int, float | None]) -> Difference | None:
    """Seed -> value on each side. Paired t when both sides have finite values for the same >= 2 seeds
    (runs trained with the same seed see the same data order, and the same initial weights where the
    architecture is the same); Welch otherwise. None when a side has fewer than 2 finite values."""
    fa = {s: float(v) for s, v in a.items() if finite([v])}
    fb = {s: float(v) for s, v in b.items() if finite([v])}
    if len(fa) < 2 or len(fb) < 2:
        return None
    if fa.keys() == fb.keys():
        d = np.array([fa[s] - fb[s] for s in sorted(fa)])
        return Difference(float(d.mean()), float(d.std(ddof=1) / math.sqrt(len(d))), len(d) - 1,
                          len(d), len(d), True)
    va, vb = np.array(list(fa.values())), np.array(list(fb.values()))
    qa, qb = va.var(ddof=1) / len(va), vb.var(ddof=1) / len(vb)
    se = math.sqrt(qa + qb)
    df = (qa + qb) ** 2 / (qa ** 2 / (len(va) - 1) + qb ** 2 / (len(vb) - 1)) if se else len(va) + len(vb) - 2
    return Difference(float(va.mean() - vb.mean()), se, float(df), len(va), len(vb), False)


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (None stays None): controls the family-wise error rate of the report."""
    order = sorted((p, i) for i, p in enumerate(pvalues) if p is not None)
    adjusted: list[float | None] = [None] * len(pvalues)
    running, m = 0.0, len(order)
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = running
    return adjusted


def comparison_verdict(d: Difference | None, sign: int, size: float | None, p_adjusted: float | None,
                       delta: float) -> str:
    """Verdict on 'mean(a) - mean(b) has sign ``sign`` (and, if given, the size ``size``)'."""
    if d is None or p_adjusted is None:
        return NOT_TESTED
    if p_adjusted < ALPHA:
        if np.sign(d.diff) != sign:
            return CONTRADICTED
        lo, hi = d.ci()
        return CONFIRMED if size is None or lo <= size <= hi else SIZE_DIFFERS
    return EQUIVALENT if d.tost_p(delta) < ALPHA else INCONCLUSIVE


def prediction_interval(values: list[float]) -> tuple[float, float] | None:
    """95 % interval for one more run drawn like ``values`` (t, n-1 df): the write-up reports single runs."""
    vals = finite(values)
    if len(vals) < 2:
        return None
    mean, sd = float(np.mean(vals)), float(np.std(vals, ddof=1))
    half = float(sps.t.ppf(1 - ALPHA / 2, len(vals) - 1)) * sd * math.sqrt(1 + 1 / len(vals))
    return mean - half, mean + half


def value_verdict(values: list[float], claimed: float, tolerance: float = 0.0) -> str:
    """Confirmed when the claimed single-run value (± the write-up's own precision ``tolerance``, for
    claims such as "≈ 85 %") meets our prediction interval, else contradicted."""
    interval = prediction_interval(values)
    if interval is None:
        return NOT_TESTED
    return CONFIRMED if interval[0] - tolerance <= claimed <= interval[1] + tolerance else CONTRADICTED


def check_verdict(passed: list[bool]) -> str:
    """A qualitative claim checked seed by seed: holds in every seed, in none, or in some."""
    if len(passed) < 2:
        return NOT_TESTED
    if all(passed):
        return CONFIRMED
    return CONTRADICTED if not any(passed) else INCONCLUSIVE


def lr_changed(learning_rates: list[float]) -> bool:
    """Whether a logged per-epoch learning rate ever changed (a schedule that never acts is not tested)."""
    vals = finite(learning_rates)
    return len(vals) > 1 and max(vals) - min(vals) > 1e-12 * max(abs(v) for v in vals)
