"""The report stage end to end on a hand-made metrics tree: aggregate, then report, as subprocesses."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SEEDS = [1, 2, 3]
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# Per run: test accuracy per seed, validation accuracy after epoch 1 per seed, epochs, initializer.
# Chosen so that each verdict appears: exp 5 BN vs no BN overlaps after epoch 1 (within noise), the
# production model is far below the seed's 90.22 % (contradicted), ReduceLROnPlateau clearly beats the
# constant learning rate (confirmed), He beats poor init (confirmed); poor init diverges with seed 2.
SPECS = {
    "e01_poor_init": {"acc": [0.100, 0.000, 0.101], "epoch1": [0.10, 0.10, 0.10], "init": "poor_normal",
                      "diverged": [False, True, False]},
    "e01_he_init": {"acc": [0.850, 0.848, 0.853], "epoch1": [0.80, 0.81, 0.80]},
    "e05_no_bn": {"acc": [0.870, 0.880, 0.860], "epoch1": [0.800, 0.830, 0.810]},
    "e05_bn_after": {"acc": [0.875, 0.865, 0.885], "epoch1": [0.790, 0.840, 0.820]},
    "e09_constant": {"acc": [0.870, 0.872, 0.871], "epoch1": [0.80, 0.80, 0.80]},
    "e09_plateau": {"acc": [0.892, 0.893, 0.891], "epoch1": [0.80, 0.80, 0.80]},
    "e13_production": {"acc": [0.700, 0.702, 0.701], "epoch1": [0.60, 0.61, 0.60], "epochs": 12},
}


def theory(init: str, fan_in: int, fan_out: int) -> float:
    return {"poor_normal": 1.0, "he_normal": 2.0 / fan_in}[init]


def layer_rows(init: str, hidden: list[int], trained: bool, rng: np.random.Generator) -> list[dict]:
    sizes = [784, *hidden, 10]
    rows = []
    for i, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:]), start=1):
        var = theory(init, fan_in, fan_out)
        rows.append({"layer": i, "fan_in": fan_in, "fan_out": fan_out,
                     "grad_norm": float((1e-6 if init == "poor_normal" else 0.5) * (i if trained else 1)),
                     "activation_std": float((30.0 * i if init == "poor_normal" else 0.8) * rng.uniform(0.9, 1.1)),
                     "weight_var": float(var * rng.uniform(0.97, 1.03) * (1.3 if trained else 1.0)),
                     "theory_var": var})
    return rows


def write_job(root: Path, run: str, seed: int, spec: dict, index: int) -> None:
    """Eval JSON, history CSV, train JSON and confusion CSV of one (run, seed), as the stages write them."""
    rng = np.random.default_rng(100 * index + seed)
    ds = root / "metrics" / "fashion_mnist"
    acc, first = spec["acc"][seed - 1], spec["epoch1"][seed - 1]
    epochs = spec.get("epochs", 5)
    val = np.linspace(first, acc + 0.002, epochs)
    train_acc = val + 0.03
    lr = 0.01 * 0.5 ** (np.arange(epochs) // 3) if run == "e09_plateau" else np.full(epochs, 0.01)
    rows = ["epoch,accuracy,loss,val_accuracy,val_loss,learning_rate,epoch_time"]
    rows += [f"{e},{train_acc[e]:.4f},{1 - train_acc[e]:.4f},{val[e]:.4f},{1 - val[e]:.4f},{lr[e]},1.5"
             for e in range(epochs)]
    best = int(np.argmax(val))
    diverged = spec.get("diverged", [False] * len(SEEDS))[seed - 1]
    evaluation = {"test_accuracy": acc, "test_loss": 1 - acc, "best_val_accuracy": float(val[best]),
                  "best_epoch": best + 1, "epochs": epochs, "overfit_gap": float(train_acc[best] - val[best]),
                  "epoch1_val_accuracy": first, "train_time_s": 60.0 + seed, "diverged": diverged,
                  "per_class_accuracy": {str(c): acc for c in range(10)}}
    init = spec.get("init", "he_normal")
    info = {"run": run, "seed": seed, "dataset": "fashion_mnist", "diverged": diverged, "train_time_s": 60.0 + seed,
            "layers_at_init": layer_rows(init, [300, 200, 100], False, rng),
            "layers_after_training": layer_rows(init, [300, 200, 100], True, rng)}
    actual = np.repeat(np.arange(10), 50)
    predicted = np.where(rng.random(actual.size) < acc, actual, rng.integers(0, 10, actual.size))
    for sub, text in (("eval", json.dumps(evaluation)), ("history", "\n".join(rows) + "\n"),
                      ("train", json.dumps(info)),
                      ("confusion", "actual,predicted\n" + "".join(f"{a},{p}\n" for a, p in zip(actual, predicted)))):
        path = ds / sub / f"{run}-{seed}.{'csv' if sub in ('history', 'confusion') else 'json'}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def make_project(root: Path, specs: dict = SPECS) -> Path:
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["seeds"] = SEEDS
    params["runs"] = {k: v for k, v in params["runs"].items() if k in specs}
    params["transfer_runs"], params["cifar_runs"] = {}, {}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for index, (run, spec) in enumerate(specs.items()):
        for seed in SEEDS:
            write_job(root, run, seed, spec, index)
    return root


def run_stage(root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "MPLBACKEND": "Agg"}
    return subprocess.run([sys.executable, "-m", *args], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


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


def test_header_names_seeds_and_test(report):
    text = (report / "results.md").read_text()
    assert "**Seeds:** 3 per run (1, 2, 3)" in text
    assert "Welch t-test, two-sided, alpha 0.05; error bars = std" in text
    assert "**CIFAR-10**" not in text  # make_project has no CIFAR-10 runs


def test_header_points_to_the_cifar10_report(tmp_path):
    root = make_project(tmp_path, {"e01_he_init": SPECS["e01_he_init"]})
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["cifar_runs"] = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())["cifar_runs"]
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    for stage in ("stages.aggregate", "stages.report"):
        done = run_stage(root, stage, "fashion_mnist")
        assert done.returncode == 0, done.stderr
    text = (root / "reports" / "fashion_mnist" / "results.md").read_text()
    assert f"**CIFAR-10** (experiment 14 and exercise 8: {len(params['cifar_runs'])} runs)" in text
    assert "its numbers await a machine with the dataset" in text


def test_overlapping_seeds_are_within_noise(report):
    exp5 = section((report / "results.md").read_text(), 5)
    row = table_row(exp5, "BN after activation vs no BN — validation accuracy after epoch 1")
    assert "**within noise**" in row and "+3.20 pts" in row
    assert "**Verdict: within noise**" in exp5
    assert "Claim items skipped (runs not in params.yaml): e05_bn_before vs e05_no_bn." in exp5


def test_clear_disagreement_is_contradicted(report):
    exp13 = section((report / "results.md").read_text(), 13)
    row = table_row(exp13, "production — test accuracy")
    assert "| 90.22 % |" in row and "70.10 ± 0.10 % (n=3)" in row and "**contradicted**" in row
    assert "Where we disagree with the seed:" in exp13
    # wall-clock time is shown, not tested
    assert "not tested" in table_row(exp13, "production — training time")


def test_clear_agreement_is_confirmed(report):
    text = (report / "results.md").read_text()
    assert "**confirmed**" in table_row(section(text, 9), "ReduceLROnPlateau vs constant — test accuracy")
    exp1 = section(text, 1)
    assert "**confirmed**" in table_row(exp1, "He init vs poor init N(0,1) — test accuracy")
    # qualitative claims become checks on our data
    exp3 = section(text, 3)
    assert "**confirmed**" in table_row(exp3, "poor init: best validation accuracy")
    assert "undetermined" not in section(text, 1)


def test_diverged_seeds_are_named_and_kept(report):
    text = (report / "results.md").read_text()
    assert ("**Divergence.** `e01_poor_init` diverged (NaN loss, training stopped) with seed 2 of 3. "
            "A diverged model's NaN outputs predict nothing: its test accuracy counts as 0 %") in section(text, 1)
    assert "(n=3)" in table_row(section(text, 1), "poor init N(0,1) — test accuracy")  # kept, not dropped
    assert "**Divergence.**" not in section(text, 5)


def test_significance_statements_and_absent_experiments(report):
    text = (report / "results.md").read_text()
    assert ("- **ReduceLROnPlateau** vs **constant** (test accuracy): +2.10 pts" in text
            and "→ significant: ReduceLROnPlateau is better." in text)
    assert "Not run in this configuration" in section(text, 4)


def test_summary_table_lists_every_run(report):
    text = (report / "results.md").read_text()
    summary = text[text.index("## Summary of all runs"):text.index("### Test accuracy per seed")]
    assert "| run | label | exp | test acc (%) | best val acc (%) | best epoch | epochs |" in summary
    for run in SPECS:
        assert f"| `{run}` |" in summary
    assert table_row(summary, "`e09_plateau`").split(" | ")[3] == "89.20 ± 0.10"
    assert "| `e13_production` | 70.00 | 70.20 | 70.10 |" in text  # per-seed values, none dropped


def test_figures_exist_and_are_png(report):
    figs = report / "figures"
    expected = {"exp01_accuracy.png", "exp01_learning_curves.png", "exp01_layer_diagnostics.png",
                "exp03_accuracy.png", "exp05_accuracy.png", "exp09_learning_rates.png",
                "exp13_confusion_e13_production.png", "activation_functions.png"}
    names = {p.name for p in figs.glob("*.png")}
    assert expected <= names
    assert not any(n.startswith(("exp02_", "exp04_accuracy", "exp07_")) for n in names)  # runs absent
    for path in figs.glob("*.png"):
        assert path.read_bytes()[:8] == PNG_MAGIC
    from PIL import Image
    with Image.open(figs / "exp13_confusion_e13_production.png") as img:
        img.verify()
    text = (report / "results.md").read_text()
    for name in names:
        assert f"(figures/{name})" in text


def test_report_stage_does_not_import_tensorflow():
    code = "import sys, stages.report; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    done = subprocess.run([sys.executable, "-c", code], cwd=PROJECT_ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}, timeout=60)
    assert done.returncode == 0, done.stderr


def test_missing_eval_file_is_one_clear_error(tmp_path):
    root = make_project(tmp_path, {"e01_he_init": SPECS["e01_he_init"]})
    assert run_stage(root, "stages.aggregate", "fashion_mnist").returncode == 0
    (root / "metrics" / "fashion_mnist" / "eval" / "e01_he_init-2.json").unlink()
    done = run_stage(root, "stages.report", "fashion_mnist")
    assert done.returncode == 1
    assert "e01_he_init-2.json not found" in done.stderr and "Traceback" not in done.stderr
    assert not (root / "reports" / "fashion_mnist").exists()


def test_figures_are_deterministic(tmp_path):
    from ch11 import figures
    panels = [{"xlabel": "test accuracy (%)", "bars": [{"label": "a", "values": [85.0, 85.5, 86.0], "claimed": 85.2},
                                                       {"label": "b", "values": [84.0, 84.2, 84.1], "claimed": None}]}]
    first = figures.variant_bars(tmp_path / "one.png", "title", panels).read_bytes()
    second = figures.variant_bars(tmp_path / "two.png", "title", panels).read_bytes()
    assert first == second and first[:8] == PNG_MAGIC
    assert figures.variant_bars(tmp_path / "none.png", "title", [{"xlabel": "x", "bars": []}]) is None
