"""How our seeds answer a comparison: a seed-blocked model per experiment, then one adjustment per family.

Per experiment and metric, y[run, seed] = mu + alpha[run] + beta[seed] + e, e ~ N(0, sigma^2[run]); a - b is the
least-squares contrast alpha[a] - alpha[b], its variance from each run's own residual spread with Satterthwaite's
degrees of freedom (Welch's test where two runs share fewer than 2 seeds). The write-up's claims are confirmatory
(Bonferroni), the other comparisons exploratory (Benjamini-Hochberg, Benjamini-Yekutieli CIs), and the rule pairs
(an effect's per-seed change between two budget rules, paired t) a third family (Bonferroni); in every family a CI
excludes 0 exactly when its adjusted p < alpha. docs/statistics.md states the model, its fallbacks and why, and
its measured error rates.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Hashable

import numpy as np
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from ch11.report.stats import is_finite, summarize

ALPHA = 0.05
RESOLVE_POWER = 0.8   # the chance that "~n seeds would resolve it" gives a CI excluding 0, were Δ as estimated
CONFIRMATORY, EXPLORATORY, RULE_PAIRS = "confirmatory", "exploratory", "rule pairs"
Key = tuple[str, str, str, str]   # (run a, metric read on a, run b, metric): one comparison


@dataclass(frozen=True)
class Estimate:
    """A difference, its standard error and degrees of freedom, and the seeds behind it."""
    diff: float
    se: float
    df: float
    n: str            # "10" (seeds both runs share), or "10/5" (Welch: no shared seeds)
    blocked: bool

    def p(self) -> float:
        """Two-sided p-value of 'no difference'."""
        if self.se == 0:
            return 1.0 if self.diff == 0 else 0.0
        return float(2 * sps.t.sf(abs(self.diff) / self.se, self.df))

    def ci(self, level: float) -> tuple[float, float]:
        half = self.se * float(sps.t.ppf(0.5 + level / 2, self.df)) if self.se else 0.0
        return self.diff - half, self.diff + half


class BlockModel:
    """Least squares of the two-way additive model over ``columns`` (key -> seed -> value; None/NaN/inf left
    out), with per-column residual variances; ``blocked=False`` drops the seed term (one-way, Welch)."""

    def __init__(self, columns: dict[Hashable, dict[int, float | None]], blocked: bool = True):
        cells = [(k, s, float(v)) for k, values in columns.items() for s, v in values.items()
                 if is_finite(v)]
        self.keys = list(dict.fromkeys(k for k, _, _ in cells))
        seeds = sorted({s for _, s, _ in cells}) if blocked else []
        self.masks = [np.array([kk == k for kk, _, _ in cells]) for k in self.keys]   # each column's cells
        self.seeds_of = {k: {s for kk, s, _ in cells if kk == k} for k in self.keys}
        x = np.column_stack([np.ones(len(cells))] + self.masks[1:]
                            + [[s == seed for _, seed, _ in cells] for s in seeds[1:]]).astype(float)
        self.y = np.array([v for _, _, v in cells])
        self.gram = x.T @ x
        self.gram_inv = np.linalg.pinv(self.gram)
        self.solve = self.gram_inv @ x.T          # coefficients = solve @ y
        residual_maker = np.eye(len(cells)) - x @ self.solve
        residuals = residual_maker @ self.y
        rss = np.array([np.sum(residuals[m] ** 2) for m in self.masks])
        # each column's share of the residual degrees of freedom (Welch: n - 1; balanced: (S-1)(K-1)/K)
        self.df_per_key = np.array([np.trace(residual_maker[np.ix_(m, m)]) for m in self.masks])
        rss[rss <= 1e-20 * np.sum(self.y ** 2)] = 0.0    # round-off of an exact fit: no spread at all
        self.variances = np.divide(rss, self.df_per_key, out=np.zeros_like(rss), where=self.df_per_key > 0)

    def contrast(self, a: Hashable, b: Hashable) -> Estimate | None:
        """alpha[a] - alpha[b]; None when the data cannot estimate it (no residual degrees of freedom, or a
        and b not linked through shared seeds)."""
        c = np.zeros(self.gram.shape[0])
        for key, sign in ((a, 1.0), (b, -1.0)):
            if self.keys.index(key):
                c[self.keys.index(key)] += sign
        if not np.allclose(c @ self.gram_inv @ self.gram, c, atol=1e-8) or not self.df_per_key.sum():
            return None
        w = c @ self.solve
        parts = np.array([s2 * np.sum(w[m] ** 2) for s2, m in zip(self.variances, self.masks)])
        var = float(parts.sum())
        live = parts > 0
        df = var ** 2 / float(np.sum(parts[live] ** 2 / self.df_per_key[live])) if var > 0 else math.inf
        shared = self.seeds_of[a] & self.seeds_of[b]
        blocked = self.gram.shape[0] > len(self.keys)
        n = str(len(shared)) if blocked else f"{len(self.seeds_of[a])}/{len(self.seeds_of[b])}"
        return Estimate(round(float(w @ self.y), 10) + 0.0, math.sqrt(var), df, n, blocked)  # no round-off, no -0


def estimate(columns: dict[Hashable, dict[int, float | None]], a: Hashable, b: Hashable,
             model: BlockModel | None = None) -> Estimate | None:
    """a - b from the experiment's ``model`` (built from ``columns`` if not given) when a and b share at least 2
    seeds with a value on both; else Welch on the two columns alone; None when a side has fewer than 2 values."""
    finite = {k: {s for s, v in columns[k].items() if is_finite(v)} for k in (a, b)}
    if min(map(len, finite.values())) < 2:
        return None
    if len(finite[a] & finite[b]) >= 2:
        found = (model or BlockModel(columns)).contrast(a, b)
        if found is not None:
            return found
    return BlockModel({a: columns[a], b: columns[b]}, blocked=False).contrast(a, b)


@dataclass(frozen=True)
class Adjusted:
    """A comparison's numbers after its family's adjustment."""
    family: str
    p_adj: float
    level: float      # the CI's confidence level
    ci_low: float
    ci_high: float


def adjust(estimates: dict[Hashable, Estimate], family: str, alpha: float = ALPHA) -> dict[Hashable, Adjusted]:
    """One family's adjusted p-values and CIs (module docstring), so that a CI excludes 0 iff p_adj < alpha."""
    keys = list(estimates)
    if not keys:
        return {}
    bonferroni = family != EXPLORATORY     # the confirmatory claims, the rule pairs
    p_adj = multipletests([estimates[k].p() for k in keys], alpha, "bonferroni" if bonferroni else "fdr_bh")[1]
    selected = 1 if bonferroni else max(int(np.sum(p_adj < alpha)), 1)   # Benjamini-Yekutieli's R
    level = 1 - selected * alpha / len(keys)
    return {k: Adjusted(family, float(pa), level, *estimates[k].ci(level)) for k, pa in zip(keys, p_adj)}


def paired_mean(differences: list[float | None]) -> Estimate | None:
    """The mean of per-seed differences with its one-sample t (n - 1 df): e.g. how much an effect changes between
    two rules, seed by seed; None with fewer than 2 finite values."""
    s = summarize(differences)
    if s["n"] < 2:
        return None
    return Estimate(s["mean"], s["std"] / math.sqrt(s["n"]), s["n"] - 1, str(s["n"]), True)


def seeds_to_resolve(est: Estimate, level: float, magnitude: float, limit: int = 200) -> int | None:
    """Seeds per run at which a CI at ``level`` would exclude 0 with probability RESOLVE_POWER if the true effect
    were ``magnitude``, at the observed spread: the t-based sample size (t at the CI's level plus t at the power)
    with the standard error scaling as 1/sqrt(seeds) and the degrees of freedom in proportion; None past
    ``limit``. Called for a CI that holds 0 around |diff| >= delta (findings.numbers): se > 0, df finite, n >= 2."""
    n_now = int(est.n.split("/")[0])
    for n in range(n_now + 1, limit + 1):
        df = est.df * (n - 1) / (n_now - 1)
        t_sum = sps.t.ppf(0.5 + level / 2, df) + sps.t.ppf(RESOLVE_POWER, df)
        if t_sum * est.se * math.sqrt(n_now / n) < abs(magnitude):
            return n
    return None


def infer(keys: dict[Key, Hashable], confirmatory: set[Key], exploratory: set[Key],
          values: Callable[[str, str, str], dict[int, float | None]]
          ) -> dict[Key, tuple[Estimate | None, Adjusted | None]]:
    """The whole procedure: every comparison in ``keys`` (key -> its experiment) estimated in one seed-blocked model
    per (experiment, metric) over every run the experiment compares on that metric, then adjusted within its family
    (keys in neither family are estimated, not adjusted). ``values(run, read, metric)``: seed -> value. The same
    models read two ways (MC dropout: a == b) are paired over their own seeds and stay out of the experiment's
    model: a second reading of the same models is not another run, and would count their seed effects twice."""
    found = {}
    for exp, metric in dict.fromkeys((e, k[3]) for k, e in keys.items()):
        mine = [k for k, e in keys.items() if (e, k[3]) == (exp, metric)]
        columns = {(run, read): values(run, read, metric)
                   for a, a_read, b, _ in mine for run, read in ((a, a_read), (b, metric))}
        runs = {s: columns[s] for a, a_read, b, _ in mine if a != b for s in ((a, a_read), (b, metric))}
        model = BlockModel(runs) if runs else None
        for a, a_read, b, _ in mine:
            sides = (a, a_read), (b, metric)
            found[(a, a_read, b, metric)] = (estimate({s: columns[s] for s in sides}, *sides) if a == b
                                             else estimate(runs, *sides, model))
    adjusted = {}
    for family, members in ((CONFIRMATORY, confirmatory), (EXPLORATORY, exploratory)):
        adjusted |= adjust({k: found[k] for k in keys if k in members and found[k]}, family)
    return {k: (found[k], adjusted.get(k)) for k in keys}
