"""The whole inference procedure on this study's own design, simulated 1,000 times (ch11/report/calibration.py): the
family-wise error rates of the confirmatory family and of the rule pairs and the false-discovery rate of the
exploratory family stay at 5 % within Monte-Carlo error, under the null and at the measured means."""
from __future__ import annotations

import pytest

from ch11 import params as params_mod
from ch11.report import calibration as cal, claims, inference as inf

pytestmark = pytest.mark.slow
REPS = 1000


@pytest.fixture(scope="module")
def design() -> cal.Design:
    return cal.study_design(params_mod.load(), "fashion_mnist")


@pytest.mark.parametrize("null", [True, False], ids=["null", "measured-means"])
def test_error_rates_stay_at_alpha(design, null):
    rates = cal.simulate(design, REPS, null, claims.load().delta, seed=11)
    bound = inf.ALPHA + 2 * rates.mc_error(inf.ALPHA)
    assert rates.fwer_confirmatory <= bound, rates
    assert rates.fdr_exploratory <= bound, rates
    assert rates.fwer_rule_pairs <= bound, rates


def test_the_simulation_finds_an_unadjusted_procedure_out(design, monkeypatch):
    """The check can fail: with no adjustment (every CI at 95 %) the family-wise error rate under the null is far
    above 5 %."""
    monkeypatch.setattr(inf, "adjust", lambda ests, family, alpha=inf.ALPHA: {
        k: inf.Adjusted(family, e.p(), 0.95, *e.ci(0.95)) for k, e in ests.items()})
    rates = cal.simulate(design, 200, True, claims.load().delta, seed=3)
    assert rates.fwer_confirmatory > 0.2 and rates.fwer_rule_pairs > 0.15, rates
