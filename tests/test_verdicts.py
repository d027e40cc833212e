"""Every verdict rule on constructed intervals and per-seed data (ch11/report/verdicts.py)."""
from __future__ import annotations

import numpy as np
import pytest

from ch11.report import verdicts as v

DELTA = 0.5


@pytest.mark.parametrize("lo, hi, reading", [
    (0.6, 2.0, v.HELPS), (0.1, 0.9, v.HELPS),            # above 0, reaching past delta
    (-2.0, -0.2, v.HURTS),
    (0.05, 0.4, v.HELPS_SLIGHTLY), (-0.45, -0.01, v.HURTS_SLIGHTLY),   # excludes 0, inside ±delta
    (-0.3, 0.4, v.NO_EFFECT), (0.0, 0.2, v.NO_EFFECT),    # holds 0 (a bound at 0 holds it), inside ±delta
    (-0.2, 0.5, v.UNRESOLVED), (-1.5, 0.3, v.UNRESOLVED), (-3.0, 3.0, v.UNRESOLVED)])
def test_effect_readings_follow_the_interval(lo, hi, reading):
    assert v.effect_reading(lo, hi, DELTA) == reading


@pytest.mark.parametrize("lo, hi, reading", [
    (0.24, 1.33, v.DEPENDS), (-1.99, -0.51, v.DEPENDS),                # excludes 0
    (0.05, 0.4, v.DEPENDS_SLIGHTLY), (-0.45, -0.01, v.DEPENDS_SLIGHTLY),      # and lies inside ±delta
    (-0.3, 0.4, v.SAME_UNDER_BOTH), (-0.02, 1.79, v.UNRESOLVED), (-0.92, 0.32, v.UNRESOLVED)])
def test_a_change_between_rules_is_read_off_its_interval(lo, hi, reading):
    assert v.rule_reading(lo, hi, DELTA) == reading


@pytest.mark.parametrize("lo, hi, sign, size, verdict", [
    (1.0, 3.0, +1, 2.15, v.SUPPORTED), (1.0, 3.0, +1, None, v.SUPPORTED),
    (-3.0, -1.0, -1, -2.0, v.SUPPORTED),                   # a claimed loss, seen as one
    (0.3, 1.2, +1, 2.15, v.SMALLER), (3.5, 5.0, +1, 3.2, v.LARGER),
    (-5.3, -3.5, -1, -7.25, v.SMALLER),                    # smaller in magnitude than the claimed loss
    (-1.5, -0.2, +1, None, v.OPPOSITE), (-1.5, -0.2, +1, 0.6, v.OPPOSITE), (0.2, 1.0, -1, -6.9, v.OPPOSITE),
    (-0.7, 1.6, +1, 0.6, v.BELOW_RESOLUTION), (-0.7, 1.6, +1, None, v.BELOW_RESOLUTION),
    (-0.3, 0.4, +1, 0.2, v.BELOW_RESOLUTION),             # a claim inside ±delta: 0 and the claim both held
    (-0.4, 0.45, +1, 0.6, v.NO_EFFECT), (-0.4, 0.45, +1, None, v.NO_EFFECT),
    (-1.2, 1.0, +1, 6.9, v.SIZE_EXCLUDED), (-0.5, 0.5, +1, 0.6, v.SIZE_EXCLUDED)])  # a bound at delta reaches it
def test_claim_verdicts_follow_the_interval(lo, hi, sign, size, verdict):
    assert v.claim_verdict(lo, hi, sign, size, DELTA) == verdict


def test_claim_verdicts_are_one_word_per_configuration_and_mirror_symmetric():
    """Over a grid of intervals and claims, every configuration gets a word, and flipping the sign of the
    claim and of the interval gives the same word."""
    bounds = np.round(np.arange(-3.0, 3.01, 0.25), 2)
    seen = set()
    for lo in bounds:
        for hi in bounds[bounds >= lo]:
            for sign, size in ((+1, None), (+1, 0.3), (+1, 2.0), (-1, None), (-1, -2.0)):
                word = v.claim_verdict(lo, hi, sign, size, DELTA)
                assert word in v.CLAIM_VERDICTS
                assert v.claim_verdict(-hi, -lo, -sign, None if size is None else -size, DELTA) == word
                seen.add(word)
    assert seen == set(v.CLAIM_VERDICTS) - {v.NOT_TESTED}



@pytest.mark.parametrize("lo, hi, decimals", [
    (0.31, 0.62, 2), (0.0, 0.5, 2),                      # on an edge, or clear of every edge: two decimals
    (0.0021, 0.62, 3), (-0.4996, 0.2, 4), (-0.0049, 0.1, 3)])   # two would print 0.00 / -0.50: more
def test_a_bound_is_printed_on_its_own_side_of_each_edge(lo, hi, decimals):
    edges = (0.0, DELTA, -DELTA)
    assert v.decimals_to_show(lo, hi, edges) == decimals
    for x in (lo, hi):   # printed with that many decimals, each bound reads on the side it lies on
        shown = float(f"{x:.{decimals}f}")
        assert all((shown > e) == (x > e) and (shown < e) == (x < e) for e in edges)

def test_value_in_and_out_of_the_prediction_interval():
    vals = [88.1, 88.4, 87.9, 88.6, 88.2]
    assert v.value_verdict(v.prediction_interval(vals), 88.3) == v.IN_RANGE
    assert v.value_verdict(v.prediction_interval(vals), 85.0) == v.OUT_OF_RANGE
    assert v.value_verdict(v.prediction_interval(vals), 85.0, tolerance=2.5) == v.IN_RANGE


def test_the_prediction_interval_on_a_textbook_sample():
    """2, 4, 4, 4, 5, 5, 7, 9: mean 5, sd sqrt(32 / 7) = 2.138; a t table gives t(0.975, 7 df) = 2.365, so one more
    value falls, with 95 % probability, within 5 ± 2.365 · 2.138 · sqrt(1 + 1/8) = 5 ± 5.362."""
    assert v.prediction_interval([2, 4, 4, 4, 5, 5, 7, 9]) == pytest.approx((5 - 5.362, 5 + 5.362), abs=0.002)


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
    assert v.value_verdict(v.prediction_interval([30.0, 30.0, 30.0]), 30.0) == v.IN_RANGE
    assert v.value_verdict(v.prediction_interval([85.0, 85.0]), 85.2, tolerance=0.5) == v.IN_RANGE
    assert v.value_verdict(v.prediction_interval([85.0, 85.0]), 86.0, tolerance=0.5) == v.OUT_OF_RANGE
