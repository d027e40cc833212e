"""How often gradient clipping acted: counted during training without changing the update, and reported."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from ch11.report.findings import RunData
from tests.helpers import PROJECT_ROOT, program, run



@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_clipping_is_counted_per_epoch_and_the_update_is_unchanged(backend, tmp_path):
    out = run(program("clip_counts", backend, str(tmp_path)), PROJECT_ROOT, check=True)
    found = json.loads(out.stdout.strip().splitlines()[-1])
    assert found["unchanged"] == [True, True]   # counting leaves the update as it was (norm, value)
    assert found["never"] == [0.0, 0.0]        # a threshold no gradient reaches: clipping never acted
    assert found["always"] == [1.0, 1.0]       # a threshold every step exceeds: it acted in every step


def history(**columns) -> pd.DataFrame:
    return pd.DataFrame({"epoch": [1, 2, 3], "val_loss": [0.5, 0.4, 0.3], **columns})


def run_data(name: str, histories: dict) -> RunData:
    return RunData(name, list(histories), {s: {} for s in histories}, histories, {}, {}, epochs=3)


def test_the_clip_share_is_averaged_over_seeds_and_identity_ignores_the_extra_column():
    clipped = run_data("clip", {1: history(clip_share=[0.5, 0.25, 0.0]), 2: history(clip_share=[0.3, 0.15, 0.0]),
                                3: history(clip_share=[0.1, 0.0, 0.0])})
    base = run_data("base", {1: history(), 2: history(), 3: pd.DataFrame({"epoch": [1, 2, 3],
                                                                          "val_loss": [0.5, 0.4, 0.2]})})
    overall, first, last = clipped.clip_share()
    assert overall == pytest.approx((0.75 / 3 + 0.45 / 3 + 0.1 / 3) / 3)
    assert (first, last) == (pytest.approx(0.3), 0.0)
    assert base.clip_share() is None
    assert clipped.identical_seeds(base) == 2     # seeds 1-2 equal in the baseline's columns; seed 3 differs
    assert base.identical_seeds(clipped) == 0     # the other way round the clip column is missing


def test_the_report_says_how_often_clipping_acted_beside_the_effect():
    from ch11.report.findings import notes_for, percent

    acted = history(clip_share=[0.6, 0.3, 0.0]).assign(val_loss=[0.5, 0.45, 0.3])
    clipped = run_data("e06_clip_norm", {1: acted, 2: acted, 3: history(clip_share=[0.0, 0.0, 0.0])})
    base = run_data("baseline", {1: history(), 2: history(), 3: history()})
    assert notes_for(clipped, base) == [
        "identical to `baseline` in 1 of 3 seeds (the technique never acted there)",
        "clipping changed the gradient in 20 % of steps (epoch 1: 40 %, last epoch: 0 %; mean over seeds)"]
    assert percent(0.0002) == "0.02 %" and percent(0.996) == "99.6 %" and percent(1.0) == "100 %" and percent(0.0) == "0 %"
    assert not any("clipping" in note for note in notes_for(base, clipped))
