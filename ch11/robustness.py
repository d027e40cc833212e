"""How firm each test-accuracy verdict is against a re-run on another host (pure functions, no files).

Another CPU's kernels change each seed's numbers a little, and a verdict next to a threshold can then fall
the other way. bench/host_sensitivity.py measures those per-seed changes (test accuracy, same seeds,
other kernels). A re-run on another host is modelled as a partial re-draw of the seeds: each seed's value
becomes m + r·(own − m) + √(1 − r²)·(fresh − m), m the run's mean and "fresh" a draw from the normal
distribution with the runs' sample means and covariance across seeds — one draw per seed shared by every
run with the same seeds, so spreads and the pairing of runs keep their distribution. r is set so that the
mean squared change per seed matches the check's, relative to each run's seed variance, averaged over
the runs it re-trained (``redraw_weight``). Every claim is re-judged SIMULATIONS times on such re-runs;
for the verdicts on test accuracy (the metric the check measured) the other verdicts that come up in at
least MIN_SHARE of them are its *alternatives*. Not modelled: a seed that diverges on one host only.
"""
from __future__ import annotations

import dataclasses
from collections import Counter

import numpy as np

from ch11 import evidence as ev

SIMULATIONS = 1000
MIN_SHARE = 0.01
METRIC = "test_accuracy"


def implied_weight(ratio: float, k: float) -> float:
    """r at which the expected squared change of a seed, (1 - r)^2 (k - 1)/k + 1 - r^2 times the seed
    variance (k seeds), is ``ratio`` times it; 1 when nothing moved, 0 when the measured change is a fresh
    draw's or more."""
    a = (k - 1) / k
    if ratio <= 0:
        return 1.0
    if ratio >= 1 + a:
        return 0.0
    return float(min(1.0, k * (np.sqrt(a * a + (1 + a - ratio) / k) - a)))


def run_ratios(check: dict) -> dict[str, tuple[float, int]]:
    """Per re-trained run with >= 2 seeds and a spread: (mean squared change / seed variance, seeds)."""
    out = {}
    for name, run in check["runs"].items():
        pairs = [(old, new) for seed, old in run["committed"].items()
                 if old is not None and (new := run["rerun"].get(seed)) is not None]
        if len(pairs) > 1 and (variance := np.var([old for old, _ in pairs], ddof=1)) > 0:
            out[name] = (float(np.mean([(new - old) ** 2 for old, new in pairs]) / variance), len(pairs))
    return out


def redraw_weight(check: dict) -> float:
    """The r of the module docstring from the check's runs, their ratios averaged (1: nothing moved)."""
    ratios = run_ratios(check)
    if not ratios:
        return 1.0
    return implied_weight(float(np.mean([q for q, _ in ratios.values()])),
                          float(np.mean([k for _, k in ratios.values()])))


def redrawn(runs: dict[str, ev.RunData], r: float, rng: np.random.Generator) -> dict[str, ev.RunData]:
    """Each run's test accuracies partially re-drawn (module docstring); diverged seeds stay as they are.
    The fresh draw for seed s is m + sum_t g[s, t] (x_t - m) / sqrt(k - 1), g standard normal and shared by
    the runs with the same seeds: normal, with the sample covariance of those runs across seeds."""
    weights: dict[tuple, np.ndarray] = {}
    out = {}
    for name, run in runs.items():
        seeds = tuple(sorted(run.seeds))
        if seeds not in weights:
            weights[seeds] = rng.standard_normal((len(seeds), len(seeds)))
        acc = np.array([run.evals.get(s, {}).get(METRIC) for s in seeds], dtype=float)
        ok = np.isfinite(acc)
        if ok.sum() < 2:
            out[name] = run
            continue
        dev = np.where(ok, acc - acc[ok].mean(), 0.0)
        fresh = weights[seeds][:, ok] @ dev[ok] / np.sqrt(ok.sum() - 1)
        new = np.clip(acc[ok].mean() + r * dev + np.sqrt(1 - r * r) * fresh, 0.0, 1.0)
        evals = {**run.evals, **{s: {**run.evals[s], METRIC: float(new[i])} for i, s in enumerate(seeds) if ok[i]}}
        out[name] = dataclasses.replace(run, evals=evals)
    return out


def simulated(row: ev.Row) -> bool:
    """Whether the row's verdict rests on test accuracy, the metric the re-draws move."""
    return getattr(row.item, "metric", None) == METRIC


def alternatives(claims, dataset: str, runs: dict[str, ev.RunData], rows: dict[int, list[ev.Row]],
                 r: float, simulations: int = SIMULATIONS, seed: int = 0) -> None:
    """Set ``row.alternatives`` (other verdict -> share of simulated re-runs, >= MIN_SHARE) on every row
    on test accuracy; the other rows keep ``None`` (not simulated)."""
    rng = np.random.default_rng(seed)
    counts = {(n, i): Counter() for n, rs in rows.items() for i in range(len(rs))}
    for _ in range(simulations if r < 1.0 else 0):
        for number, judged in ev.judge(claims, dataset, redrawn(runs, r, rng)).items():
            for i, row in enumerate(judged):
                counts[(number, i)][row.verdict] += 1
    for (number, i), counted in counts.items():
        row = rows[number][i]
        if simulated(row):
            row.alternatives = {verdict: k / simulations for verdict, k in counted.most_common()
                                if verdict != row.verdict and k / simulations >= MIN_SHARE}
