"""Stage evaluate@<run>: metrics of every seed of one trained run, from its saved test predictions.

Usage: python -m stages.evaluate <run>
No Keras: the train stage saved the test-set probabilities; this stage scores them with numpy and writes
metrics/<dataset>/eval/<run>.json (per seed, and the mean over seeds) and the confusion table of the
run's first seed. A diverged seed (non-finite loss) has no accuracy: it is counted in ``diverged``,
never averaged into an accuracy.
"""
from __future__ import annotations

import json

import numpy as np
import pandas as pd

from ch11 import atomic, paths, params as params_mod
from ch11.data.splits import run_splits
from ch11.errors import PipelineError, run_main
from ch11.report.stats import SUMMARY_METRICS


def cross_entropy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(-np.mean(np.log(np.clip(probs[np.arange(len(y)), y], 1e-7, 1.0))))


def accuracy(probs: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.argmax(probs, axis=1) == y))


def history_metrics(history: pd.DataFrame) -> dict:
    """Best validation accuracy and its (1-based) epoch; the overfitting gap as the write-up defines it:
    training-set accuracy in inference mode at that epoch minus the best validation accuracy."""
    best = int(history["val_accuracy"].idxmax())
    row = history.iloc[best]
    return {"best_val_accuracy": float(row["val_accuracy"]), "best_epoch": best + 1, "epochs": len(history),
            "overfit_gap": float(row["train_eval_accuracy"] - row["val_accuracy"]),
            "epoch1_val_accuracy": float(history["val_accuracy"].iloc[0])}


def seed_metrics(dataset: str, run: str, seed: int, y: np.ndarray) -> tuple[dict, np.ndarray | None]:
    """One seed's metrics and its predicted classes (None when the seed diverged)."""
    pred_path = paths.predictions(run, seed)
    if not pred_path.exists():
        raise PipelineError(f"{pred_path} not found; run `dvc repro train@{run}` first.")
    with np.load(pred_path) as npz:
        preds = {k: npz[k] for k in npz.files}
    if len(preds["probs"]) != len(y):
        raise PipelineError(f"{pred_path} holds {len(preds['probs'])} predictions but the test split has "
                            f"{len(y)} labels; the model is stale. Rerun `dvc repro train@{run}`.")
    info = json.loads(paths.train_info(dataset, run, seed).read_text())
    history = pd.read_csv(paths.history(dataset, run, seed))
    if info["diverged"]:
        return {"diverged": True, "epochs": len(history)}, None
    predicted = np.argmax(preds["probs"], axis=1)
    metrics = {"diverged": False, "test_accuracy": accuracy(preds["probs"], y),
               "test_loss": cross_entropy(preds["probs"], y), **history_metrics(history),
               "per_class_accuracy": {str(c): float(np.mean(predicted[y == c] == c))
                                      for c in np.unique(y)}}
    if "mc_probs" in preds:
        metrics["mc_test_accuracy"] = accuracy(preds["mc_probs"], y)
    return metrics, predicted


def evaluate(run: str) -> None:
    params = params_mod.load()
    config = params.run(run)
    dataset = params.dataset_of(run)
    y = run_splits(dataset, config)["test"].y
    seeds = params.seeds_of(run)
    per_seed, first_predicted = {}, None
    for seed in seeds:
        per_seed[str(seed)], predicted = seed_metrics(dataset, run, seed, y)
        if first_predicted is None and predicted is not None:
            first_predicted, first_seed = predicted, seed
    trained = [s for s in per_seed.values() if not s["diverged"]]
    mean = {m: float(np.mean([s[m] for s in trained])) for m in SUMMARY_METRICS if trained and m in trained[0]}
    diverged = sum(s["diverged"] for s in per_seed.values())
    atomic.write_json(paths.eval_metrics(dataset, run),
                      {"mean": mean, "diverged": diverged, "seeds": len(seeds), "per_seed": per_seed})
    labels = np.asarray(config.classes or list(range(10)))
    table = pd.DataFrame({"actual": labels[y], "predicted": labels[first_predicted]} if first_predicted is not None
                         else {"actual": [], "predicted": []})
    atomic.write_text(paths.confusion(dataset, run), table.to_csv(index=False))
    acc = mean.get("test_accuracy")
    print(f"evaluate {run}: test accuracy {'—' if acc is None else f'{acc:.4f}'} (mean of "
          f"{len(seeds) - diverged} seeds; {diverged} of {len(seeds)} diverged)"
          + ("" if first_predicted is None else f"; confusion table of seed {first_seed}"))


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise PipelineError("usage: python -m stages.evaluate <run>  (a run name from params.yaml)")
    evaluate(argv[0])


if __name__ == "__main__":
    run_main(main)
