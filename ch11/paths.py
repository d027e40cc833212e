"""Where every stage reads and writes; dvc.yaml declares the same paths (one folder or file per run)."""
from __future__ import annotations

from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]  # the folder holding dvc.yaml (the paths below are relative to it)
DATA = Path("data")
MODELS = Path("models")
METRICS = Path("metrics")
REPORTS = Path("reports")
CHECKPOINTS = Path(".checkpoints")  # per-epoch training state outside DVC outs, so a kill can resume


def raw_dir(dataset: str) -> Path:
    return DATA / "raw" / dataset


def validated(dataset: str) -> Path:
    return DATA / "validated" / f"{dataset}.npz"


def validation_metrics(dataset: str) -> Path:
    return METRICS / "validation" / f"{dataset}.json"


def validation_report(dataset: str) -> Path:
    return REPORTS / "validation" / dataset


def model_dir(run: str) -> Path:
    """models/<run>/: seed-<s>.keras (model) and seed-<s>.npz (test-set predictions) per seed."""
    return MODELS / run


def model_file(run: str, seed: int) -> Path:
    return model_dir(run) / f"seed-{seed}.keras"


def predictions(run: str, seed: int) -> Path:
    return model_dir(run) / f"seed-{seed}.npz"


def train_dir(dataset: str, run: str) -> Path:
    """metrics/<dataset>/train/<run>/: history-<s>.csv (per epoch) and probes-<s>.json per seed."""
    return METRICS / dataset / "train" / run


def history(dataset: str, run: str, seed: int) -> Path:
    return train_dir(dataset, run) / f"history-{seed}.csv"


def train_info(dataset: str, run: str, seed: int) -> Path:
    return train_dir(dataset, run) / f"info-{seed}.json"


def timing(dataset: str, run: str) -> Path:
    """Wall-clock times: a plain git-tracked file, not a DVC output, so a bit-identical retraining changes
    no hashed output and re-runs nothing downstream (the report shows the times it finds, untested)."""
    return METRICS / dataset / "timing" / f"{run}.json"


def eval_metrics(dataset: str, run: str) -> Path:
    return METRICS / dataset / "eval" / f"{run}.json"


def confusion(dataset: str, run: str) -> Path:
    return METRICS / dataset / "confusion" / f"{run}.csv"


HOST_CHECKS = METRICS / "host_checks.json"  # what a second host measured, per dataset (git-tracked; the report
# marks the rows resting on runs that moved there)


def summary(dataset: str) -> Path:
    return METRICS / dataset / "summary.json"


def effects(dataset: str) -> Path:
    return METRICS / dataset / "effects.json"


def report_dir(dataset: str) -> Path:
    return REPORTS / dataset
