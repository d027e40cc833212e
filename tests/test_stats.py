"""Per-run summaries over seeds (constructed per-seed data, answers worked by hand)."""
from __future__ import annotations

import math

import pytest

from ch11.report.stats import aggregate, summarize


def test_summarize_a_textbook_sample():
    """2, 4, 4, 4, 5, 5, 7, 9: mean 40 / 8 = 5, squared deviations 9+1+1+1+0+0+4+16 = 32, so the sample variance
    (n - 1 = 7) is 32 / 7; the missing values are left out."""
    s = summarize([2, 4, 4, 4, None, 5, 5, 7, float("nan"), 9])
    assert s["mean"] == 5.0 and s["std"] == pytest.approx(math.sqrt(32 / 7))
    assert (s["n"], s["min"], s["max"]) == (8, 2.0, 9.0)


def test_summarize_known_mean_and_sample_std():
    """By hand: deviations from the mean 0.82 are -0.02, 0, +0.02; squares sum to 0.0008; over n - 1 = 2 that is
    0.0004, whose root is 0.02 (the population std, over n = 3, would be 0.0163)."""
    s = summarize([0.80, 0.82, 0.84])
    assert s["mean"] == pytest.approx(0.82) and s["std"] == pytest.approx(0.02)
    assert (s["n"], s["min"], s["max"]) == (3, 0.80, 0.84)


def test_summarize_one_value_and_missing_values():
    assert summarize([0.5, None, float("nan")]) == {"mean": 0.5, "std": None, "n": 1, "min": 0.5, "max": 0.5}
    assert summarize([None])["n"] == 0


def test_diverged_seeds_are_counted_not_averaged():
    per_seed = [{"diverged": True, "epochs": 1}, {"diverged": True, "epochs": 1},
                {"diverged": False, "test_accuracy": 0.3343, "epochs": 10}]
    out = aggregate(per_seed)
    assert out["test_accuracy"] == {"mean": 0.3343, "std": None, "n": 1, "min": 0.3343, "max": 0.3343}
    assert (out["diverged_seeds"], out["seeds"]) == (2, 3)
