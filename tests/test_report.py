"""The report stage end to end on a hand-made metrics tree: aggregate, then report, as subprocesses."""
from __future__ import annotations

import json
import resource
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from ch11.sandbox import with_seeds
from tests.helpers import PROJECT_ROOT, digest, digests, module, run as run_child

SEEDS = [1, 2, 3, 4, 5]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
BASE = [0.870, 0.872, 0.868, 0.871, 0.869]

# Per run: test accuracy per seed (None: diverged), validation accuracy after epoch 1 per seed. Chosen so
# that each reading appears: BN beats no BN after epoch 1 by ~1.9 (the write-up: 3.2; size excluded), SELU
# equals the baseline (no effect), best practices +2.45 over the early-stopped baseline (supported), the
# production model far below 90.22 % (out of range), ReduceLROnPlateau never changes the LR (not tested),
# poor init 0/0/33-like (2 diverged, one seed learned to 33 %).
SPECS = {
    "baseline": {"acc": BASE, "epoch1": [0.80, 0.81, 0.80, 0.79, 0.80]},
    "selu": {"acc": BASE, "epoch1": [0.80, 0.81, 0.80, 0.79, 0.80]},
    "e01_poor_init": {"acc": [None, None, 0.334, 0.10, 0.10], "epoch1": [None, None, 0.10, 0.10, 0.10],
                      "init": "poor_normal"},
    "e05_bn_after": {"acc": BASE, "epoch1": [0.819, 0.829, 0.818, 0.809, 0.820]},
    "e09_plateau": {"acc": [0.871, 0.873, 0.869, 0.872, 0.870], "epoch1": [0.80] * 5},
    "baseline_es": {"acc": [a - 0.01 for a in BASE], "epoch1": [0.80] * 5, "epochs": 4},
    "e13_production_common": {"acc": [a + 0.0145 + e for a, e in zip(BASE, [0.001, -0.001, 0.0005, -0.0005, 0])],
                              "epoch1": [0.80] * 5, "epochs": 4},
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
    limit = (lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
             ) if max_file_bytes else None
    return module(root, *args, timeout=120, preexec_fn=limit)


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


def effects_table(text: str) -> str:
    return text[text.index("## What each technique does here"):text.index("## The write-up's claims")]


def claims_table(text: str) -> str:
    return text[text.index("## The write-up's claims"):text.index("## How to read")]


def test_the_answer_comes_first_effects_table_then_forest_plot(report):
    text = (report / "results.md").read_text()
    first_table = next(line for line in text.splitlines() if line.startswith("| "))
    assert first_table.startswith("| reading | technique | exp. | Δ [95 % CI] | p (Holm) |")
    assert text.index("## What each technique does here") < text.index("![Forest plot of the effects]") \
        < text.index("## The write-up's claims") < text.index("## How to read")
    assert "Seeds: 1–5 (8 runs). Backend: tensorflow." in text
    assert "**CIFAR-10**" not in text  # make_project has no CIFAR-10 runs
    assert (report / "figures" / "effects_forest.png").read_bytes()[:8] == PNG_MAGIC


def test_effect_readings_follow_the_numbers_beside_them(report):
    table = effects_table((report / "results.md").read_text())
    same = table_row(table, "**no effect** | SELU, LeCun init")         # identical to the baseline
    assert "+0.00 [+0.00, +0.00]" in same and "| -0.05 |" in same           # the write-up's Δ beside it
    helps = table_row(table, "**helps** | best practices combined, the write-up's layer order")
    assert "| +2.45 [+2." in helps and "| +2.45 |" in helps
    epoch1 = table_row(table, "**helps** | BN after the activation (vs none) — validation accuracy after epoch 1")
    assert "+1.90" in epoch1
    poor = next(line for line in table.splitlines() if "poor init N(0, 1)" in line)
    assert "`e01_poor_init` diverged in 2 of 5 seeds" in poor  # fewer than half: its others are compared
    order = [line.split(" | ")[0] for line in table.splitlines() if line.startswith("| **")]
    assert order == sorted(order, key=lambda r: ["| **helps**", "| **no effect**", "| **hurts**",
                                                  "| **unresolved**", "| **diverges**"].index(r))


def test_effects_json_holds_the_same_numbers_for_dvc_metrics(report):
    effects = json.loads((report.parent.parent / "metrics" / "fashion_mnist" / "effects.json").read_text())
    best = effects["effects"]["e13_production_common - baseline_es"]
    assert best["diff"] == pytest.approx(2.45) and best["reading"] == "helps"
    assert effects["effects"]["e05_bn_after - baseline (epoch1_val_accuracy)"]["diff"] == pytest.approx(1.9)
    assert effects["claims"]["e13_production_common - baseline_es"]["verdict"] == "supported"
    dvc_yaml = yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())
    assert {"metrics/${item}/effects.json": {"cache": False}} in dvc_yaml["stages"]["report"]["do"]["metrics"]


def test_claim_verdicts_use_the_vocabulary(report):
    claims = claims_table((report / "results.md").read_text())
    bn = table_row(claims, "5 | BN after activation − no BN")
    assert "+3.20 pts" in bn and "**size excluded**" in bn                  # +1.9 measured, CI far from 3.2
    assert "**supported**" in table_row(claims, "12 | best practices − baseline")
    assert "**size excluded**" in table_row(claims, "4 | SELU − ReLU")  # identical runs: a zero-width CI
    plateau = table_row(claims, "9 | ReduceLROnPlateau − constant")
    assert "**not tested**" in plateau and "never changed the learning rate" in plateau


def test_the_write_ups_single_numbers_are_apart_and_not_counted(report):
    text = (report / "results.md").read_text()
    part = text[text.index("## The write-up's single numbers"):text.index("## Experiment 1")]
    row = table_row(part, "13 | production (the write-up's order) — test accuracy")
    assert "| 90.22 % |" in row and "| in range |" not in row
    assert "| not tested |" in table_row(part, "13 | production (the write-up's order) — training time")
    assert "| in range |" in table_row(part, "1 | He init — test accuracy")
    assert "`baseline` (He init" in part and "85.00 % (exp. 1)" in part
    assert "90.22" not in claims_table(text)


def test_a_run_still_improving_at_the_end_of_its_budget_is_flagged(report):
    text = (report / "results.md").read_text()  # constructed curves fall in loss to the last epoch
    exp5 = section(text, 5)
    assert "**Still improving at the end of the budget**" in exp5
    assert "`e05_bn_after` (criterion met in 0 of 5 seeds)" in exp5
    table = effects_table(text)
    test_accuracy = next(line for line in table.splitlines() if "| BN after the activation (vs none) |" in line)
    assert "**no** (0/5, 0/5)" in test_accuracy
    assert "n/a (epoch 1) (0/5, 0/5)" in table_row(table, "**helps** | BN after the activation")  # budget-proof


def test_the_convergence_flag_uses_the_early_stopping_criterion():
    from ch11.evidence import RunData

    def run(losses: list[list[float]], patience: int | None) -> RunData:
        histories = {s: pd.DataFrame({"val_loss": loss, "learning_rate": 0.01}) for s, loss in enumerate(losses, 1)}
        evals = {s: {} for s in histories}
        return RunData("r", list(histories), evals, histories, {}, {}, 100, patience)

    falling, turned = list(range(100, 0, -1)), list(range(60, 0, -1)) + list(range(1, 41))
    assert run([falling, falling, turned], 15).converged() == (1, 3)       # best at the cap: never fired
    assert run([turned, turned, falling], 15).converged() == (2, 3)
    assert run([falling[-30:]], None).converged() == (0, 1)                # fixed budgets: patience 15


def test_a_schedule_that_never_changed_the_lr_is_said(report):
    exp9 = section((report / "results.md").read_text(), 9)
    assert "ReduceLROnPlateau lowered the learning rate: `e09_plateau` in 0 of 5 seeds" in exp9


def test_diverged_seeds_are_counted_beside_not_averaged_into_accuracy(report):
    text = (report / "results.md").read_text()
    assert "poor init N(0,1) (`e01_poor_init`, 5 seeds, 5 ep., last weights, 2 diverged)" in section(text, 1)
    checks = claims_table(text)
    row = table_row(checks, "1 | poor init learns nothing")
    assert "2 of 5 diverged; best validation accuracy of the others: 33.6 %, 10.2 %, 10.2 %" in row
    assert "holds in 4 of 5 seeds" in row and "**mixed**" in row


def test_rows_resting_on_a_run_that_moved_on_a_second_host_are_marked(tmp_path):
    root = make_project(tmp_path, {"baseline": SPECS["baseline"], "e05_bn_after": SPECS["e05_bn_after"],
                                   "selu": SPECS["selu"]})
    assert run_stage(root, "stages.aggregate", "fashion_mnist").returncode == 0
    assert run_stage(root, "stages.report", "fashion_mnist").returncode == 0
    assert "†" not in table_row(effects_table((root / "reports" / "fashion_mnist" / "results.md").read_text()),
                                "**helps** | BN after the activation")
    check = {"hosts": "host B vs host A", "source": "a test", "seeds": [1, 2], "identical": ["baseline"],
             "moved": ["e05_bn_after"], "moved_by": "±0.2 pts"}
    (root / "metrics" / "host_checks.json").write_text(json.dumps({"fashion_mnist": check}))
    assert run_stage(root, "stages.report", "fashion_mnist").returncode == 0
    text = (root / "reports" / "fashion_mnist" / "results.md").read_text()
    assert "†" in table_row(effects_table(text), "**helps** | BN after the activation")
    assert "†" not in table_row(effects_table(text), "**no effect** | SELU")  # never measured: no mark
    assert "`e05_bn_after` did not (±0.2 pts)" in text
    (root / "metrics" / "host_checks.json").write_text(json.dumps({"fashion_mnist": {"hosts": "x"}}))
    done = run_stage(root, "stages.report", "fashion_mnist")
    assert done.returncode == 1 and "lacks identical, moved, moved_by, seeds, source" in done.stderr


def test_each_experiment_writes_the_data_of_its_grouped_dvc_plot(report):
    bn = pd.read_csv(report / "curves" / "exp05.csv")
    assert list(bn.columns) == ["epoch", "run", "val_accuracy", "seeds"]
    assert set(bn["run"]) == {"no BN", "BN after activation"}  # the experiment's runs present, by label
    first = bn[(bn["run"] == "no BN") & (bn["epoch"] == 1)]
    assert first["val_accuracy"].item() == pytest.approx(80.0) and first["seeds"].item() == 5
    poor = pd.read_csv(report / "curves" / "exp01.csv")
    assert poor[poor["run"] == "poor init N(0,1)"]["seeds"].max() == 3  # diverged seeds are not averaged in


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
                "exp13_confusion.png", "activation_functions.png", "effects_forest.png"}
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
    done = run_child([sys.executable, "-c", code], PROJECT_ROOT, timeout=60)
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

    def files():
        return digests([p for p in reports.rglob("*") if p.is_file()], reports)

    before = files()
    done = run_stage(root, "stages.report", "fashion_mnist", max_file_bytes=20_000)  # figures are larger
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot write reports/fashion_mnist" in done.stderr and "Nothing was written" in done.stderr
    assert files() == before  # the previous report whole, no temporary left beside it
    assert run_stage(root, "stages.report", "fashion_mnist").returncode == 0
    assert files() == before


def test_figures_are_deterministic_and_leave_matplotlib_settings_alone(tmp_path):
    import matplotlib.pyplot as plt
    from ch11 import figures
    panels = [{"xlabel": "test accuracy (%)", "bars": [{"label": "a", "values": [85.0, 85.5, 86.0], "claimed": 85.2},
                                                       {"label": "b", "values": [84.0, 84.2, 84.1], "claimed": None}]}]
    settings = dict(plt.rcParams)
    first = figures.variant_bars(tmp_path / "one.png", "title", panels)
    assert dict(plt.rcParams) == settings   # the report's style is its own, not the process's
    with plt.rc_context({"axes.grid": False, "font.size": 20}):   # nor does the process's change the figures
        second = figures.variant_bars(tmp_path / "two.png", "title", panels)
    assert digest(first) == digest(second)
    assert first.read_bytes()[:8] == PNG_MAGIC
    assert figures.variant_bars(tmp_path / "none.png", "title", [{"xlabel": "x", "bars": []}]) is None
