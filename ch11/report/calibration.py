"""The inference procedure's error rates on this study's own design, by simulation (tests/test_calibration.py
checks them; bench/calibration.py prints them for docs/statistics.md, which describes the simulation): the report's
comparisons and families (ch11/report/findings.design) and its rule pairs (findings.rule_pairs), each column's seeds,
spread and mean as measured, a common seed effect per metric that every other column follows, and the whole
procedure (ch11/report/inference.infer, and the rule pairs' paired t with Bonferroni) run on each simulated study.
An error is a CI that excludes 0 on the wrong side of the true difference, or at all where it is 0.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ch11.report import claims as claims_mod, inference as inf, verdicts as v
from ch11.report.findings import design, findings, load_run, scale_of
from ch11.report.stats import runs_of, summarize

SHARED = 0.9   # correlation between two columns that both follow their experiment's seed effect
Column = tuple[str, str, str]   # (run, metric read on it, metric)


@dataclass(frozen=True)
class Design:
    keys: dict[inf.Key, int]
    confirmatory: set[inf.Key]
    exploratory: set[inf.Key]
    seeds: dict[Column, list[int]]      # column -> its seeds with a value
    sd: dict[Column, float]             # its spread over seeds, as measured
    mean: dict[Column, float]           # its mean, as measured
    rule_pairs: list[tuple[Column, Column, Column, Column]]   # the change (a − b) − (c − d) of each rule pair


def study_design(params, dataset: str, seeds: list[int] | None = None) -> Design:
    """The report's design on ``dataset`` (ch11/report/findings.design) with each column's seeds, spread and mean as
    measured; ``seeds``: give every column these seeds instead (e.g. the planned ten)."""
    runs = {n: load_run(params, dataset, n) for n in runs_of(params, dataset)}
    claims = claims_mod.load()
    _, _, keys, confirmatory, exploratory = design(claims, dataset, runs)
    columns = {(run, read, k[3]) for k in keys for run, read in ((k[0], k[1]), (k[2], k[3]))}
    sides = lambda r: ((r["a"], r["a_metric"] or r["metric"], r["metric"]),  # noqa: E731  (an effect row's columns)
                       (r["b"], r["metric"], r["metric"]))
    pairs = [(*sides(p["first"]), *sides(p["second"])) for p in findings(claims, dataset, runs, [])["rule_pairs"]
             if p["diff"] is not None]
    measured = {c: summarize(runs[c[0]].values(c[1], scale_of(c[2])).values()) for c in columns}
    return Design(keys, confirmatory, exploratory,
                  {c: seeds or [s for s, x in runs[c[0]].values(c[1]).items() if x is not None] for c in columns},
                  {c: m["std"] or 0.0 for c, m in measured.items()}, {c: m["mean"] or 0.0 for c, m in measured.items()},
                  pairs)


@dataclass(frozen=True)
class Rates:
    reps: int
    fwer_confirmatory: float     # share of studies with any confirmatory error
    fdr_exploratory: float       # mean share of errors among the exploratory CIs that exclude 0
    power: float                 # share of comparisons with |true difference| >= delta resolved the right way
    false_no_effect: float       # share of those read "no effect" (a CI inside ±delta: not a controlled rate)
    fwer_rule_pairs: float       # share of studies with any rule-pair error

    def mc_error(self, rate: float) -> float:
        """Monte-Carlo standard error of a rate estimated from ``reps`` studies."""
        return math.sqrt(max(rate * (1 - rate), 1e-12) / self.reps)


def decided(a: inf.Adjusted | None) -> int:
    """The sign a CI decides: +1 above 0, -1 below, 0 holding 0 (or no CI)."""
    return 0 if a is None else (a.ci_low > 0) - (a.ci_high < 0)


def simulate(d: Design, reps: int, null: bool, delta: float, seed: int = 0) -> Rates:
    """``reps`` simulated studies: under the null (every column of an experiment has the same mean) or with the
    measured means as the truth."""
    rng = np.random.default_rng(seed)
    cols = sorted(d.seeds)
    follows = {c: i % 2 == 0 for i, c in enumerate(cols)}    # every other column follows the seed effect
    truth = {k: 0.0 if null else d.mean[(k[0], k[1], k[3])] - d.mean[(k[2], k[3], k[3])] for k in d.keys}
    sign = {k: (t > 0) - (t < 0) for k, t in truth.items()}
    seeds = sorted({s for c in cols for s in d.seeds[c]})
    change = lambda values, a, b, c, e: values[a] - values[b] - values[c] + values[e]  # noqa: E731
    pair_truth = [0 if null else np.sign(change(d.mean, *pair)) for pair in d.rule_pairs]
    pair_seeds = [sorted(set.intersection(*(set(d.seeds[c]) for c in pair))) for pair in d.rule_pairs]
    fw, fdr, hits, missed, chances, fw_pairs = 0, 0.0, 0, 0, 0, 0
    for _ in range(reps):
        block = {m: dict(zip(seeds, rng.standard_normal(len(seeds)))) for m in sorted({c[2] for c in cols})}
        draws = {}
        for c in cols:
            noise = rng.standard_normal(len(d.seeds[c]))
            if follows[c]:
                common = np.array([block[c[2]][s] for s in d.seeds[c]])
                noise = math.sqrt(SHARED) * common + math.sqrt(1 - SHARED) * noise
            draws[c] = dict(zip(d.seeds[c], (0.0 if null else d.mean[c]) + d.sd[c] * noise))
        estimates = {i: e for i, (pair, shared) in enumerate(zip(d.rule_pairs, pair_seeds))
                     if (e := inf.paired_mean([change({c: draws[c][s] for c in pair}, *pair) for s in shared]))}
        adjusted = inf.adjust(estimates, inf.RULE_PAIRS)
        fw_pairs += any(decided(a) not in (0, pair_truth[i]) for i, a in adjusted.items())
        judged = inf.infer(d.keys, d.confirmatory, d.exploratory, lambda run, read, metric: draws[(run, read, metric)])
        signs = {k: decided(a) for k, (_, a) in judged.items()}
        wrong = {k: s != 0 and s != sign[k] for k, s in signs.items()}
        fw += any(wrong[k] for k in d.confirmatory)
        selected = [k for k in d.exploratory if signs[k]]
        fdr += sum(wrong[k] for k in selected) / max(len(selected), 1)
        for k, (_, a) in judged.items():
            if a is not None and abs(truth[k]) >= delta:   # delta > 0: truth[k] has a sign
                chances += 1
                hits += signs[k] == sign[k]
                missed += v.effect_reading(a.ci_low, a.ci_high, delta) == v.NO_EFFECT
    return Rates(reps, fw / reps, fdr / reps, *((hits / chances, missed / chances) if chances else (math.nan,) * 2),
                 fw_pairs / reps)
