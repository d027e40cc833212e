"""The inference procedure's error rates on this study's own design, by simulation (tests/test_calibration.py
checks them; bench/calibration.py prints them for docs/statistics.md).

The design is the report's: its comparisons, experiments and families (ch11/report/findings.design), each
run's seeds and each column's spread as measured (or every run at the planned seeds). Each simulated study
draws, per metric, a common seed effect (a seed fixes the data order of every run); every other column shares it
(correlation 0.9 between such columns) and the others do not, so some comparisons are correlated and some are
not, at unequal spreads. The whole procedure (ch11/report/inference.infer) runs on it. An error is a CI that
excludes 0 on the wrong side of the true difference, or at all where it is 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ch11.report import claims as claims_mod, inference as inf, verdicts as v
from ch11.report.findings import design, load_run, scale_of
from ch11.report.stats import runs_of, summarize

SHARED = 0.9   # correlation between two columns that both follow their experiment's seed effect


@dataclass(frozen=True)
class Design:
    keys: dict[inf.Key, int]
    confirmatory: set[inf.Key]
    exploratory: set[inf.Key]
    seeds: dict[tuple[str, str, str], list[int]]      # column (run, read, metric) -> its seeds with a value
    sd: dict[tuple[str, str, str], float]             # its spread over seeds, as measured
    mean: dict[tuple[str, str, str], float]           # its mean, as measured


def study_design(params, dataset: str, seeds: list[int] | None = None) -> Design:
    """The report's design on ``dataset`` (ch11/report/findings.design) with each column's seeds, spread and mean as
    measured; ``seeds``: give every column these seeds instead (e.g. the planned ten)."""
    runs = {n: load_run(params, dataset, n) for n in runs_of(params, dataset)}
    _, _, keys, confirmatory, exploratory = design(claims_mod.load(), dataset, runs)
    columns = {(run, read, k[3]) for k in keys for run, read in ((k[0], k[1]), (k[2], k[3]))}
    measured = {c: summarize(runs[c[0]].values(c[1], scale_of(c[2])).values()) for c in columns}
    return Design(keys, confirmatory, exploratory,
                  {c: seeds or [s for s, x in runs[c[0]].values(c[1]).items() if x is not None] for c in columns},
                  {c: m["std"] or 0.0 for c, m in measured.items()}, {c: m["mean"] or 0.0 for c, m in measured.items()})


@dataclass(frozen=True)
class Rates:
    reps: int
    fwer_confirmatory: float     # share of studies with any confirmatory error
    fdr_exploratory: float       # mean share of errors among the exploratory CIs that exclude 0
    power: float                 # share of comparisons with |true difference| >= delta resolved the right way
    false_no_effect: float       # share of those read "no effect" (a CI inside ±delta: not a controlled rate)

    def mc_error(self, rate: float) -> float:
        """Monte-Carlo standard error of a rate estimated from ``reps`` studies."""
        return math.sqrt(max(rate * (1 - rate), 1e-12) / self.reps)


def simulate(d: Design, reps: int, null: bool, delta: float, seed: int = 0) -> Rates:
    """``reps`` simulated studies: under the null (every column of an experiment has the same mean) or with the
    measured means as the truth."""
    rng = np.random.default_rng(seed)
    cols = sorted(d.seeds)
    follows = {c: i % 2 == 0 for i, c in enumerate(cols)}    # every other column follows the seed effect
    truth = {k: 0.0 if null else d.mean[(k[0], k[1], k[3])] - d.mean[(k[2], k[3], k[3])] for k in d.keys}
    seeds = sorted({s for c in cols for s in d.seeds[c]})
    fw, fdr, hits, missed, chances = 0, 0.0, 0, 0, 0
    for _ in range(reps):
        block = {m: dict(zip(seeds, rng.standard_normal(len(seeds)))) for m in {c[2] for c in cols}}
        draws = {}
        for c in cols:
            mu = 0.0 if null else d.mean[c]
            own = rng.standard_normal(len(d.seeds[c]))
            draws[c] = {}
            for s, z in zip(d.seeds[c], own):
                noise = math.sqrt(SHARED) * block[c[2]][s] + math.sqrt(1 - SHARED) * z if follows[c] else z
                draws[c][s] = mu + d.sd[c] * noise
        judged = inf.infer(d.keys, d.confirmatory, d.exploratory, lambda run, read, metric: draws[(run, read, metric)])
        wrong = {k: a is not None and (a.ci_low > 0 or a.ci_high < 0) and not (
                 (a.ci_low > 0 and truth[k] > 0) or (a.ci_high < 0 and truth[k] < 0)) for k, (_, a) in judged.items()}
        fw += any(wrong[k] for k in d.confirmatory)
        selected = [k for k in d.exploratory if judged[k][1] and (judged[k][1].ci_low > 0 or judged[k][1].ci_high < 0)]
        fdr += sum(wrong[k] for k in selected) / max(len(selected), 1)
        for k, (_, a) in judged.items():
            if a is not None and abs(truth[k]) >= delta:
                chances += 1
                hits += (a.ci_low > 0) if truth[k] > 0 else (a.ci_high < 0)
                missed += v.effect_reading(a.ci_low, a.ci_high, delta) == v.NO_EFFECT
    return Rates(reps, fw / reps, fdr / reps, *((hits / chances, missed / chances) if chances else (math.nan,) * 2))
