"""How firm each verdict is against a re-run on another host (pure functions, no files).

Another CPU's kernels change each seed's numbers a little, and a verdict next to a threshold can then fall
the other way. bench/host_sensitivity.py measures those per-seed changes (test accuracy, same seeds,
other kernels). A re-run on another host is a partial re-draw of the seeds: each seed's value becomes
m + r·(own − m) + √(1 − r²)·(fresh − m), m the run's mean and "fresh" a new draw from the normal
distribution with the runs' measured means and (co)variances — one draw per seed shared by every run with
the same seeds, so spreads and the pairing of runs keep their distribution while each seed moves by
√(2(1 − r))·sd on average; r is set so that this matches the measured changes (``redraw_weight``).
Every claim is re-judged SIMULATIONS times on such re-runs; the verdicts that come up in at least
MIN_SHARE of them are the verdict's *alternatives*: a verdict without them is one that the measured host
noise does not flip.
"""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from ch11 import evidence as ev

SIMULATIONS = 1000
MIN_SHARE = 0.01


def measured_shifts(check: dict) -> list[float]:
    """Re-run minus committed test accuracy of every seed that has both (a host check's 'runs' record)."""
    return [new - old for run in check["runs"].values() for seed, old in run["committed"].items()
            if old is not None and (new := run["rerun"].get(seed)) is not None]


def redraw_weight(check: dict) -> float:
    """r such that a partial re-draw moves seeds as much as the check measured: mean squared change =
    2 (1 - r) x the mean seed variance of the re-trained runs (0: a host change is a fresh draw)."""
    shifts = measured_shifts(check)
    variances = [np.var(vals, ddof=1) for run in check["runs"].values()
                 if len(vals := [x for x in run["committed"].values() if x is not None]) > 1]
    if not shifts or not variances or not np.mean(variances):
        return 1.0
    return float(np.clip(1 - np.mean(np.square(shifts)) / (2 * np.mean(variances)), 0.0, 1.0))


def redrawn(runs: dict[str, ev.RunData], r: float, rng: np.random.Generator) -> dict[str, ev.RunData]:
    """Each run's test accuracies partially re-drawn (module docstring); diverged seeds stay as they are.
    The fresh draw for seed s is m + sum_t g[s, t] (x_t - m) / sqrt(k - 1), g standard normal and shared by
    the runs with the same seeds: normal, with the sample covariance of those runs across seeds."""
    weights: dict[tuple, np.ndarray] = {}
    out = {}
    for name, run in runs.items():
        seeds = tuple(run.seeds)
        if seeds not in weights:
            weights[seeds] = rng.standard_normal((len(seeds), len(seeds)))
        g = weights[seeds]
        acc = np.array([run.evals.get(s, {}).get("test_accuracy") for s in seeds], dtype=float)
        ok = np.isfinite(acc)
        if ok.sum() < 2:
            out[name] = run
            continue
        dev = np.where(ok, acc - acc[ok].mean(), 0.0)
        fresh = g[:, ok] @ dev[ok] / np.sqrt(ok.sum() - 1)
        new = np.clip(acc[ok].mean() + r * dev + np.sqrt(1 - r * r) * fresh, 0.0, 1.0)
        evals = {s: {**run.evals[s], "test_accuracy": float(new[i])} if ok[i] else run.evals[s]
                 for i, s in enumerate(seeds)}
        out[name] = dataclasses.replace(run, evals=evals)
    return out


def alternatives(claims, dataset: str, runs: dict[str, ev.RunData], rows: dict[int, list[ev.Row]],
                 r: float, simulations: int = SIMULATIONS, seed: int = 0) -> None:
    """Set ``row.alternatives`` (other verdict -> share of simulated re-runs, >= MIN_SHARE) on every row."""
    if r >= 1.0:
        return
    rng = np.random.default_rng(seed)
    counts = {(n, i): Counter() for n, rs in rows.items() for i in range(len(rs))}
    for _ in range(simulations):
        for number, judged in ev.judge(claims, dataset, redrawn(runs, r, rng)).items():
            for i, row in enumerate(judged):
                counts[(number, i)][row.verdict] += 1
    for (number, i), counted in counts.items():
        row = rows[number][i]
        row.alternatives = {verdict: k / simulations for verdict, k in counted.most_common()
                            if verdict != row.verdict and k / simulations >= MIN_SHARE}
