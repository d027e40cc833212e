"""Per-run summaries over seeds (constructed per-seed data)."""
from __future__ import annotations

import numpy as np
import pytest

from ch11.report.stats import aggregate, summarize


def test_summarize_known_mean_and_sample_std():
    s = summarize([0.80, 0.82, 0.84])
    assert s["mean"] == pytest.approx(0.82) and s["std"] == pytest.approx(np.std([0.80, 0.82, 0.84], ddof=1))
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
