"""One run's per-seed results as the report reads them (eval metrics, histories, probes, timing), and how both
renderers (the markdown, the figures) format them and order the effects. numpy/pandas only, no files written."""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ch11 import paths
from ch11.report import verdicts as v
from ch11.report.stats import finite, per_seed_metrics, summarize

# Patience of the early-stopping criterion applied to fixed-budget runs when judging convergence
FIXED_BUDGET_PATIENCE = 15

PERCENT_METRICS = {"test_accuracy", "best_val_accuracy", "epoch1_val_accuracy", "mc_test_accuracy"}
METRIC_NAMES = {"test_accuracy": "test accuracy", "best_val_accuracy": "best validation accuracy",
                "epoch1_val_accuracy": "validation accuracy after epoch 1",
                "mc_test_accuracy": "MC-dropout test accuracy",
                "overfit_gap": "overfitting gap in inference mode (train − validation accuracy at the best epoch)",
                "logged_gap": "overfitting gap (the write-up's: logged train − validation accuracy, last epoch)",
                "epochs": "epochs trained", "best_epoch": "best epoch", "train_time_s": "training time"}
SCALE = {"percent": 100.0, "points": 100.0, "epochs": 1.0, "minutes": 1 / 60}
SUFFIX = {"percent": " %", "points": " pts", "epochs": " epochs", "minutes": " min"}
DECIMALS = {"percent": 2, "points": 2, "epochs": 1, "minutes": 2}
READING_ORDER = v.READINGS + (v.NOT_TESTED,)


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def interval(row: dict, decimals: int = 2) -> str:
    """A difference and its CI, '+1.23 [+0.50, +1.96]'."""
    if row["diff"] is None:
        return "—"
    return f"{row['diff']:+.{decimals}f} [{row['ci_low']:+.{decimals}f}, {row['ci_high']:+.{decimals}f}]"


def metric_suffix(row: dict) -> str:
    metric = row.get("a_metric") or row["metric"]
    return "" if metric in ("test_accuracy", "mc_test_accuracy") else f" — {metric_name(row['metric'])}"


def by_reading(effects: list[dict]) -> list[dict]:
    """The effects in reading order (helps, no effect, hurts, unresolved, diverges), largest Δ first."""
    return sorted(effects, key=lambda r: (READING_ORDER.index(r["reading"]),
                                          -(r["diff"] if r["diff"] is not None else 0)))


@dataclass
class RunData:
    """One run's per-seed files (a diverged seed has no accuracy in ``evals``)."""
    name: str
    seeds: list[int]
    evals: dict[int, dict]
    histories: dict[int, pd.DataFrame]
    infos: dict[int, dict]
    timing: dict[int, dict]
    epochs: int = 0                 # the budget in epochs (after params.yaml's limits)
    patience: int | None = None     # early stopping's patience; None: a fixed budget, last weights
    schedule: str = "constant"      # the learning-rate schedule's name

    @property
    def rule(self) -> str:
        """The budget and checkpoint rule, e.g. '≤ 100 ep., early stopping' or '30 ep., last weights'."""
        return (f"≤ {self.epochs} ep., early stopping" if self.patience else f"{self.epochs} ep., last weights")

    def values(self, metric: str, scale: float = 1.0) -> dict[int, float | None]:
        """seed -> the metric (None: no finite value). ``logged_gap``: the write-up's overfitting gap, Keras'
        logged training accuracy minus validation accuracy at the last epoch trained."""
        out = {}
        for seed in self.seeds:
            if metric == "logged_gap":
                h = self.histories.get(seed)
                x = None if h is None or self.evals[seed].get("diverged") else \
                    h["accuracy"].iloc[-1] - h["val_accuracy"].iloc[-1]
            else:
                x = (self.timing if metric == "train_time_s" else self.evals).get(seed, {}).get(metric)
            out[seed] = float(x) * scale if finite([x]) else None
        return out

    def diverged(self) -> list[int]:
        return [s for s in self.seeds if self.evals[s].get("diverged")]

    def converged(self) -> tuple[int, int]:
        """(seeds whose history meets the early-stopping criterion, seeds with a history): the lowest
        validation loss at least `patience` epochs before the end (fixed budgets: FIXED_BUDGET_PATIENCE)."""
        patience = self.patience or FIXED_BUDGET_PATIENCE
        trained = [h for s, h in self.histories.items() if s not in self.diverged()]
        return sum(v.stopped_early(h["val_loss"].tolist(), patience) for h in trained), len(trained)

    def lr_acted(self) -> int:
        """Seeds whose logged learning rate changed at least once."""
        return sum(v.lr_changed(h["learning_rate"].tolist()) for h in self.histories.values())

    def identical_seeds(self, other: "RunData") -> int:
        """Seeds whose per-epoch history is identical to ``other``'s in ``other``'s columns (e.g. a schedule or
        clipping that never acted)."""
        return sum(s in other.histories and set(other.histories[s]) <= set(h)
                   and h[list(other.histories[s])].equals(other.histories[s]) for s, h in self.histories.items())

    def clip_share(self) -> tuple[float, float, float] | None:
        """Share of training steps in which clipping changed the gradient (mean over seeds): overall, in the
        first epoch and in the last; None for a run without clipping."""
        shares = [h["clip_share"].to_numpy() for h in self.histories.values() if "clip_share" in h]
        if not shares:
            return None
        return (float(np.mean([s.mean() for s in shares])), float(np.mean([s[0] for s in shares])),
                float(np.mean([s[-1] for s in shares])))

    def describe(self, metric: str, unit: str) -> str:
        """'mean ± std unit (n=k of N, d diverged)'."""
        s = summarize(list(self.values(metric, SCALE[unit]).values()))
        if not s["n"]:
            return f"— (no value; {len(self.diverged())} of {len(self.seeds)} seeds diverged)"
        std = f" ± {s['std']:.{DECIMALS[unit]}f}" if s["std"] is not None else ""
        n = f"n={s['n']}" + (f" of {len(self.seeds)}" if s["n"] < len(self.seeds) else "")
        div = f", {len(self.diverged())} diverged" if self.diverged() else ""
        return f"{s['mean']:.{DECIMALS[unit]}f}{std}{SUFFIX[unit]} ({n}{div})"


def load_run(params, dataset: str, name: str) -> RunData:
    seeds = params.seeds_of(name)
    evals = per_seed_metrics(params, dataset, name)
    histories = {s: pd.read_csv(path) for s in seeds if (path := paths.history(dataset, name, s)).exists()}
    infos = {s: json.loads(path.read_text()) for s in seeds if (path := paths.train_info(dataset, name, s)).exists()}
    timing_path = paths.timing(dataset, name)
    timing = {int(k): t for k, t in json.loads(timing_path.read_text()).items()} if timing_path.exists() else {}
    config = params.run(name)
    return RunData(name, seeds, evals, histories, infos, timing, config.epochs, config.early_stopping.patience,
                   config.schedule.name)


def layer_rows(run: RunData, stage: str = "layers_at_init") -> dict[int, list[dict]]:
    return {s: info[stage] for s, info in run.infos.items() if info.get(stage)}


def per_epoch(run: RunData, column: str, scale: float = 100.0) -> dict | None:
    """Mean and std over the seeds with a finite value, per (1-based) epoch, and how many seeds that is."""
    series = [h[column].to_numpy(dtype=float) * scale for h in run.histories.values() if column in h]
    if not series:
        return None
    stats = [summarize(epoch) for epoch in pd.DataFrame(series).to_numpy(dtype=float).T]  # NaN past a history's end
    counts = [s["n"] for s in stats]
    return {"epochs": np.arange(1, len(stats) + 1), "mean": np.array([s["mean"] for s in stats], dtype=float),
            "std": np.array([s["std"] for s in stats], dtype=float), "counts": counts, "n_note": n_note(counts)}


def n_note(counts: list[int]) -> str:
    """'n=5', or how the number of seeds behind the mean falls: 'n=5→1, from epoch 22'."""
    changes = [i for i in range(1, len(counts)) if counts[i] != counts[i - 1]]
    return f"n={counts[0]}" + (f"→{counts[-1]}, from epoch {changes[0] + 1}" if changes else "")
