"""The flow's ETA: each stage's expected time (recorded seed times, else what the flow has seen), less
what a running stage has taken, over the commands that run at once."""
from __future__ import annotations

import json
import time

from flows.estimates import STARTUP_S, recorded_seconds
from flows.scheduler import Scheduler

ORDER = ["validate@d", "train@a", "train@b", "evaluate@a", "evaluate@b"]


def scheduler(estimate) -> Scheduler:
    upstream = {"validate@d": [], "train@a": ["validate@d"], "train@b": ["validate@d"],
                "evaluate@a": ["train@a"], "evaluate@b": ["train@b"]}
    return Scheduler(None, ORDER, upstream, None, 2, 1, [], False, None, estimate=estimate)


def test_eta_adds_expected_times_over_the_commands_at_once():
    found = scheduler({"train@a": 600.0, "train@b": 1200.0}.get)
    found.state["validate@d"], found.took["validate@d"], found.done = "ran", 60.0, 1
    # pending: 600 + 1200 for the trainings, 60 s (the mean seen, no estimate) per evaluation; 2 at once
    assert found.progress().endswith("ETA ~16 min")          # (600 + 1200 + 60 + 60) / 2 = 960 s
    found.state["train@b"], found.began["train@b"] = "running", time.monotonic() - 600
    assert found.progress().endswith("ETA ~11 min")          # train@b has 600 s left: (600+600+120)/2
    assert found.progress().startswith("1 of 5 run")
    found.workers["train@b"] = 2                              # its seeds 2 at a time: 600 s did all 1200
    assert found.progress().endswith("ETA ~6.0 min")          # (600 + 0 + 120) / 2
    for name in ("train@a", "train@b"):
        found.state[name], found.took[name] = "ran", 900.0
    assert found.progress().endswith("ETA ~1.0 min")           # two evaluations at 60 s each, 2 at once


def test_recorded_seed_times_make_a_training_estimate(tmp_path):
    timing = tmp_path / "metrics" / "fashion_mnist" / "timing"
    timing.mkdir(parents=True)
    (timing / "e04_elu.json").write_text(json.dumps({str(s): {"train_time_s": 60.0} for s in range(1, 11)}))
    (timing / "broken.json").write_text("{not json")
    estimate = recorded_seconds(tmp_path)   # seeds one after another: the work, whatever the workers
    assert estimate("train@e04_elu") == STARTUP_S + 600
    assert estimate("evaluate@e04_elu") is None and estimate("train@broken") is None
