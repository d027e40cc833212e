"""The inference procedure (ch11/report/inference.py) against known answers: scipy's Welch and paired t-tests,
statsmodels' least squares, Benjamini and Hochberg's (1995) worked example, hand-counted Bonferroni."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats as sps
from statsmodels.stats.power import TTestPower

from ch11.report import inference as inf

RNG = np.random.default_rng(7)


def column(values, seeds=None) -> dict[int, float]:
    return dict(zip(seeds or range(1, len(values) + 1), map(float, values)))


def test_runs_without_shared_seeds_get_welchs_test():
    a, b = RNG.normal(88, 1, 6), RNG.normal(87, 2, 4)
    est = inf.estimate({"a": column(a, [1, 2, 3, 4, 5, 6]), "b": column(b, [7, 8, 9, 10])}, "a", "b")
    welch = sps.ttest_ind(a, b, equal_var=False)
    assert not est.blocked and est.n == "6/4"
    assert est.p() == pytest.approx(welch.pvalue) and est.df == pytest.approx(welch.df)
    assert est.ci(0.95) == pytest.approx(tuple(welch.confidence_interval(0.95)))


def test_two_runs_over_shared_seeds_are_the_paired_t_test():
    a = RNG.normal(88, 1, 10)
    b = a - 0.3 + RNG.normal(0, 0.4, 10)
    est = inf.estimate({"a": column(a), "b": column(b)}, "a", "b")
    paired = sps.ttest_rel(a, b)
    assert est.blocked and est.n == "10"
    assert est.p() == pytest.approx(paired.pvalue) and est.df == pytest.approx(9)
    assert est.ci(0.95) == pytest.approx(tuple(paired.confidence_interval(0.95)))



def test_a_second_reading_of_the_same_models_stays_out_of_the_experiments_model():
    """MC dropout reads a's models again: a − b is still the paired t-test of a and b, and the reading is paired
    with its own models."""
    a = RNG.normal(88, 1, 10)
    b, mc = a - 0.3 + RNG.normal(0, 0.4, 10), a + RNG.normal(0, 0.05, 10)
    data = {("a", "acc"): column(a), ("b", "acc"): column(b), ("a", "mc_acc"): column(mc)}
    plain, again = ("a", "acc", "b", "acc"), ("a", "mc_acc", "a", "acc")
    found = inf.infer({plain: 11, again: 11}, set(), {plain, again}, lambda run, read, _: data[(run, read)])
    for key, (x, y) in ((plain, (a, b)), (again, (mc, a))):
        est, paired = found[key][0], sps.ttest_rel(x, y)
        assert est.p() == pytest.approx(paired.pvalue) and est.df == pytest.approx(9), key

def long_table(columns: dict[str, dict[int, float]]) -> pd.DataFrame:
    return pd.DataFrame([(run, seed, y) for run, c in columns.items() for seed, y in c.items()],
                        columns=["run", "seed", "y"])


def test_a_balanced_experiment_uses_each_runs_residual_spread_from_the_two_way_fit():
    seed_effect = RNG.normal(0, 1, 10)
    columns = {run: column(88 + shift + seed_effect + RNG.normal(0, sd, 10))
               for run, shift, sd in (("base", 0, 0.3), ("x", 0.5, 0.3), ("y", -0.2, 1.0), ("z", 0.1, 0.6))}
    model = inf.BlockModel(columns)
    ols = smf.ols("y ~ C(run, Treatment('base')) + C(seed)", long_table(columns)).fit()
    resid = long_table(columns).assign(e=ols.resid).groupby("run")["e"]
    k, s = 4, 10
    sigma2 = resid.apply(lambda e: (e ** 2).sum()) / ((s - 1) * (k - 1) / k)
    est = model.contrast("y", "x")
    assert est.diff == pytest.approx(np.mean(list(columns["y"].values())) - np.mean(list(columns["x"].values())))
    assert est.diff == pytest.approx(ols.params["C(run, Treatment('base'))[T.y]"]
                                     - ols.params["C(run, Treatment('base'))[T.x]"])
    assert est.se == pytest.approx(np.sqrt((sigma2["y"] + sigma2["x"]) / s))
    per_run_df = (s - 1) * (k - 1) / k     # Satterthwaite with two variance components
    expected_df = (sigma2["y"] + sigma2["x"]) ** 2 / ((sigma2["y"] ** 2 + sigma2["x"] ** 2) / per_run_df)
    assert est.df == pytest.approx(expected_df)


def test_an_unbalanced_experiment_estimates_the_least_squares_contrast():
    seed_effect = RNG.normal(0, 1, 10)
    columns = {"base": column(88 + seed_effect + RNG.normal(0, 0.3, 10)),
               "x": column(88.4 + seed_effect[:5] + RNG.normal(0, 0.3, 5)),
               "y": {s: v for s, v in column(87.9 + seed_effect + RNG.normal(0, 0.3, 10)).items() if s != 3}}
    ols = smf.ols("y ~ C(run, Treatment('base')) + C(seed)", long_table(columns)).fit()
    assert inf.BlockModel(columns).contrast("x", "base").diff == pytest.approx(
        ols.params["C(run, Treatment('base'))[T.x]"])


def test_identical_runs_have_no_spread_and_a_zero_width_interval():
    same = column([88.0, 88.5, 87.5, 88.2])
    est = inf.estimate({"a": same, "b": dict(same)}, "a", "b")
    assert est.p() == 1.0 and est.ci(0.95) == (0.0, 0.0)


def test_fewer_than_two_values_on_a_side_is_not_estimated():
    assert inf.estimate({"a": {1: 85.0, 2: None, 3: float("nan")}, "b": column([88.0, 88.5])}, "a", "b") is None


def with_p(p: float, df: float = 1e6) -> inf.Estimate:
    """An estimate whose two-sided p-value is ``p`` (standard error 1)."""
    return inf.Estimate(float(sps.t.isf(p / 2, df)), 1.0, df, "10", True)


def test_benjamini_hochberg_on_their_worked_example():
    """Benjamini & Hochberg (1995), section 4: 15 p-values; at q = 0.05 the four smallest are rejected."""
    p = [0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262, 0.5719, 0.6528,
         0.7590, 1.0]
    adjusted = inf.adjust({i: with_p(x) for i, x in enumerate(p)}, inf.EXPLORATORY)
    rejected = {i for i, a in adjusted.items() if a.p_adj < 0.05}
    assert rejected == {0, 1, 2, 3}
    assert all(a.level == pytest.approx(1 - 4 * 0.05 / 15) for a in adjusted.values())   # FCR: 1 - R q / m
    assert {i for i, a in adjusted.items() if a.ci_low > 0 or a.ci_high < 0} == rejected


@pytest.mark.parametrize("family", [inf.CONFIRMATORY, inf.RULE_PAIRS])
def test_bonferroni_multiplies_by_the_family_size_and_widens_every_interval_alike(family):
    adjusted = inf.adjust({"a": with_p(0.01), "b": with_p(0.02), "c": with_p(0.2)}, family)
    assert [adjusted[k].p_adj for k in "abc"] == pytest.approx([0.03, 0.06, 0.6])
    assert all(a.level == pytest.approx(1 - 0.05 / 3) for a in adjusted.values())
    assert [adjusted[k].ci_low > 0 for k in "abc"] == [True, False, False]


SLEEP = [1.2, 2.4, 1.3, 1.3, 0.0, 1.0, 1.8, 0.8, 4.6, 1.4]   # Student (1908): extra hours of sleep, drug 2 − drug 1


def test_a_paired_mean_on_students_sleep_data():
    """Student's (1908) sleep data, the textbook paired t: mean 1.58, t = 4.06 on 9 df, p = 0.0028, 95 % CI
    [0.70, 2.46] (R's ``t.test(extra ~ group, data = sleep, paired = TRUE)``, sign flipped)."""
    est = inf.paired_mean([*SLEEP, None])
    assert (est.diff, est.df, est.n) == (pytest.approx(1.58), 9, "10")
    assert est.diff / est.se == pytest.approx(4.0621, abs=1e-4) and est.p() == pytest.approx(0.002833, abs=1e-6)
    assert est.ci(0.95) == pytest.approx((0.7001, 2.4599), abs=1e-4)
    assert inf.paired_mean([1.0, None]) is None


def test_an_interval_excludes_zero_exactly_when_its_adjusted_p_is_below_alpha():
    ests = {i: inf.Estimate(float(RNG.normal(0, 2)), float(RNG.uniform(0.3, 1.5)), float(RNG.uniform(3, 40)), "5", True)
            for i in range(60)}
    for family in (inf.CONFIRMATORY, inf.EXPLORATORY):
        for a in inf.adjust(ests, family).values():
            assert (a.ci_low > 0 or a.ci_high < 0) == (a.p_adj < inf.ALPHA)


def test_seeds_to_resolve_at_the_observed_spread():
    """The textbook paired-t sample size: effect size 0.5 standard deviations, two-sided 5 %, 80 % power needs 34
    pairs (statsmodels' exact noncentral-t solution, 33.4, rounded up); here from 5 seeds with se = sd / sqrt(5)."""
    exact = TTestPower().solve_power(effect_size=0.5, alpha=0.05, power=inf.RESOLVE_POWER)
    est = inf.Estimate(0.5, 1 / math.sqrt(5), 4.0, "5", True)
    assert inf.seeds_to_resolve(est, 0.95, est.diff) == math.ceil(exact) == 34
    assert inf.seeds_to_resolve(inf.Estimate(0.01, 1.0, 4.0, "5", True), 0.95, 0.01) is None
