"""Where every stage reads and writes; dvc.yaml declares the same paths."""
from __future__ import annotations

from pathlib import Path

DATA = Path("data")
MODELS = Path("models")
METRICS = Path("metrics")
REPORTS = Path("reports")
CHECKPOINTS = Path(".checkpoints")  # BackupAndRestore state: outside DVC outs, so a kill can resume


def raw_dir(dataset: str) -> Path:
    return DATA / "raw" / dataset


def validated(dataset: str) -> Path:
    return DATA / "validated" / f"{dataset}.npz"


def validation_metrics(dataset: str) -> Path:
    return METRICS / "validation" / f"{dataset}.json"


def validation_report(dataset: str) -> Path:
    return REPORTS / "validation" / dataset


def job(run: str, seed: int) -> str:
    """Name of one (run, seed) pair, as in the DVC stage names ``train@<run>-<seed>``."""
    return f"{run}-{seed}"


def model_dir(run: str, seed: int) -> Path:
    return MODELS / job(run, seed)


def history(dataset: str, run: str, seed: int) -> Path:
    return METRICS / dataset / "history" / f"{job(run, seed)}.csv"


def train_info(dataset: str, run: str, seed: int) -> Path:
    return METRICS / dataset / "train" / f"{job(run, seed)}.json"


def eval_metrics(dataset: str, run: str, seed: int) -> Path:
    return METRICS / dataset / "eval" / f"{job(run, seed)}.json"


def confusion(dataset: str, run: str, seed: int) -> Path:
    return METRICS / dataset / "confusion" / f"{job(run, seed)}.csv"


def summary(dataset: str) -> Path:
    return METRICS / dataset / "summary.json"


def report_dir(dataset: str) -> Path:
    return REPORTS / dataset
