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


def claims(size_a: str, size_b: str) -> Claims:
    comparison = {"a": "a", "b": "ref", "sign": "+"}
    return Claims.model_validate({"delta": 0.5, "experiments": {
        1: {"title": "far", "dataset": "fashion_mnist", "claim": "a > ref", "reference": "ref",
            "runs": {"a": size_a, "ref": "ref"}, "comparisons": [comparison]},
        2: {"title": "near", "dataset": "fashion_mnist", "claim": "b > ref", "reference": "ref",
            "runs": {"b": size_b, "ref": "ref"}, "comparisons": [{**comparison, "a": "b"}]}}})


def check(committed: list[float], rerun: list[float]) -> dict:
    return {"runs": {"x": {"committed": {str(s): c for s, c in zip(SEEDS, committed)},
                           "rerun": {str(s): r for s, r in zip(SEEDS, rerun)}}}}


RNG = np.random.default_rng(7)
REF = list(0.88 + RNG.normal(0, 0.003, len(SEEDS)))


def test_redraw_weight_matches_the_measured_changes():
    spread = [0.880, 0.884, 0.876, 0.882, 0.878, 0.881, 0.879, 0.883, 0.877, 0.880]
    assert robustness.redraw_weight(check(spread, spread)) == 1.0           # nothing moved: no re-draw
    assert robustness.redraw_weight(check(spread, spread[::-1])) < 0.5     # seeds swapped: mostly re-drawn
    assert robustness.redraw_weight(check(spread, [x + 0.05 for x in spread])) == 0.0   # clipped


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
