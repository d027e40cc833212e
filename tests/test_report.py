"""The report stage end to end on a hand-made metrics tree: aggregate, then report, as subprocesses."""
from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ch11.sandbox import with_seeds

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEEDS = [1, 2, 3, 4, 5]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASE = [0.870, 0.872, 0.868, 0.871, 0.869]

# Per run: test accuracy per seed (None: diverged), validation accuracy after epoch 1 per seed. Chosen so
# that each verdict appears: BN beats no BN after epoch 1 by ~1.9 (the write-up: 3.2; size differs), SELU
# equals the baseline (equivalent), best practices +2.45 over the early-stopped baseline (confirmed), the production model far below
# 90.22 % (contradicted), ReduceLROnPlateau never changes the LR (not tested), poor init 0/0/33-like
# (inconclusive: 2 diverged, one seed learned to 33 %).
SPECS = {
    "baseline": {"acc": BASE, "epoch1": [0.80, 0.81, 0.80, 0.79, 0.80]},
    "selu": {"acc": BASE, "epoch1": [0.80, 0.81, 0.80, 0.79, 0.80]},
    "e01_poor_init": {"acc": [None, None, 0.334, 0.10, 0.10], "epoch1": [None, None, 0.10, 0.10, 0.10],
                      "init": "poor_normal"},
    "e05_bn_after": {"acc": BASE, "epoch1": [0.819, 0.829, 0.818, 0.809, 0.820]},
    "e09_plateau": {"acc": [0.871, 0.873, 0.869, 0.872, 0.870], "epoch1": [0.80] * 5},
    "baseline_es": {"acc": [a - 0.01 for a in BASE], "epoch1": [0.80] * 5, "epochs": 4},
    "e13_production_common": {"acc": [a + 0.0145 for a in BASE], "epoch1": [0.80] * 5, "epochs": 4},
    "e13_production": {"acc": [0.700, 0.702, 0.701, 0.699, 0.700], "epoch1": [0.60] * 5, "epochs": 4},
}


def layer_rows(init: str, trained: bool, rng: np.random.Generator) -> list[dict]:
    sizes = [784, 300, 200, 100, 10]
    rows = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        output = i == len(sizes) - 1
        var = 2.0 / (fan_in + fan_out) if output else (1.0 if init == "poor_normal" else 2.0 / fan_in)
        rows.append({"layer": i, "fan_in": fan_in, "fan_out": fan_out,
                     "initializer": "GlorotUniform" if output else "HeNormal",
                     "grad_norm": float((1e3 if init == "poor_normal" else 0.5) * (i if trained else 1)),
                     "activation_std": float((30.0 * i if init == "poor_normal" else 0.8) * rng.uniform(0.9, 1.1)),
                     "weight_var": float(var * rng.uniform(0.97, 1.03) * (1.3 if trained else 1.0)),
                     "theory_var": var})
    return rows


def write_run(root: Path, run: str, spec: dict, index: int) -> None:
    """The files the train and evaluate stages write for one run, all seeds."""
    ds = root / "metrics" / "fashion_mnist"
    train_dir = ds / "train" / run
    train_dir.mkdir(parents=True, exist_ok=True)
    per_seed, timing = {}, {}
    for seed in SEEDS:
        rng = np.random.default_rng(100 * index + seed)
        acc, first = spec["acc"][seed - 1], spec["epoch1"][seed - 1]
        diverged = acc is None
        epochs = 2 if diverged else spec.get("epochs", 5)
        val = np.full(epochs, np.nan) if diverged else np.linspace(first, acc + 0.002, epochs)
        lr = np.full(epochs, 0.01)
        rows = ["epoch,loss,accuracy,val_loss,val_accuracy,train_eval_accuracy,learning_rate"]
        rows += [f"{e + 1},{1 - val[e]:.4f},{val[e]:.4f},{1 - val[e]:.4f},{val[e]:.4f},{val[e] + 0.03:.4f},{lr[e]}"
                 for e in range(epochs)]
        (train_dir / f"history-{seed}.csv").write_text("\n".join(rows) + "\n")
        init = spec.get("init", "he_normal")
        info = {"run": run, "seed": seed, "diverged": diverged, "backend": "tensorflow",
                "layers_at_init": layer_rows(init, False, rng), "layers_after_training": layer_rows(init, True, rng)}
        (train_dir / f"info-{seed}.json").write_text(json.dumps(info))
        timing[str(seed)] = {"train_time_s": 60.0 + seed, "resumed": False}
        if diverged:
            per_seed[str(seed)] = {"diverged": True, "epochs": epochs}
            continue
        best = int(np.argmax(val))
        per_seed[str(seed)] = {"diverged": False, "test_accuracy": acc, "test_loss": 1 - acc,
                               "best_val_accuracy": float(val[best]), "best_epoch": best + 1, "epochs": epochs,
                               "overfit_gap": 0.03, "epoch1_val_accuracy": first,
                               "per_class_accuracy": {str(c): acc for c in range(10)}}
    for sub, name, text in (("eval", f"{run}.json", json.dumps({"per_seed": per_seed})),
                            ("timing", f"{run}.json", json.dumps(timing)),
                            ("confusion", f"{run}.csv", "actual,predicted\n" + "".join(
                                f"{a},{a if a % 3 else (a + 1) % 10}\n" for a in np.repeat(np.arange(10), 20)))):
        (ds / sub).mkdir(parents=True, exist_ok=True)
        (ds / sub / name).write_text(text)


def make_project(root: Path, specs: dict = SPECS) -> Path:
    params = with_seeds(yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text()), SEEDS)
    params["limits"]["max_epochs"] = 5  # the constructed histories' budget (4 epochs: early-stopped runs)
    params["runs"] = {k: v for k, v in params["runs"].items() if k in specs}
    params["transfer_runs"], params["cifar_runs"] = {}, {}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for index, (run, spec) in enumerate(specs.items()):
        write_run(root, run, spec, index)
    return root


def run_stage(root: Path, *args: str, max_file_bytes: int | None = None) -> subprocess.CompletedProcess:
    """A stage as a subprocess; ``max_file_bytes``: writes beyond that size fail, as on a full disk."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "MPLBACKEND": "Agg"}
    limit = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
             ) if max_file_bytes else None
    return subprocess.run([sys.executable, "-m", *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120, preexec_fn=limit)


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Path:
    root = make_project(tmp_path_factory.mktemp("project"))
    for stage in ("stages.aggregate", "stages.report"):
        done = run_stage(root, stage, "fashion_mnist")
        assert done.returncode == 0, done.stderr
    return root / "reports" / "fashion_mnist"


def section(text: str, number: int) -> str:
    start = text.index(f"## Experiment {number} —")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def table_row(text: str, startswith: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| {startswith}")]
    assert len(rows) == 1, (startswith, rows)
    return rows[0]


def test_header_names_seeds_backend_and_how_to_read(report):
    text = (report / "results.md").read_text()
    assert "**Seeds:** 1–5 for every run. **Backend:** tensorflow." in text
    assert "## How to read the verdicts" in text and "Holm-adjusted over every claimed difference" in text
    assert "**CIFAR-10**" not in text  # make_project has no CIFAR-10 runs


def test_header_points_to_the_cifar10_report(tmp_path):
    root = make_project(tmp_path, {"baseline": SPECS["baseline"]})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["cifar_runs"] = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())["cifar_runs"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("stages.aggregate", "stages.report"):
        done = run_stage(root, stage, "fashion_mnist")
        assert done.returncode == 0, done.stderr
    text = (root / "reports" / "fashion_mnist" / "results.md").read_text()
    assert f"**CIFAR-10** (experiment 14 and exercise 8: {len(params['cifar_runs'])} runs)" in text


def test_a_smaller_effect_than_claimed_is_direction_confirmed_size_differs(report):
    row = table_row(section((report / "results.md").read_text(), 5), "BN after activation − no BN")
    assert "**direction confirmed, size differs**" in row and "+1.90 pts (paired, n=5)" in row


def test_identical_configurations_are_equivalent_not_within_noise(report):
    row = table_row(section((report / "results.md").read_text(), 4), "SELU − ReLU")
    assert "**equivalent**" in row and "+0.00 pts" in row


def test_clear_disagreement_is_contradicted_and_time_is_not_tested(report):
    exp13 = section((report / "results.md").read_text(), 13)
    row = table_row(exp13, "production (ours) — test accuracy")
    assert "| 90.22 % |" in row and "70.04 ± 0.11 % (n=5)" in row and "**contradicted**" in row
    assert "**not tested**" in table_row(exp13, "production (ours) — training time")


def test_clear_agreement_is_confirmed_after_holm(report):
    row = table_row(section((report / "results.md").read_text(), 12), "best practices (Dense, BN, ReLU, Dropout) −")
    assert "**confirmed**" in row and "+2.45 pts" in row


def test_a_run_still_improving_at_the_end_of_its_budget_is_flagged(report):
    text = (report / "results.md").read_text()  # constructed curves rise to the last epoch
    exp5 = section(text, 5)
    assert "**Not converged within the budget**" in exp5 and "`e05_bn_after` (best epoch 5.0 of 5)" in exp5
    assert "not converged in its budget" in table_row(exp5, "BN after activation − no BN")
    assert "Not converged" not in section(text, 12)  # early stopping ended those runs before the budget


def test_early_stopping_that_never_fired_is_flagged_like_a_fixed_budget():
    from ch11.evidence import RunData

    def run(epochs: list[int], best: list[int]) -> RunData:
        evals = {s: {"epochs": e, "best_epoch": b} for s, (e, b) in enumerate(zip(epochs, best), start=1)}
        return RunData("r", list(evals), evals, {}, {}, {}, "≤ 100 epochs, early stopping (patience 15)", 100)

    assert run([100, 100, 100], [97, 99, 95]).still_improving() == "`r` (best epoch 97.0 of 100)"
    assert run([100, 60, 100], [97, 45, 95]).still_improving() == \
        "`r` (best epoch 96.0 of 100, 2 of 3 seeds used the whole budget)"
    assert run([60, 70, 55], [45, 55, 40]).still_improving() == ""  # early stopping ended every seed
    assert run([100, 100, 100], [50, 60, 70]).still_improving() == ""  # converged well inside the budget


def test_a_schedule_that_never_changed_the_lr_is_not_tested(report):
    exp9 = section((report / "results.md").read_text(), 9)
    row = table_row(exp9, "ReduceLROnPlateau − constant")
    assert "**not tested**" in row and "never changed the learning rate" in row
    assert "**not tested**" in table_row(exp9, "ReduceLROnPlateau — test accuracy")


def test_diverged_seeds_are_counted_beside_not_averaged_into_accuracy(report):
    exp1 = section((report / "results.md").read_text(), 1)
    assert "poor init N(0,1) (`e01_poor_init`, 5 seeds, 2 diverged)" in exp1
    row = table_row(exp1, "poor init learns nothing")
    assert "2 of 5 diverged; best validation accuracy of the others: 33.6 %, 10.2 %, 10.2 %" in row
    assert "holds in 4 of 5 seeds" in row and "**inconclusive**" in row
    assert "**confirmed**" in table_row(exp1, "He init — test accuracy")


def test_the_write_ups_disagreeing_baselines_are_named(report):
    text = (report / "results.md").read_text()
    part = text[text.index("## One baseline, several reported numbers"):]
    assert "compare against `baseline` (He init" in part and "85.00 % (exp. 1)" in part
    assert "compare against `baseline_es` (the same network" in part and "87.60 % (exp. 12)" in part
    assert "span 2.60 pts (85.00–87.60 %)" in part


def test_each_experiment_writes_the_data_of_its_grouped_dvc_plot(report):
    bn = pd.read_csv(report / "curves" / "exp05.csv")
    assert list(bn.columns) == ["epoch", "run", "val_accuracy", "seeds"]
    assert set(bn["run"]) == {"no BN", "BN after activation"}  # the experiment's runs present, by label
    first = bn[(bn["run"] == "no BN") & (bn["epoch"] == 1)]
    assert first["val_accuracy"].item() == pytest.approx(80.0) and first["seeds"].item() == 5
    poor = pd.read_csv(report / "curves" / "exp01.csv")
    assert poor[poor["run"] == "poor init N(0,1)"]["seeds"].max() == 3  # diverged seeds are not averaged in


def test_verdicts_another_host_may_change_say_so(tmp_path):
    root = make_project(tmp_path, {"baseline": SPECS["baseline"], "e05_bn_after": SPECS["e05_bn_after"],
                                   "e09_plateau": SPECS["e09_plateau"]})
    assert run_stage(root, "stages.aggregate", "fashion_mnist").returncode == 0
    assert run_stage(root, "stages.report", "fashion_mnist").returncode == 0
    text = (root / "reports" / "fashion_mnist" / "results.md").read_text()
    assert "## Robustness" not in text and "another host" not in text    # no check recorded: nothing claimed
    claim = table_row(section(text, 5), "BN after activation − no BN").split(" | ")[0].lstrip("| ")
    committed = dict(zip(map(str, SEEDS[:3]), BASE))   # seeds 4-5 added since the check: not a change
    check = {"env": ["ONEDNN_MAX_CPU_ISA=AVX2"], "date": "2026-11-26", "cpu": "test CPU (avx2)", "verdicts": 3,
             "runs": {"baseline": {"committed": committed,
                                   "rerun": {**committed, "1": BASE[0] + 0.0025, "2": BASE[1] - 0.001}}},
             "changed": {f"Experiment 5: {claim}": ["direction confirmed, size differs", "inconclusive", True]}}
    (root / "metrics" / "host_checks.json").write_text(json.dumps({"fashion_mnist": check}))
    assert run_stage(root, "stages.report", "fashion_mnist").returncode == 0
    text = (root / "reports" / "fashion_mnist" / "results.md").read_text()
    part = text[text.index("## Robustness"):text.index("## Experiment 1")]
    assert "re-trained 1 runs (`baseline`) with `ONEDNN_MAX_CPU_ISA=AVX2`" in part
    assert "1 of 3 seeds' test accuracies came out bit-identical; the others moved by up to 0.25 pts" in part
    assert ("1 of 3 verdicts changed:" in part and "**direction confirmed, size differs** → **inconclusive** "
            "(the report had stated it as possible)" in part)
    unsettled = [line for line in text.splitlines() if line.startswith("| ") and "(another host: *" in line]
    firm = re.search(r"\*\*(\d+) of (\d+) never changed in 1 % or more of them\*\*", part)
    assert firm and unsettled and int(firm.group(2)) - int(firm.group(1)) == len(unsettled)
    assert "Runs changed since the check" not in part
    plateau = table_row(section(text, 9), "ReduceLROnPlateau − constant")       # +0.2 pts, se 0.02: firm
    assert "**" in plateau and "another host" not in plateau
    check["runs"]["baseline"]["committed"]["1"] = 0.5                      # the run changed since the check
    (root / "metrics" / "host_checks.json").write_text(json.dumps({"fashion_mnist": check}))
    assert run_stage(root, "stages.report", "fashion_mnist").returncode == 0
    text = (root / "reports" / "fashion_mnist" / "results.md").read_text()
    assert "Runs changed since the check (seeds it recorded now have other test accuracies): `baseline`" in text


def test_the_verdict_cell_reads_back():
    from ch11 import evidence as ev
    from ch11.report_text import read_verdict_cell, verdict_cell

    row = ev.Row("comparison", "a − b", "+1", "+0.9", verdict="confirmed",
                 alternatives={"inconclusive": 0.31, "direction confirmed, size differs": 0.02})
    assert read_verdict_cell(verdict_cell(row)) == ("confirmed", {"inconclusive", "direction confirmed, size differs"})
    row.alternatives = None
    assert read_verdict_cell(verdict_cell(row)) == ("confirmed", set())
    row.claimed = False
    assert read_verdict_cell(verdict_cell(row)) is None


def test_summary_table_lists_every_run(report):
    text = (report / "results.md").read_text()
    summary = text[text.index("## Summary of all runs"):]
    for run in SPECS:
        assert f"| `{run}` |" in summary
    assert table_row(summary, "`e01_poor_init`").endswith("| 5 | 2 |")


def test_figures_exist_and_are_png(report):
    figs = report / "figures"
    expected = {"exp01_accuracy.png", "exp01_learning_curves.png", "exp01_layer_diagnostics.png",
                "exp02_init_variance.png", "exp05_accuracy.png", "exp09_learning_rates.png",
                "exp13_confusion.png", "activation_functions.png"}
    names = {p.name for p in figs.glob("*.png")}
    assert expected <= names
    assert not any(n.startswith(("exp07_", "exp16_")) for n in names)  # runs absent
    for path in figs.glob("*.png"):
        assert path.read_bytes()[:8] == PNG_MAGIC
    text = (report / "results.md").read_text()
    for name in names:
        assert f"(figures/{name})" in text
    assert "poor init N(0,1) (n=5 at epoch 1, 3 from epoch 1" not in text


def test_report_stage_does_not_import_tensorflow():
    code = "import sys, stages.report; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, timeout=60)
    assert done.returncode == 0, done.stderr


def test_missing_eval_file_is_one_clear_error(tmp_path):
    root = make_project(tmp_path, {"baseline": SPECS["baseline"]})
    assert run_stage(root, "stages.aggregate", "fashion_mnist").returncode == 0
    (root / "metrics" / "fashion_mnist" / "eval" / "baseline.json").unlink()
    done = run_stage(root, "stages.report", "fashion_mnist")
    assert done.returncode == 1
    assert "baseline.json not found" in done.stderr and "Traceback" not in done.stderr
    assert not (root / "reports" / "fashion_mnist").exists()


def test_a_write_failing_midway_keeps_the_old_report_and_says_why(tmp_path):
    root = make_project(tmp_path, {"baseline": SPECS["baseline"], "e05_bn_after": SPECS["e05_bn_after"]})
    assert run_stage(root, "stages.aggregate", "fashion_mnist").returncode == 0
    assert run_stage(root, "stages.report", "fashion_mnist").returncode == 0
    reports = root / "reports"
    before = {p.relative_to(reports): p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    done = run_stage(root, "stages.report", "fashion_mnist", max_file_bytes=20_000)  # figures are larger
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot write reports/fashion_mnist" in done.stderr and "Nothing was written" in done.stderr
    after = {p.relative_to(reports): p.read_bytes() for p in reports.rglob("*") if p.is_file()}
    assert after == before  # the previous report whole, no temporary left beside it
    assert run_stage(root, "stages.report", "fashion_mnist").returncode == 0
    assert {p.relative_to(reports): p.read_bytes() for p in reports.rglob("*") if p.is_file()} == before


def test_figures_are_deterministic(tmp_path):
    from ch11 import figures
    panels = [{"xlabel": "test accuracy (%)", "bars": [{"label": "a", "values": [85.0, 85.5, 86.0], "claimed": 85.2},
                                                       {"label": "b", "values": [84.0, 84.2, 84.1], "claimed": None}]}]
    first = figures.variant_bars(tmp_path / "one.png", "title", panels).read_bytes()
    second = figures.variant_bars(tmp_path / "two.png", "title", panels).read_bytes()
    assert first == second and first[:8] == PNG_MAGIC
    assert figures.variant_bars(tmp_path / "none.png", "title", [{"xlabel": "x", "bars": []}]) is None
