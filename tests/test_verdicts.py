"""Every verdict rule on constructed per-seed data (ch11/verdicts.py)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from ch11 import verdicts as v

SEEDS = list(range(1, 11))
NOISE = np.array([0.3, -0.2, 0.1, -0.4, 0.25, -0.1, 0.35, -0.3, 0.05, -0.05])  # mean 0, sd ~0.26


def by_seed(values):
    return dict(zip(SEEDS, values))


def shifted(diff: float, spread: float = 1.0) -> v.Difference:
    """A paired difference of mean ``diff`` with seed-to-seed noise scaled by ``spread``."""
    base = np.full(10, 88.0)
    return v.compare(by_seed(base + diff + spread * NOISE), by_seed(base))


def test_paired_over_shared_seeds_matches_scipy():
    a, b = [88.1, 88.4, 87.9, 88.6, 88.2], [87.6, 88.0, 87.3, 88.1, 87.9]
    d = v.compare(by_seed(a), by_seed(b))
    assert d.paired and d.diff == pytest.approx(np.mean(a) - np.mean(b))
    assert d.p() == pytest.approx(sps.ttest_rel(a, b).pvalue)
    # a reference with more seeds: paired over the five both have
    longer = v.compare(by_seed(a), by_seed(b + [80.0] * 5))
    assert longer.paired and longer.n == "5" and longer.p() == pytest.approx(d.p())


def test_welch_when_fewer_than_two_seeds_are_shared_matches_scipy():
    a, b = {1: 88.1, 2: 88.4, 3: 87.9}, {4: 87.6, 5: 88.0, 6: 87.3, 7: 88.1}
    d = v.compare(a, b)
    assert not d.paired and d.n == "3/4"
    assert d.p() == pytest.approx(sps.ttest_ind(list(a.values()), list(b.values()), equal_var=False).pvalue)


def test_tost_matches_two_shifted_one_sided_tests():
    d = shifted(0.1, spread=0.5)
    diffs = np.array(d.a) - np.array(d.b)
    expected = max(sps.ttest_1samp(diffs + 0.5, 0, alternative="greater").pvalue,
                   sps.ttest_1samp(diffs - 0.5, 0, alternative="less").pvalue)
    assert d.tost_p(0.5) == pytest.approx(expected)
    assert shifted(1.5).tost_p(0.5) > 0.5  # far outside the margin


def test_holm_matches_the_step_down_rule():
    p = [0.01, 0.04, None, 0.03, 0.005]
    adjusted = v.holm(p)
    assert adjusted[2] is None
    # sorted 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 with running max
    assert adjusted[4] == pytest.approx(0.02) and adjusted[0] == pytest.approx(0.03)
    assert adjusted[3] == pytest.approx(0.06) and adjusted[1] == pytest.approx(0.06)


def test_fewer_than_two_finite_values_is_not_tested():
    poor = {1: None, 2: None, 3: 33.43}  # two diverged seeds, one trained
    assert v.compare(by_seed([85.0] * 3), poor) is None
    assert v.claim_verdict(None, +1, None, None, None) == v.NOT_TESTED
    assert v.effect_reading(None, None, None) == v.NOT_TESTED
    assert v.value_verdict([None, None, 33.43], 10.0) == v.NOT_TESTED


def claim(d: v.Difference, sign: int, size: float | None) -> str:
    return v.claim_verdict(d, sign, size, d.p(), d.tost_p(0.5))


def test_supported_significant_claimed_sign_size_inside_ci():
    d = shifted(2.0)
    assert claim(d, +1, 2.1) == v.SUPPORTED and claim(d, +1, None) == v.SUPPORTED


def test_size_excluded_whatever_p_says():
    assert claim(shifted(1.0), +1, 3.0) == v.SIZE_EXCLUDED          # significant, right sign, far smaller
    assert claim(shifted(0.0), +1, 6.9) == v.SIZE_EXCLUDED          # not significant, claim far outside
    assert claim(shifted(0.0), -1, -6.9) == v.SIZE_EXCLUDED


def test_opposite_sign_when_significant_the_other_way():
    assert claim(shifted(-1.0), +1, None) == v.OPPOSITE
    assert claim(shifted(-1.0), +1, 2.0) == v.OPPOSITE


def test_no_effect_only_for_a_sign_claim_shown_equivalent():
    d = shifted(0.02, spread=0.3)
    assert claim(d, +1, None) == v.NO_EFFECT
    # a claimed size inside the same CI: the data cannot tell it from 0
    assert claim(d, -1, -0.03) == v.BELOW_RESOLUTION


def test_consistent_below_resolution_when_the_ci_holds_zero_and_the_claim():
    d = shifted(0.2, spread=3.0)   # wide CI
    lo, hi = d.ci()
    assert lo < 0 < 0.6 < hi
    assert claim(d, +1, 0.6) == v.BELOW_RESOLUTION and claim(d, +1, None) == v.BELOW_RESOLUTION


def test_multiplicity_is_applied_through_the_adjusted_p_values():
    d = shifted(0.3, spread=0.8)
    assert d.p() < v.ALPHA
    assert v.claim_verdict(d, +1, None, d.p(), d.tost_p(0.5)) == v.SUPPORTED
    assert v.claim_verdict(d, +1, None, min(1.0, d.p() * 100), 1.0) == v.BELOW_RESOLUTION


def test_effect_readings():
    def read(d):
        return v.effect_reading(d, d.p(), d.tost_p(0.5))
    assert read(shifted(1.5)) == v.HELPS
    assert read(shifted(-1.5)) == v.HURTS
    assert read(shifted(0.02, spread=0.3)) == v.NO_EFFECT
    assert read(shifted(0.3, spread=3.0)) == v.UNRESOLVED
    tiny = shifted(0.05, spread=0.01)   # significant but negligible: no effect, not "helps"
    assert tiny.p() < v.ALPHA and read(tiny) == v.NO_EFFECT


def test_identical_runs_have_no_spread_and_no_effect():
    d = v.compare(by_seed([88.0] * 10), by_seed([88.0] * 10))
    assert d.p() == 1.0 and d.ci() == (0.0, 0.0) and d.tost_p(0.5) == 0.0
    assert v.effect_reading(d, d.p(), d.tost_p(0.5)) == v.NO_EFFECT


def test_value_in_and_out_of_the_prediction_interval():
    vals = [88.1, 88.4, 87.9, 88.6, 88.2]
    assert v.value_verdict(vals, 88.3) == v.IN_RANGE
    assert v.value_verdict(vals, 85.0) == v.OUT_OF_RANGE
    assert v.value_verdict(vals, 85.0, tolerance=2.5) == v.IN_RANGE


def test_checks_hold_fail_or_mix():
    assert v.check_verdict([True, True]) == v.HOLDS
    assert v.check_verdict([False, False]) == v.FAILS
    assert v.check_verdict([True, False]) == v.MIXED
    assert v.check_verdict([True]) == v.NOT_TESTED


def test_the_early_stopping_criterion_on_a_history():
    falling = list(np.linspace(1.0, 0.3, 30))
    assert not v.stopped_early(falling, 15)                 # lowest at the last epoch: still improving
    turned = list(np.linspace(1.0, 0.3, 15)) + [0.31 + 0.01 * i for i in range(15)]
    assert v.stopped_early(turned, 15) and not v.stopped_early(turned, 16)
    assert not v.stopped_early([float("nan")] * 5, 1)


def test_a_schedule_that_never_acted():
    assert not v.lr_changed([0.01] * 30) and v.lr_changed([0.01] * 10 + [0.005] * 20)


def test_a_value_every_seed_agrees_on_has_a_zero_width_interval():
    """All seeds equal (e.g. the same epoch count): the interval is that value, never NaN."""
    assert v.prediction_interval([30.0, 30.0, 30.0]) == (30.0, 30.0)
    assert v.value_verdict([30.0, 30.0, 30.0], 30.0) == v.IN_RANGE
    assert v.value_verdict([85.0, 85.0], 85.2, tolerance=0.5) == v.IN_RANGE
    assert v.value_verdict([85.0, 85.0], 86.0, tolerance=0.5) == v.OUT_OF_RANGE
