"""End-to-end: the real `dvc repro` in a temporary copy of the project, on a small profile of real data.

One copy is reproduced once per module (download -> validate -> train -> evaluate -> aggregate -> report
for a few runs); the tests then ask the real `dvc status` what an edit would re-run, retrain from scratch
to check determinism, and kill a training mid-way to check it resumes.
"""
from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ch11.params import load as load_params
from ch11.sandbox import project_copy
from tests.fixtures import needs_fashion_mnist
from tests.helpers import child_env, digests, dvc, git, module, program, readme_override, run as run_child

pytestmark = [pytest.mark.slow, needs_fashion_mnist]
RUNS = ["baseline", "selu", "e04_elu", "e07_model_a", "e07_b_transfer"]
FASHION_TARGETS = ["aggregate@fashion_mnist", "report@fashion_mnist"]   # both read the evaluations


def changed_stages(root: Path) -> set[str]:
    return set(json.loads(dvc(root, "status", "--json", "--with-deps", *FASHION_TARGETS).stdout))


def edit_params(root: Path, edit) -> None:
    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text())
    edit(params)
    path.write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory) -> Path:
    root = project_copy(tmp_path_factory.mktemp("pipeline"), runs=RUNS)
    dvc(root, "repro", *FASHION_TARGETS)
    return root


def test_repro_produces_validated_data_metrics_and_report(reproduced):
    root = reproduced
    validation = json.loads((root / "metrics/validation/fashion_mnist.json").read_text())
    assert validation["success"] is True
    assert (root / "reports/validation/fashion_mnist/index.html").exists()
    copy = load_params(root / "params.yaml")
    for run in RUNS:   # every seed params.yaml gives the run, evaluated from its saved model
        metrics = json.loads((root / f"metrics/fashion_mnist/eval/{run}.json").read_text())
        assert set(metrics["per_seed"]) == {str(seed) for seed in copy.seeds_of(run)}, run
        assert all((root / f"models/{run}/seed-{seed}.keras").stat().st_size > 0 for seed in copy.seeds_of(run))
    # the baseline's accuracy, recounted from its saved model on the first max_eval_samples test images; one
    # image's margin for a near-tie that another batch size could tip (a wrong subset, labels or model: many)
    n = yaml.safe_load((root / "params.yaml").read_text())["limits"]["max_eval_samples"]
    correct = int(run_child(program("recount_accuracy", "models/baseline/seed-1.keras", str(n)), root,
                            check=True).stdout.split()[-1])
    accuracy = json.loads((root / "metrics/fashion_mnist/eval/baseline.json").read_text())["per_seed"]["1"]
    assert abs(accuracy["test_accuracy"] * n - correct) <= 1, (accuracy["test_accuracy"], correct, n)
    assert correct / n > 0.5   # a real model beats chance even after one short epoch
    summary = json.loads((root / "metrics/fashion_mnist/summary.json").read_text())
    assert set(summary) == set(RUNS)
    assert (root / "reports/fashion_mnist/results.md").exists()


def test_second_repro_reruns_nothing(reproduced):
    start = time.perf_counter()
    out = dvc(reproduced, "repro", *FASHION_TARGETS).stdout
    assert "Running stage" not in out, out
    assert changed_stages(reproduced) == set()
    print(f"no-op dvc repro: {time.perf_counter() - start:.1f} s")


def test_editing_one_run_marks_only_that_run(reproduced):
    root = reproduced
    original = (root / "params.yaml").read_text()
    try:
        edit_params(root, lambda p: p["runs"]["selu"].update(dropout=0.1))
        assert changed_stages(root) == {"train@selu", "evaluate@selu", "aggregate@fashion_mnist",
                                        "report@fashion_mnist"}
        edit_params(root, lambda p: p["defaults"].update(batch_size=64))
        changed = changed_stages(root)
        assert {f"train@{r}" for r in ["baseline", "selu", "e07_model_a"]} <= changed
        assert "train_transfer@e07_b_transfer" in changed
    finally:
        (root / "params.yaml").write_text(original)
    assert changed_stages(root) == set()


def test_a_hidden_hyperparameter_is_tracked_and_a_label_is_presentation_only(reproduced):
    root = reproduced
    original_params, claims = (root / "params.yaml").read_text(), root / "ch11/report/claims.yaml"
    original_claims = claims.read_text()
    try:
        edit_params(root, lambda p: p["optimizers"]["sgd"].update(momentum=0.5))  # a table the run inherits
        assert "train@baseline" in changed_stages(root)
        (root / "params.yaml").write_text(original_params)
        claims.write_text(original_claims.replace('selu: "LeCun + SELU"', 'selu: "LeCun init + SELU"'))
        assert changed_stages(root) == {"report@fashion_mnist"}
    finally:
        (root / "params.yaml").write_text(original_params)
        claims.write_text(original_claims)
    assert changed_stages(root) == set()


def test_a_run_can_have_its_own_seeds(reproduced):
    root = reproduced
    original = (root / "params.yaml").read_text()
    try:
        edit_params(root, lambda p: p["runs"]["selu"].update(seeds=[1, 2]))
        assert changed_stages(root) == {"train@selu", "evaluate@selu", "aggregate@fashion_mnist",
                                        "report@fashion_mnist"}
        edit_params(root, lambda p: p["defaults"].update(seeds=[1, 2]))  # the default list: every run
        assert {"train@baseline", "train@e07_model_a", "train_transfer@e07_b_transfer"} <= changed_stages(root)
    finally:
        (root / "params.yaml").write_text(original)


def test_metrics_and_plots_diff_between_branches(reproduced, tmp_path):
    """A branch with one run's hyperparameter changed: only that run's metrics differ."""
    root = reproduced
    git(root, "add", "-A")
    git(root, "commit", "-qm", "results")
    git(root, "checkout", "-qb", "selu-dropout")
    try:
        edit_params(root, lambda p: p["runs"]["selu"].update(dropout=0.2))
        out = dvc(root, "repro", *FASHION_TARGETS).stdout
        assert "Running stage 'train@selu'" in out and "Running stage 'train@baseline'" not in out
        git(root, "commit", "-qam", "SELU with dropout")
        diff = json.loads(dvc(root, "metrics", "diff", "main", "selu-dropout", "--json").stdout)
        changed_runs = {path for path, values in diff.items() if values and "/runs/" in path}
        assert changed_runs == {"metrics/fashion_mnist/runs/selu.json"}  # the run's headline, no other run's
        assert not {path for path in diff if "/eval/" in path or path.endswith("summary.json")}  # not metrics
        plots = dvc(root, "plots", "diff", "main", "selu-dropout", "-o", str(tmp_path / "plots"))
        page = tmp_path / "plots/index.html"
        assert page.exists(), plots.stdout
        assert page.stat().st_size < 10_000_000  # the default plot set stays small (no per-stage plots)
        shown = json.loads(dvc(root, "plots", "diff", "main", "selu-dropout", "--json").stdout)["data"]
        curves = root / "reports" / "fashion_mnist" / "curves"
        assert {k for k in shown if "/curves/" in k} == {f"{curves.relative_to(root)}/{p.name}"
                                                         for p in curves.glob("exp*.csv")}  # one per experiment
        exp04 = shown["reports/fashion_mnist/curves/exp04.csv"][0]["content"]["data"]["values"]
        assert {(row["run"], row["rev"]) for row in exp04} == {
            (run, rev) for run in ("ReLU", "SELU", "ELU") for rev in ("main", "selu-dropout")}
    finally:
        git(root, "checkout", "-q", "main")
        dvc(root, "checkout", "--force", "--with-deps", *FASHION_TARGETS)
    assert changed_stages(root) == set()


def test_the_readmes_exp_run_trains_only_the_changed_run_and_is_kept_with_templates_intact(reproduced):
    root = reproduced
    override = readme_override()
    path, value = override.removeprefix("++").split("=")
    group, run, *keys = path.split(".")
    value = yaml.safe_load(value)

    def parent(entry: dict) -> dict:   # the mapping holding the overridden key
        return functools.reduce(lambda d, k: d.setdefault(k, {}), keys[:-1], entry)

    out = dvc(root, "exp", "run", "--allow-missing", "-n", "readme", "-S", override, *FASHION_TARGETS).stdout
    assert f"Running stage 'train@{run}'" in out and "Running stage 'train@selu'" not in out
    assert "readme" in json.dumps(json.loads(dvc(root, "exp", "show", "--json").stdout))
    dvc(root, "exp", "branch", "readme", "readme-branch")
    assert parent(yaml.safe_load(git(root, "show", "readme-branch:params.yaml"))[group][run])[keys[-1]] == value
    assert f"eval/{run}.json" in git(root, "show", "--stat", "readme-branch")
    git(root, "checkout", "-q", "HEAD", "--", ".")   # the workspace held the experiment
    git(root, "checkout", "-q", "readme-branch")
    try:   # kept with templates intact: main's params.yaml with the same edit by hand re-runs nothing
        (root / "params.yaml").write_text(git(root, "show", "main:params.yaml"))
        edit_params(root, lambda params: parent(params[group][run]).update({keys[-1]: value}))
        dvc(root, "checkout", "--force", "--with-deps", *FASHION_TARGETS)
        assert changed_stages(root) == set()
    finally:
        git(root, "checkout", "-q", "HEAD", "--", ".")
        git(root, "checkout", "-q", "main")
        dvc(root, "checkout", "--force", "--with-deps", *FASHION_TARGETS)
    assert changed_stages(root) == set()


def test_two_repros_at_once_never_corrupt_the_lock(reproduced):
    """Two `dvc repro` at once: each succeeds or fails with DVC's clear lock message; dvc.lock stays valid."""
    root = reproduced
    procs = [subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--force", "-s", stage], cwd=root,
                              env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for stage in ("train@baseline", "train@selu")]
    outputs = [(p.wait(timeout=600), p.stdout.read()) for p in procs]
    for code, out in outputs:
        assert code == 0 or "Unable to acquire lock" in out, out
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert {"train@baseline", "train@selu"} <= set(lock["stages"])
    dvc(root, "repro", *FASHION_TARGETS)
    assert changed_stages(root) == set()


def test_training_is_deterministic(reproduced):
    """The same run trained twice from scratch gives identical metrics, histories and model bytes."""
    root = reproduced
    results = []
    for _ in range(2):
        for stage in ("train", "evaluate"):
            module(root, f"stages.{stage}", "baseline", check=True)
        results.append(digests([root / rel for rel in (
            "models/baseline/seed-1.keras", "models/baseline/seed-1.npz", "metrics/fashion_mnist/eval/baseline.json",
            "metrics/fashion_mnist/train/baseline/history-1.csv", "metrics/fashion_mnist/train/baseline/info-1.json")],
            root))
    assert results[0] == results[1]
    assert changed_stages(root) == set()  # the timing file is not a dependency of anything hashed


def test_killed_training_resumes_and_records_nothing_partial(reproduced):
    root = reproduced
    edit_params(root, lambda p: p["runs"]["baseline"].update(epochs=30))
    edit_params(root, lambda p: p["limits"].update(max_epochs=30, max_train_samples=4000))
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-s", "train@baseline"], cwd=root,
                            env=child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)

    def epochs_done() -> int:
        states = list(root.glob(".checkpoints/baseline-1-*/state/state.json"))
        try:
            return json.loads(states[0].read_text())["epochs_done"] if states else 0
        except ValueError:
            return 0

    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and epochs_done() < 3:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert 3 <= epochs_done() < 30, "the kill must land mid-training"
    assert "train@baseline" in changed_stages(root)

    rerun = dvc(root, "repro", "-s", "train@baseline")
    assert "train baseline seed 1: resuming from its last finished epoch" in rerun.stdout + rerun.stderr
    assert len((root / "metrics/fashion_mnist/train/baseline/history-1.csv").read_text().splitlines()) == 31
    assert (root / "models/baseline/seed-1.keras").exists()
    assert not list(root.glob(".checkpoints/baseline-*"))
    assert "train@baseline" not in changed_stages(root)
