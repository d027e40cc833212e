"""End-to-end: the real `dvc repro` in a temporary copy of the project, on a small profile of real data.

One copy is reproduced once per module (download -> validate -> train -> evaluate -> aggregate -> report
for a few runs); the tests then ask the real `dvc status` what an edit would re-run, retrain from scratch
to check determinism, and kill a training mid-way to check it resumes.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.fixtures import FASHION_MNIST_DIR, project_copy

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not FASHION_MNIST_DIR.exists(), reason="apt-get install dataset-fashion-mnist")]
RUNS = ["e04_relu", "e04_selu", "e07_model_a", "e07_b_transfer"]
FASHION_TARGETS = ["report@fashion_mnist"]


def env() -> dict:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ["PATH"], "GX_ANALYTICS_ENABLED": "False",
            "TF_CPP_MIN_LOG_LEVEL": "2"}


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=root, env=env(), capture_output=True,
                          text=True)
    if check and done.returncode:
        raise AssertionError(f"dvc {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


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
    for run in RUNS:
        metrics = json.loads((root / f"metrics/fashion_mnist/eval/{run}-1.json").read_text())
        assert 0.0 <= metrics["test_accuracy"] <= 1.0
        assert (root / f"models/{run}-1/model.keras").stat().st_size > 0
    # a real model beats chance even after one short epoch
    assert json.loads((root / "metrics/fashion_mnist/eval/e04_relu-1.json").read_text())["test_accuracy"] > 0.5
    summary = json.loads((root / "metrics/fashion_mnist/summary.json").read_text())
    assert set(summary) == set(RUNS)
    assert (root / "reports/fashion_mnist/results.md").exists()


def test_second_repro_reruns_nothing(reproduced):
    start = time.perf_counter()
    out = dvc(reproduced, "repro", *FASHION_TARGETS).stdout
    assert "Running stage" not in out, out
    assert changed_stages(reproduced) == set()
    print(f"no-op dvc repro: {time.perf_counter() - start:.1f} s")


def test_editing_one_run_marks_only_that_run(reproduced, tmp_path):
    root = reproduced
    original = (root / "params.yaml").read_text()
    try:
        edit_params(root, lambda p: p["runs"]["e04_selu"].update(dropout=0.1))
        assert changed_stages(root) == {"train@e04_selu-1", "evaluate@e04_selu-1",
                                        "aggregate@fashion_mnist", "report@fashion_mnist"}
        edit_params(root, lambda p: p["defaults"].update(batch_size=64))
        changed = changed_stages(root)
        assert {f"train@{r}-1" for r in ["e04_relu", "e04_selu", "e07_model_a"]} <= changed
        assert "train_transfer@e07_b_transfer-1" in changed
    finally:
        (root / "params.yaml").write_text(original)
    assert changed_stages(root) == set()


def test_adding_a_seed_marks_only_the_new_pairs(reproduced):
    root = reproduced
    original = (root / "params.yaml").read_text()
    try:
        edit_params(root, lambda p: p.update(seeds=[1, 2]))
        changed = changed_stages(root)
        new_pairs = {s for s in changed if s.endswith("-2")}
        assert new_pairs == {"train@e04_relu-2", "train@e04_selu-2", "train@e07_model_a-2",
                             "train_transfer@e07_b_transfer-2", "evaluate@e04_relu-2", "evaluate@e04_selu-2",
                             "evaluate@e07_model_a-2", "evaluate_transfer@e07_b_transfer-2"}
        assert changed - new_pairs == {"aggregate@fashion_mnist", "report@fashion_mnist"}
    finally:
        (root / "params.yaml").write_text(original)


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], cwd=root,
                          check=True, capture_output=True, text=True).stdout


def test_metrics_and_plots_diff_between_branches(reproduced, tmp_path):
    """A branch with one run's hyperparameter changed: only that run's metrics differ."""
    root = reproduced
    git(root, "add", "-A")
    git(root, "commit", "-qm", "results")
    git(root, "checkout", "-qb", "selu-dropout")
    try:
        edit_params(root, lambda p: p["runs"]["e04_selu"].update(dropout=0.2))
        out = dvc(root, "repro", *FASHION_TARGETS).stdout
        assert "Running stage 'train@e04_selu-1'" in out and "Running stage 'train@e04_relu-1'" not in out
        git(root, "commit", "-qam", "SELU with dropout")
        diff = json.loads(dvc(root, "metrics", "diff", "main", "selu-dropout", "--json").stdout)
        changed_files = {path for path, values in diff.items() if values}
        assert changed_files <= {"metrics/fashion_mnist/eval/e04_selu-1.json", "metrics/fashion_mnist/summary.json"}
        assert "metrics/fashion_mnist/eval/e04_selu-1.json" in changed_files
        summary_keys = {key.split(".")[0] for key in diff.get("metrics/fashion_mnist/summary.json", {})}
        assert summary_keys == {"e04_selu"}
        plots = dvc(root, "plots", "diff", "main", "selu-dropout", "-o", str(tmp_path / "plots"))
        assert (tmp_path / "plots/index.html").exists(), plots.stdout
    finally:
        git(root, "checkout", "-q", "main")
        dvc(root, "checkout", "--force", "--with-deps", *FASHION_TARGETS)
    assert changed_stages(root) == set()


def test_exp_run_trains_only_the_changed_run(reproduced):
    root = reproduced
    # `++` adds the key to the run's entry or overrides it (Hydra syntax; plain `-S` needs an existing key)
    out = dvc(root, "exp", "run", "-n", "relu-lr", "-S", "++runs.e04_relu.optimizer.learning_rate=0.02",
              *FASHION_TARGETS).stdout
    assert "Running stage 'train@e04_relu-1'" in out and "Running stage 'train@e04_selu-1'" not in out
    shown = json.loads(dvc(root, "exp", "show", "--json").stdout)
    assert "relu-lr" in json.dumps(shown)
    dvc(root, "exp", "branch", "relu-lr", "relu-lr-branch")
    branch_params = yaml.safe_load(git(root, "show", "relu-lr-branch:params.yaml"))
    assert branch_params["runs"]["e04_relu"]["optimizer"]["learning_rate"] == 0.02
    assert "e04_relu-1" in git(root, "show", "--stat", "relu-lr-branch")
    assert changed_stages(root) == set()


def test_push_then_pull_in_a_fresh_clone_restores_everything(reproduced, tmp_path):
    root = reproduced
    remote = tmp_path / "remote"
    dvc(root, "remote", "add", "-f", "-d", "local", str(remote))
    git(root, "commit", "-qam", "remote for the test")
    dvc(root, "push", "--with-deps", *FASHION_TARGETS)
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True)
    dvc(clone, "pull", "--with-deps", *FASHION_TARGETS)
    assert (clone / "models/e04_relu-1/model.keras").read_bytes() == \
        (root / "models/e04_relu-1/model.keras").read_bytes()
    assert (clone / "metrics/fashion_mnist/summary.json").exists()
    assert changed_stages(clone) == set()
    assert "Running stage" not in dvc(clone, "repro", *FASHION_TARGETS).stdout


def test_two_repros_at_once_never_corrupt_the_lock(reproduced):
    """Two `dvc repro` at once: each succeeds or fails with DVC's clear lock message; dvc.lock stays valid."""
    root = reproduced
    procs = [subprocess.Popen([sys.executable, "-m", "dvc", "repro", "--force", "-s", stage], cwd=root, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for stage in ("train@e04_relu-1", "train@e04_selu-1")]
    outputs = [(p.wait(timeout=600), p.stdout.read()) for p in procs]
    for code, out in outputs:
        assert code == 0 or "Unable to acquire lock" in out, out
    lock = yaml.safe_load((root / "dvc.lock").read_text())
    assert {"train@e04_relu-1", "train@e04_selu-1"} <= set(lock["stages"])
    dvc(root, "repro", *FASHION_TARGETS)
    assert changed_stages(root) == set()


def metrics_without_time(root: Path, job: str) -> dict:
    metrics = json.loads((root / f"metrics/fashion_mnist/eval/{job}.json").read_text())
    metrics.pop("train_time_s")
    return metrics


@pytest.mark.parametrize("seed", [1, 2])
def test_training_is_deterministic(reproduced, seed):
    """The same (run, seed) trained twice from scratch gives identical metrics and model bytes."""
    root = reproduced
    results = []
    for _ in range(2):
        for stage in ("train", "evaluate"):
            subprocess.run([sys.executable, "-m", f"stages.{stage}", "e04_relu", str(seed)], cwd=root, env=env(),
                           check=True, capture_output=True)
        model = (root / f"models/e04_relu-{seed}/model.keras").read_bytes()
        results.append((metrics_without_time(root, f"e04_relu-{seed}"), model))
    assert results[0] == results[1]


def test_killed_training_resumes_and_records_nothing_partial(reproduced):
    root = reproduced
    edit_params(root, lambda p: p["runs"]["e04_relu"].update(epochs=30))
    edit_params(root, lambda p: p["limits"].update(max_epochs=30, max_train_samples=4000))
    history = root / ".checkpoints/e04_relu-1/history.csv"
    proc = subprocess.Popen([sys.executable, "-m", "dvc", "repro", "-s", "train@e04_relu-1"], cwd=root, env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not history.exists() or len(history.read_text().splitlines()) < 4):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    epochs_before_kill = len(history.read_text().splitlines()) - 1
    assert 3 <= epochs_before_kill < 30, "the kill must land mid-training"
    assert not (root / "models/e04_relu-1").exists(), "no partial model may be left as an output"
    assert "train@e04_relu-1" in changed_stages(root)

    rerun = dvc(root, "repro", "-s", "train@e04_relu-1")
    assert "resuming e04_relu-1" in rerun.stdout + rerun.stderr
    assert "Epoch 1/30" not in rerun.stdout, "training continues from its last finished epoch, not from scratch"
    assert len((root / "metrics/fashion_mnist/history/e04_relu-1.csv").read_text().splitlines()) == 31
    assert (root / "models/e04_relu-1/model.keras").exists()
    assert not (root / ".checkpoints/e04_relu-1").exists()
    assert "train@e04_relu-1" not in changed_stages(root)
