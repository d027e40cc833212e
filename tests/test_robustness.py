"""The host-robustness rule (ch11/robustness.py) on constructed data: partial re-draws keep what a host
change keeps, and only verdicts near a threshold get alternatives."""
from __future__ import annotations

import numpy as np
import pytest

from ch11 import evidence as ev, robustness, verdicts as v
from ch11.claims import Claims

SEEDS = list(range(1, 11))


def run(name: str, accuracies: list[float | None]) -> ev.RunData:
    evals = {s: ({"diverged": True} if a is None else {"test_accuracy": a, "diverged": False})
             for s, a in zip(SEEDS, accuracies)}
    return ev.RunData(name, SEEDS, evals, {}, {}, {})


def claims(size_a: str, size_b: str, metric: str = "test_accuracy") -> Claims:
    comparison = {"a": "a", "b": "ref", "sign": "+", "metric": metric}
    return Claims.model_validate({"delta": 0.5, "experiments": {
        1: {"title": "far", "dataset": "fashion_mnist", "claim": "a > ref", "reference": "ref",
            "runs": {"a": size_a, "ref": "ref"}, "comparisons": [comparison]},
        2: {"title": "near", "dataset": "fashion_mnist", "claim": "b > ref", "reference": "ref",
            "runs": {"b": size_b, "ref": "ref"}, "comparisons": [{**comparison, "a": "b"}]}}})


RNG = np.random.default_rng(7)
REF = list(0.88 + RNG.normal(0, 0.003, len(SEEDS)))


def test_implied_weight_solves_the_expected_squared_change():
    assert robustness.implied_weight(0.0, 5) == 1.0                    # nothing moved: nothing re-drawn
    assert robustness.implied_weight(1.8, 5) == robustness.implied_weight(3.0, 5) == 0.0   # a fresh draw or more
    for q, k in ((0.3, 5), (1.0, 10), (1.5, 5)):
        r = robustness.implied_weight(q, k)
        assert 0 < r < 1 and (1 - r) ** 2 * (k - 1) / k + 1 - r * r == pytest.approx(q)


def test_redraw_weight_averages_the_runs_ratios():
    spread = [0.880, 0.884, 0.876, 0.882, 0.878]
    variance = np.var(spread, ddof=1)                                   # 1e-5
    shifted = [x + d for x, d in zip(spread, [0.002, -0.002, 0.0, 0.0, 0.0])]   # mean squared change 1.6e-6
    record = {"runs": {"a": {"committed": dict(zip("12345", spread)), "rerun": dict(zip("12345", spread))},
                       "b": {"committed": dict(zip("12345", spread)), "rerun": dict(zip("12345", shifted))},
                       "diverged": {"committed": {"1": None, "2": 0.1}, "rerun": {"1": None, "2": 0.1}}}}
    assert set(robustness.run_ratios(record)) == {"a", "b"}             # < 2 seeds with a value: left out
    expected = robustness.implied_weight((0 + 1.6e-6 / variance) / 2, 5)
    assert robustness.redraw_weight(record) == pytest.approx(expected) and expected < 1
    assert robustness.redraw_weight({"runs": {"a": record["runs"]["a"]}}) == 1.0


def test_redrawn_seeds_move_as_calibrated_and_keep_variance_and_covariance():
    a = np.array(REF)
    b = 0.5 * a + np.random.default_rng(5).normal(0, 0.002, len(SEEDS)) + 0.4
    runs = {"a": run("a", list(a)), "b": run("b", list(b))}
    r, k, rng = 0.6, len(SEEDS), np.random.default_rng(1)
    draws = [robustness.redrawn(runs, r, rng) for _ in range(4000)]
    new = {n: np.array([[d[n].evals[s]["test_accuracy"] for s in SEEDS] for d in draws]) for n in runs}
    shift = np.mean((new["a"] - a) ** 2)
    assert shift == pytest.approx(((1 - r) ** 2 * (k - 1) / k + 1 - r * r) * np.var(a, ddof=1), rel=0.05)
    assert np.mean(np.var(new["a"], axis=1, ddof=1)) == pytest.approx(np.var(a, ddof=1), rel=0.05)
    covariance = np.mean([np.cov(x, y)[0, 1] for x, y in zip(new["a"], new["b"])])
    assert covariance == pytest.approx(np.cov(a, b)[0, 1], rel=0.05)


def test_a_partial_redraw_keeps_pairing_and_diverged_seeds():
    runs = {"a": run("a", [x + 0.01 for x in REF]), "ref": run("ref", REF),
            "d": run("d", [None, None, *REF[2:]])}
    out = robustness.redrawn(runs, 0.6, np.random.default_rng(0))
    moved = [out["ref"].evals[s]["test_accuracy"] - runs["ref"].evals[s]["test_accuracy"] for s in SEEDS]
    assert max(map(abs, moved)) > 1e-4                                   # the seeds moved ...
    for s in SEEDS:                                                      # ... but a - ref stays paired
        assert out["a"].evals[s]["test_accuracy"] - out["ref"].evals[s]["test_accuracy"] == pytest.approx(0.01)
    assert out["d"].evals[1] == {"diverged": True} and out["d"].evals[2] == {"diverged": True}
    assert robustness.redrawn(runs, 1.0, np.random.default_rng(0))["ref"].evals == runs["ref"].evals


def test_only_verdicts_near_a_threshold_get_alternatives():
    noise = list(np.random.default_rng(3).normal(0, 0.003, len(SEEDS)))
    runs = {"ref": run("ref", REF),
            "a": run("a", [x + 0.02 + n for x, n in zip(REF, noise)]),                 # +2 pts: far
            "b": run("b", [x + 0.0025 + n for x, n in zip(REF, noise)])}               # ~ the edge
    c = claims("a", "b")
    rows = ev.judge(c, "fashion_mnist", runs)
    assert rows[1][0].verdict == v.CONFIRMED
    robustness.alternatives(c, "fashion_mnist", runs, rows, r=0.6, simulations=300)
    assert rows[1][0].alternatives == {}
    assert rows[2][0].alternatives and all(robustness.MIN_SHARE <= s < 1 for s in rows[2][0].alternatives.values())
    assert rows[2][0].verdict not in rows[2][0].alternatives
    again = ev.judge(c, "fashion_mnist", runs)
    robustness.alternatives(c, "fashion_mnist", runs, again, r=0.6, simulations=300)
    assert again[2][0].alternatives == rows[2][0].alternatives           # fixed seed: reproducible
    fresh = ev.judge(c, "fashion_mnist", runs)
    robustness.alternatives(c, "fashion_mnist", runs, fresh, r=1.0)
    assert fresh[2][0].alternatives == {}                                # r = 1: a host change moves nothing
    other = claims("a", "b", metric="best_val_accuracy")
    for r in runs.values():
        for m in r.evals.values():
            m["best_val_accuracy"] = m["test_accuracy"]
    rows = ev.judge(other, "fashion_mnist", runs)
    robustness.alternatives(other, "fashion_mnist", runs, rows, r=0.6, simulations=50)
    assert rows[2][0].alternatives is None                               # not the metric the check measured
