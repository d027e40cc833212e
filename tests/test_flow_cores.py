"""Cores follow the work, and the flow says the cost first: on a small real DVC project (shell commands
that write the CH11_WORKERS they got, recorded seed times in metrics/<dataset>/timing/), under Prefect's
test harness, the one changed run among unchanged ones gets every core, and the flow's cost line matches
the timing files."""
from __future__ import annotations

import json
import logging
import re

import pytest
import yaml

from tests.helpers import dvc, git

RUNS = {"a": [1000.0, 2000.0], "b": [1500.0, 2100.0], "c": [4000.0, 3200.0], "d": [900.0], "e": [2500.0, 2600.0]}
CORES = 6
DVC_YAML = """\
stages:
  train:
    foreach: ${runs}
    do:
      cmd: mkdir -p workers && printf %s "$CH11_WORKERS" > workers/${key}.txt
      params:
        - runs.${key}
      outs:
        - workers/${key}.txt
"""


@pytest.fixture
def project(tmp_path, env):
    """Five train@ stages recorded by `dvc repro`, their seed times committed."""
    root = tmp_path / "project"
    root.mkdir()
    git(root, "init", "-q")
    dvc(root, "init", "-q")
    (root / "dvc.yaml").write_text(DVC_YAML)
    (root / "params.yaml").write_text(yaml.safe_dump({"runs": {run: {"lr": 0.01} for run in RUNS}}))
    timing = root / "metrics" / "toy" / "timing"
    timing.mkdir(parents=True)
    for run, times in RUNS.items():
        (timing / f"{run}.json").write_text(json.dumps({str(i + 1): {"train_time_s": t} for i, t in enumerate(times)}))
    dvc(root, "repro", "-q")
    return root


@pytest.fixture
def flow(pipeline, monkeypatch):
    import flows.pipeline

    monkeypatch.setattr(flows.pipeline, "cpu_cores", lambda: CORES)   # the same on any host
    monkeypatch.setattr(flows.pipeline, "visible_gpus", lambda: [])
    return pipeline


def edit(root, *runs: str) -> None:
    params = yaml.safe_load((root / "params.yaml").read_text())
    for run in runs:
        params["runs"][run]["lr"] = 0.02
    (root / "params.yaml").write_text(yaml.safe_dump(params))


def test_one_changed_run_among_unchanged_ones_gets_every_core(project, flow):
    edit(project, "c")
    summary = flow(project_dir=str(project))
    assert summary["ran"] == ["train@c"] and len(summary["skipped"]) == len(RUNS) - 1, summary
    assert (project / "workers" / "c.txt").read_text() == str(CORES)
    edit(project, "a", "e")   # two at once share the cores
    summary = flow(project_dir=str(project))
    assert sorted(summary["ran"]) == ["train@a", "train@e"], summary
    assert [(project / "workers" / f"{run}.txt").read_text() for run in "ae"] == [str(CORES // 2)] * 2


def seconds(value: str, unit: str) -> float:
    return float(value) * (3600 if unit == "h" else 60)


def test_the_flow_first_says_what_the_planned_trainings_cost(project, flow, caplog):
    edit(project, "c")                       # to run
    (project / "workers" / "b.txt").unlink()  # in the DVC cache: checked out, not run
    with caplog.at_level(logging.INFO, logger="prefect.flow_runs"):
        summary = flow(project_dir=str(project))
    assert summary["ran"] == ["train@c"] and summary["restored"] == ["train@b"], summary
    lines = [record.getMessage() for record in caplog.records   # the flow's own, not Prefect's engine's
             if record.name == "prefect.flow_runs" and record.module != "flow_engine"]
    cost = next(i for i, line in enumerate(lines) if line.startswith("recorded cost"))
    assert cost <= 1, lines[:3]   # its first lines
    unit = r"([\d.]+) (h|min)"
    found = re.search(rf"(\d+) training\(s\), {unit} of training; to run {unit} \(~{unit} wall, (\d+) at once\), "
                      rf"unchanged {unit}, in the DVC cache {unit}", lines[cost])
    assert found, lines[cost]
    times = {path.stem: sum(seed["train_time_s"] for seed in json.loads(path.read_text()).values())
             for path in project.glob("metrics/*/timing/*.json")}
    expected = {"total": sum(times.values()), "run": times["c"], "wall": times["c"] / CORES,
                "unchanged": sum(times.values()) - times["c"] - times["b"], "cached": times["b"]}
    got = dict(zip(expected, (seconds(found.group(i), found.group(i + 1)) for i in (2, 4, 6, 9, 11))))
    assert int(found.group(1)) == len(RUNS) and int(found.group(8)) == CORES
    for key, value in expected.items():   # to the shown precision: 0.1 h, or 1 min below an hour
        assert abs(got[key] - value) <= (180 if value >= 3600 else 30), (key, got[key], value, lines[cost])
