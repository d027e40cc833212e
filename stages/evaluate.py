"""Stage evaluate@<run>-<seed>: metrics of one trained (run, seed) from its saved test predictions.

Usage: python -m stages.evaluate <run> <seed>
No TensorFlow: the train stage saved the test-set probabilities; this stage scores them with numpy.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ch11 import atomic, paths, params as params_mod
from ch11.data import n_classes, run_splits
from ch11.errors import PipelineError, run_main


def cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    """Share of correct argmax predictions; a non-finite (diverged) prediction counts as wrong."""
    finite = np.isfinite(probs).all(axis=1)
    return float(np.mean(finite & (np.argmax(np.nan_to_num(probs, nan=-1.0), axis=1) == y)))


def history_metrics(history: pd.DataFrame) -> dict:
    """Best validation accuracy, its (1-based) epoch, and the overfitting gap there."""
    best = int(history["val_accuracy"].fillna(-1).idxmax())
    row = history.iloc[best]
    return {"best_val_accuracy": float(row["val_accuracy"]), "best_epoch": best + 1,
            "epochs": len(history), "overfit_gap": float(row["accuracy"] - row["val_accuracy"]),
            "epoch1_val_accuracy": float(history["val_accuracy"].iloc[0])}


def evaluate(run: str, seed: int) -> None:
    params = params_mod.load()
    config = params.run(run)
    dataset = params.dataset_of(run)
    y = run_splits(dataset, config)["test"].y
    pred_path = paths.model_dir(run, seed) / "predictions.npz"
    if not pred_path.exists():
        raise PipelineError(f"{pred_path} not found; run `dvc repro train@{run}-{seed}` first.")
    with np.load(pred_path) as npz:
        preds = {k: npz[k] for k in npz.files}
    probs = preds["probs"]
    if len(probs) != len(y):
        raise PipelineError(f"{pred_path} holds {len(probs)} predictions but the test split has {len(y)} "
                            f"labels; the model is stale. Rerun `dvc repro train@{run}-{seed}`.")
    info = json.loads(paths.train_info(dataset, run, seed).read_text())
    history = pd.read_csv(paths.history(dataset, run, seed))
    predicted = np.argmax(np.nan_to_num(probs, nan=-1.0), axis=1)
    classes = n_classes(config)
    per_class = {str(c): float(np.mean(predicted[y == c] == c)) if np.any(y == c) else None
                 for c in range(classes)}
    metrics = {"test_accuracy": accuracy(probs, y),
               "test_loss": cross_entropy(probs, y) if not info["diverged"] else None,
               **history_metrics(history), "train_time_s": info["train_time_s"], "diverged": info["diverged"],
               "per_class_accuracy": per_class}
    if "mc_probs" in preds:
        metrics["mc_test_accuracy"] = accuracy(preds["mc_probs"], y)
    metrics = {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in metrics.items()}
    atomic.write_json(paths.eval_metrics(dataset, run, seed), metrics)
    labels = config.classes or list(range(10))
    confusion = pd.DataFrame({"actual": np.asarray(labels)[y], "predicted": np.asarray(labels)[predicted]})
    atomic.write_text(paths.confusion(dataset, run, seed), confusion.to_csv(index=False))
    print(f"evaluate {paths.job(run, seed)}: test accuracy {metrics['test_accuracy']:.4f}")


def main(argv: list[str]) -> None:
    if len(argv) != 2 or not argv[1].isdigit():
        raise PipelineError("usage: python -m stages.evaluate <run> <seed>  (seed: a non-negative integer)")
    evaluate(argv[0], int(argv[1]))


if __name__ == "__main__":
    run_main(main)
