"""Verdict rules: how our per-seed numbers answer a question (pure functions; scipy/statsmodels tests). Each
rule is in its function's docstring, and in words for the reader in the report (the effects table's legend,
ch11/report.md.j2's "How to read"). not tested: the data cannot test it (fewer than 2 seeds with a value, a
schedule that never acted)."""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from ch11.stats import finite

ALPHA = 0.05
HELPS, HURTS, NO_EFFECT, UNRESOLVED, DIVERGES = "helps", "hurts", "no effect", "unresolved", "diverges"
READINGS = (HELPS, NO_EFFECT, HURTS, UNRESOLVED, DIVERGES)
SUPPORTED, SIZE_EXCLUDED, OPPOSITE = "supported", "size excluded", "opposite sign"
BELOW_RESOLUTION = "consistent, below resolution"
CLAIM_VERDICTS = (SUPPORTED, SIZE_EXCLUDED, OPPOSITE, NO_EFFECT, BELOW_RESOLUTION)
IN_RANGE, OUT_OF_RANGE = "in range", "out of range"
HOLDS, FAILS, MIXED = "holds", "fails", "mixed"
NOT_TESTED = "not tested"


@dataclass(frozen=True)
class Difference:
    """mean(a) - mean(b): paired over the seeds both sides share (when at least 2), else Welch."""
    a: tuple[float, ...]
    b: tuple[float, ...]
    paired: bool

    @property
    def diff(self) -> float:
        return float(np.mean(self.a) - np.mean(self.b))

    @property
    def n(self) -> str:
        return str(len(self.a)) if self.paired else f"{len(self.a)}/{len(self.b)}"

    def _test(self, shift: float = 0.0, alternative: str = "two-sided"):
        """The t-test of a against b + shift: paired, else Welch."""
        b = np.add(self.b, shift)
        if self.paired:
            return sps.ttest_rel(self.a, b, alternative=alternative)
        return sps.ttest_ind(self.a, b, equal_var=False, alternative=alternative)

    def _constant(self) -> bool:
        """No spread at all (e.g. identical runs): t-tests are undefined."""
        if self.paired:
            return bool(np.ptp(np.subtract(self.a, self.b)) == 0)
        return bool(np.ptp(self.a) == 0 and np.ptp(self.b) == 0)

    def p(self) -> float:
        """Two-sided p-value of 'no difference'."""
        if self._constant():
            return 1.0 if self.diff == 0 else 0.0
        return float(self._test().pvalue)

    def ci(self, level: float = 1 - ALPHA) -> tuple[float, float]:
        if self._constant():
            return self.diff, self.diff
        low, high = self._test().confidence_interval(level)
        return float(low), float(high)

    def tost_p(self, delta: float) -> float:
        """p-value of the two one-sided tests that the true difference lies within ±delta."""
        if self._constant():
            return 0.0 if abs(self.diff) < delta else 1.0
        return float(max(self._test(-delta, "greater").pvalue, self._test(delta, "less").pvalue))


def compare(a: dict[int, float | None], b: dict[int, float | None]) -> Difference | None:
    """Seed -> value on each side. Paired over the seeds with a finite value on both sides when there are
    at least 2 (a seed fixes the data order, and the initial weights where the architecture is the same);
    Welch otherwise. None when a side has fewer than 2 finite values."""
    fa = {s: float(v) for s, v in a.items() if finite([v])}
    fb = {s: float(v) for s, v in b.items() if finite([v])}
    if len(fa) < 2 or len(fb) < 2:
        return None
    shared = sorted(fa.keys() & fb.keys())
    if len(shared) >= 2:
        return Difference(tuple(fa[s] for s in shared), tuple(fb[s] for s in shared), True)
    return Difference(tuple(fa.values()), tuple(fb.values()), False)


def holm(pvalues: list[float | None]) -> list[float | None]:
    """Holm-adjusted p-values (None stays None): the family-wise error rate over the list."""
    known = [i for i, p in enumerate(pvalues) if p is not None]
    adjusted = dict(zip(known, multipletests([pvalues[i] for i in known], method="holm")[1])) if known else {}
    return [float(adjusted[i]) if i in adjusted else None for i in range(len(pvalues))]


def effect_reading(d: Difference | None, p_holm: float | None, tost_holm: float | None) -> str:
    """A technique's effect against its matched baseline: no effect when TOST (Holm) shows it within ±delta, even
    if also significant; else helps / hurts when significant (Holm); else unresolved."""
    if d is None or p_holm is None:
        return NOT_TESTED
    if tost_holm is not None and tost_holm < ALPHA:
        return NO_EFFECT
    if p_holm < ALPHA:
        return HELPS if d.diff > 0 else HURTS
    return UNRESOLVED


def claim_verdict(d: Difference | None, sign: int, size: float | None, p_holm: float | None,
                  tost_holm: float | None) -> str:
    """Verdict on 'mean(a) - mean(b) has sign ``sign`` (and, if given, the size ``size``)': opposite sign,
    size excluded (our CI misses the size), supported, no effect (TOST; sign-only claims), else below resolution."""
    if d is None or p_holm is None:
        return NOT_TESTED
    lo, hi = d.ci()
    significant = p_holm < ALPHA
    if significant and np.sign(d.diff) != sign:
        return OPPOSITE
    if size is not None and not lo <= size <= hi:
        return SIZE_EXCLUDED
    if significant:
        return SUPPORTED
    if size is None and tost_holm is not None and tost_holm < ALPHA:
        return NO_EFFECT
    return BELOW_RESOLUTION


def prediction_interval(values: list[float]) -> tuple[float, float] | None:
    """95 % interval for one more run drawn like ``values`` (t, n-1 df): the write-up reports single runs."""
    vals = finite(values)
    if len(vals) < 2:
        return None
    mean, sd = float(np.mean(vals)), float(np.std(vals, ddof=1))
    half = float(sps.t.ppf(1 - ALPHA / 2, len(vals) - 1)) * sd * math.sqrt(1 + 1 / len(vals))
    return mean - half, mean + half   # (t.interval gives NaN when every seed agrees: sd = 0)


def value_verdict(values: list[float], claimed: float, tolerance: float = 0.0) -> str:
    """In range when the claimed single-run value (± the write-up's own precision ``tolerance``, for claims
    such as "≈ 85 %") meets our prediction interval, else out of range."""
    interval = prediction_interval(values)
    if interval is None:
        return NOT_TESTED
    return IN_RANGE if interval[0] - tolerance <= claimed <= interval[1] + tolerance else OUT_OF_RANGE


def check_verdict(passed: list[bool]) -> str:
    """A qualitative claim checked seed by seed: holds in every seed, in none, or in some."""
    if len(passed) < 2:
        return NOT_TESTED
    return HOLDS if all(passed) else FAILS if not any(passed) else MIXED


def lr_changed(learning_rates: list[float]) -> bool:
    """Whether a logged per-epoch learning rate ever changed (a schedule that never acts is not tested)."""
    vals = finite(learning_rates)
    return len(vals) > 1 and max(vals) - min(vals) > 1e-12 * max(abs(v) for v in vals)


def stopped_early(val_loss: list[float], patience: int) -> bool:
    """The early-stopping criterion on a finished history: its lowest validation loss came at least
    ``patience`` epochs before its last epoch (so early stopping with that patience fired, or would have)."""
    vals = np.asarray(val_loss, dtype=float)
    if not len(vals) or not np.isfinite(vals).any():
        return False
    return len(vals) - (int(np.nanargmin(vals)) + 1) >= patience
