"""A hand-made metrics tree for the report tests: the files the train and evaluate stages write, for runs whose
per-seed numbers are chosen so that every reading and verdict appears; and the report stages run on it."""
from __future__ import annotations

import json
import resource
import subprocess
from pathlib import Path

import numpy as np
import yaml

from ch11.sandbox import with_seeds
from tests.helpers import PROJECT_ROOT, module

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SEEDS = [1, 2, 3, 4, 5]
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


# Reading results.md

def section(text: str, number: int) -> str:
    start = text.index(f"## Experiment {number} —")
    end = text.find("\n## ", start + 1)
    return text[start:end if end >= 0 else None]


def table_row(text: str, startswith: str) -> str:
    rows = [line for line in text.splitlines() if line.startswith(f"| {startswith}")]
    assert len(rows) == 1, (startswith, rows)
    return rows[0]


def effects_table(text: str, group: str = "### Final test accuracy") -> str:
    """One group of the effects tables (final test accuracy unless ``group`` names another heading)."""
    start = text.index(group)
    end = text.find("\n### ", start + 1)
    return text[start:end if end >= 0 else text.index("## The write-up's claims")]


def claims_table(text: str) -> str:
    return text[text.index("## The write-up's claims"):text.index("## How to read")]
