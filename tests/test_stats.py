"""ch11.stats on hand-made per-seed metrics: summaries with known mean/std, and every verdict each way."""
from __future__ import annotations

import statistics

import pytest

from ch11 import stats


def test_summarize_known_mean_and_sample_std():
    s = stats.summarize([0.80, 0.82, 0.84])
    assert s["mean"] == pytest.approx(0.82)
    assert s["std"] == pytest.approx(0.02)  # sample std, ddof=1
    assert (s["n"], s["min"], s["max"]) == (3, pytest.approx(0.80), pytest.approx(0.84))


def test_summarize_one_seed_and_missing_values():
    assert stats.summarize([0.9]) == {"mean": 0.9, "std": None, "n": 1, "min": 0.9, "max": 0.9}
    assert stats.summarize([None, float("nan"), 2.0, 4.0])["n"] == 2
    assert stats.summarize([None]) == {"mean": None, "std": None, "n": 0, "min": None, "max": None}


def test_aggregate_per_seed_metrics():
    per_seed = [
        {"test_accuracy": 0.85, "best_epoch": 4, "epochs": 10, "train_time_s": 30.0, "diverged": False},
        {"test_accuracy": 0.87, "best_epoch": 6, "epochs": 10, "train_time_s": 32.0, "diverged": False},
        {"test_accuracy": 0.10, "best_epoch": 1, "epochs": 10, "train_time_s": 31.0, "diverged": True,
         "test_loss": None},
    ]
    out = stats.aggregate(per_seed)
    assert out["test_accuracy"]["mean"] == pytest.approx((0.85 + 0.87 + 0.10) / 3)
    assert out["test_accuracy"]["n"] == 3  # a diverged seed is kept, never dropped
    assert out["best_epoch"] == {"mean": pytest.approx(11 / 3), "std": pytest.approx(statistics.stdev([4, 6, 1])),
                                 "n": 3, "min": 1.0, "max": 6.0}
    assert out["train_time_s"]["std"] == pytest.approx(1.0)
    assert out["test_loss"]["n"] == 0
    assert out["diverged_seeds"] == 1
    assert "mc_test_accuracy" not in out  # absent metrics are left out, not reported as empty


def test_welch_matches_scipy_and_handles_degenerate_sides():
    diff, p = stats.welch([1.0, 2.0, 3.0], [2.0, 3.0, 4.0])
    assert diff == pytest.approx(-1.0)
    assert p == pytest.approx(0.2879, abs=1e-4)  # t = -1.2247, df = 4
    assert stats.welch([1.0], [2.0, 3.0])[1] is None
    assert stats.welch([1.0, 1.0], [2.0, 2.0]) == (-1.0, 0.0)
    assert stats.welch([1.0, 1.0], [1.0, 1.0]) == (0.0, 1.0)


@pytest.mark.parametrize("a, b, claimed, verdict", [
    ([0.90, 0.91, 0.92], [0.80, 0.81, 0.82], +1, "confirmed"),      # clear, with the claimed sign
    ([0.90, 0.91, 0.92], [0.80, 0.81, 0.82], -1, "contradicted"),   # clear, against the claimed sign
    ([0.80, 0.85, 0.90], [0.82, 0.84, 0.86], +1, "within noise"),   # the seeds overlap
    ([0.80, 0.85, 0.90], [0.82, 0.84, 0.86], -1, "within noise"),
    ([0.90], [0.80, 0.81, 0.82], +1, "undetermined (n<2)"),
])
def test_comparison_verdicts(a, b, claimed, verdict):
    got, diff, p = stats.comparison_verdict(a, b, claimed)
    assert got == verdict
    assert diff == pytest.approx(sum(a) / len(a) - sum(b) / len(b))
    assert (p is None) == (verdict == "undetermined (n<2)")


@pytest.mark.parametrize("values, claimed, tolerance, verdict", [
    ([85.1, 85.3, 85.2], 85.25, 0.5, "confirmed"),       # within the tolerance
    ([85.1, 85.3, 85.2], 89.0, 0.5, "contradicted"),     # far outside what our seeds produce
    ([80.0, 86.0, 92.0], 88.8, 0.5, "within noise"),     # off by 2.8 points, but our seeds spread widely
    ([85.1], 85.25, 0.5, "undetermined (n<2)"),
    ([70.0, 70.0, 70.0], 90.22, 0.5, "contradicted"),    # zero spread: p = 0
])
def test_value_verdicts(values, claimed, tolerance, verdict):
    got, p = stats.value_verdict(values, claimed, tolerance)
    assert got == verdict
    if verdict == "within noise":
        assert p >= stats.ALPHA
    if verdict == "contradicted":
        assert p < stats.ALPHA


def test_value_p_is_a_prediction_interval_test():
    values = [84.0, 85.0, 86.0]  # mean 85, s = 1, n = 3: one more run has sd sqrt(1 + 1/3)
    low, high = stats.prediction_interval(values)
    assert (low + high) / 2 == pytest.approx(85.0)
    assert stats.value_p(values, high) == pytest.approx(stats.ALPHA)
    assert stats.value_p(values, 85.0) == pytest.approx(1.0)


def test_paired_test_on_same_seeds():
    diff, p = stats.paired([0.882, 0.8721, 0.8909], [0.880, 0.870, 0.889])
    assert diff == pytest.approx(0.002)
    assert 0 < p < 0.05
    assert stats.paired([0.5], [0.4])[1] is None


@pytest.mark.parametrize("passed, verdict", [
    ([True, True, True], "confirmed"), ([True, False, True], "within noise"),
    ([False, False, False], "contradicted"), ([True], "undetermined (n<2)"), ([], "undetermined (n<2)"),
])
def test_check_verdicts(passed, verdict):
    assert stats.check_verdict(passed) == verdict
