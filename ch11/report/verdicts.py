"""Verdict rules: the words the report prints, each defined on the numbers printed beside it (pure functions).
Effects and claims are read off their adjusted CI (ch11/report/inference.py); each rule is in its function's
docstring and in words for the reader (ch11/report/report.md.j2's "How to read"). not tested: the data cannot test
it (fewer than 2 seeds with a value, a schedule that never acted)."""
from __future__ import annotations

import math

import numpy as np
from scipy import stats as sps

from ch11.report.inference import ALPHA
from ch11.report.stats import finite, summarize

HELPS, HURTS, NO_EFFECT, UNRESOLVED, DIVERGES = "helps", "hurts", "no effect", "unresolved", "diverges"
HELPS_SLIGHTLY, HURTS_SLIGHTLY = "helps, < δ", "hurts, < δ"
NOT_TESTED = "not tested"
READINGS = (HELPS, HELPS_SLIGHTLY, NO_EFFECT, HURTS_SLIGHTLY, HURTS, UNRESOLVED, DIVERGES, NOT_TESTED)
SUPPORTED, SMALLER, LARGER, OPPOSITE = "supported", "smaller than claimed", "larger than claimed", "opposite sign"
BELOW_RESOLUTION, SIZE_EXCLUDED = "below resolution", "claimed size excluded, sign open"
CLAIM_VERDICTS = (SUPPORTED, SMALLER, LARGER, OPPOSITE, NO_EFFECT, SIZE_EXCLUDED, BELOW_RESOLUTION, NOT_TESTED)
IN_RANGE, OUT_OF_RANGE = "in range", "out of range"
HOLDS, FAILS, MIXED = "holds", "fails", "mixed"
DEPENDS, DEPENDS_SLIGHTLY, SAME_UNDER_BOTH = "depends on the rule", "depends, < δ", "same under both"


def effect_reading(lo: float, hi: float, delta: float) -> str:
    """A technique's effect read off its adjusted CI [lo, hi]: helps / hurts when it excludes 0 (", < δ" when it
    also lies within ±delta), no effect when it holds 0 and lies within ±delta, else unresolved."""
    if lo > 0:
        return HELPS_SLIGHTLY if hi < delta else HELPS
    if hi < 0:
        return HURTS_SLIGHTLY if lo > -delta else HURTS
    return NO_EFFECT if -delta < lo and hi < delta else UNRESOLVED


def rule_reading(lo: float, hi: float, delta: float) -> str:
    """How an effect changes between two rules, read off the adjusted CI [lo, hi] of the change as an effect is
    (effect_reading): depends on the rule when it excludes 0 (", < δ" when it lies within ±delta), same under both
    when it holds 0 and lies within ±delta, else unresolved."""
    return {HELPS: DEPENDS, HURTS: DEPENDS, HELPS_SLIGHTLY: DEPENDS_SLIGHTLY, HURTS_SLIGHTLY: DEPENDS_SLIGHTLY,
            NO_EFFECT: SAME_UNDER_BOTH, UNRESOLVED: UNRESOLVED}[effect_reading(lo, hi, delta)]


def decimals_to_show(lo: float, hi: float, edges: tuple[float, ...], decimals: int = 2) -> int:
    """Decimals that print the CI [lo, hi] on its own side of each edge its word is defined on (0, ±delta, a
    claimed size): 2, more where rounding would print a bound on an edge it does not lie on (at most 4, the
    precision findings keep)."""
    while decimals < 4 and any(x not in edges and round(x, decimals) in edges for x in (lo, hi)):
        decimals += 1
    return decimals


def claim_verdict(lo: float, hi: float, sign: int, size: float | None, delta: float) -> str:
    """A claim 'the difference has sign ``sign`` (and size ``size``)' against our adjusted CI [lo, hi]. With the
    claimed direction counted positive: CI above 0 -> supported (the size inside, or no size claimed), smaller /
    larger than claimed; CI below 0 -> opposite sign; CI holding 0 -> below resolution when it also holds the
    claimed size (or none was claimed and the CI reaches past ±delta), no effect when it lies within ±delta,
    else claimed size excluded, sign open."""
    low, high = (lo, hi) if sign > 0 else (-hi, -lo)
    claimed = abs(size) if size is not None else None
    if high < 0:
        return OPPOSITE
    if low > 0:
        if claimed is None or low <= claimed <= high:
            return SUPPORTED
        return SMALLER if high < claimed else LARGER
    if claimed is not None and low <= claimed <= high:
        return BELOW_RESOLUTION
    if -delta < low and high < delta:
        return NO_EFFECT
    return BELOW_RESOLUTION if claimed is None else SIZE_EXCLUDED


def prediction_interval(values: list[float]) -> tuple[float, float] | None:
    """95 % interval for one more run drawn like ``values`` (t, n-1 df): the write-up reports single runs."""
    s = summarize(values)
    if s["n"] < 2:
        return None
    half = float(sps.t.ppf(1 - ALPHA / 2, s["n"] - 1)) * s["std"] * math.sqrt(1 + 1 / s["n"])
    return s["mean"] - half, s["mean"] + half   # (t.interval gives NaN when every seed agrees: sd = 0)


def value_verdict(interval: tuple[float, float] | None, claimed: float, tolerance: float = 0.0) -> str:
    """In range when the claimed single-run value (± the write-up's own precision ``tolerance``, for claims
    such as "≈ 85 %") meets our prediction ``interval`` (prediction_interval; None: not tested), else out of range."""
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
    if not np.isfinite(vals).any():   # no value at all, or none finite
        return False
    return len(vals) - (int(np.nanargmin(vals)) + 1) >= patience
