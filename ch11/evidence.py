"""From per-seed results to judged claims: each claim item of ch11/claims.yaml becomes a Row with our
numbers, its interval and its verdict (rules: ch11/verdicts.py). numpy/pandas/scipy only, no files written."""
from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ch11 import paths, verdicts as v
from ch11.claims import Check, Claims, Comparison, Value
from ch11.results import per_seed_metrics
from ch11.stats import summarize

PERCENT_METRICS = {"test_accuracy", "best_val_accuracy", "epoch1_val_accuracy", "mc_test_accuracy"}
METRIC_NAMES = {"test_accuracy": "test accuracy", "best_val_accuracy": "best validation accuracy",
                "epoch1_val_accuracy": "validation accuracy after epoch 1",
                "mc_test_accuracy": "MC-dropout test accuracy",
                "overfit_gap": "overfitting gap (train − validation accuracy at the best epoch)",
                "epochs": "epochs trained", "best_epoch": "best epoch", "train_time_s": "training time"}
SCALE = {"percent": 100.0, "points": 100.0, "epochs": 1.0, "minutes": 1 / 60}
SUFFIX = {"percent": " %", "points": " pts", "epochs": " epochs", "minutes": " min"}
DECIMALS = {"percent": 2, "points": 2, "epochs": 1, "minutes": 2}


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def unit_of(metric: str) -> str:
    """Display unit of a metric's values; differences of percentages are in points."""
    if metric in PERCENT_METRICS:
        return "percent"
    return {"overfit_gap": "points", "train_time_s": "minutes"}.get(metric, "epochs")


def fmt(x: float | None, unit: str, sign: bool = False) -> str:
    return "—" if x is None else f"{x:{'+' if sign else ''}.{DECIMALS[unit]}f}{SUFFIX[unit]}"


@dataclass
class RunData:
    """One run's per-seed files (a diverged seed has no accuracy in ``evals``)."""
    name: str
    seeds: list[int]
    evals: dict[int, dict]
    histories: dict[int, pd.DataFrame]
    infos: dict[int, dict]
    timing: dict[int, dict]
    budget: str = ""     # e.g. "30 epochs" or "≤ 100 epochs, early stopping (patience 15)"
    max_epochs: int = 0  # the budget in epochs (after params.yaml's limits)

    def values(self, metric: str, scale: float = 1.0) -> dict[int, float | None]:
        source = self.timing if metric == "train_time_s" else self.evals
        out = {}
        for seed in self.seeds:
            x = source.get(seed, {}).get(metric)
            out[seed] = float(x) * scale if x is not None and math.isfinite(float(x)) else None
        return out

    def diverged(self) -> list[int]:
        return [s for s in self.seeds if self.evals[s].get("diverged")]

    def still_improving(self) -> str:
        """A warning when the seeds that trained the whole budget (early stopping, if any, never fired)
        had their best validation epoch in its last tenth, on average: the run had not converged, so its
        numbers may be budget-limited."""
        epochs, best = self.values("epochs"), self.values("best_epoch")
        full = [best[s] for s in self.seeds if best[s] is not None and (epochs[s] or 0) >= self.max_epochs]
        if not full or np.mean(full) < 0.9 * self.max_epochs:
            return ""
        some = f", {len(full)} of {len(self.seeds)} seeds used the whole budget" if len(full) < len(self.seeds) else ""
        return f"`{self.name}` (best epoch {np.mean(full):.1f} of {self.max_epochs}{some})"

    def lr_changed(self) -> bool:
        return any(v.lr_changed(h["learning_rate"].tolist()) for h in self.histories.values())

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
    histories, infos = {}, {}
    for seed in seeds:
        if paths.history(dataset, name, seed).exists():
            histories[seed] = pd.read_csv(paths.history(dataset, name, seed))
        if paths.train_info(dataset, name, seed).exists():
            infos[seed] = json.loads(paths.train_info(dataset, name, seed).read_text())
    timing_path = paths.timing(dataset, name)
    timing = {int(k): t for k, t in json.loads(timing_path.read_text()).items()} if timing_path.exists() else {}
    config = params.run(name)
    patience = config.early_stopping.patience
    budget = (f"≤ {config.epochs} epochs, early stopping (patience {patience})" if patience
              else f"{config.epochs} epochs")
    return RunData(name, seeds, evals, histories, infos, timing, budget, config.epochs)


@dataclass
class Row:
    """One claim item, judged."""
    kind: str                      # value | comparison | check
    claim: str
    reported: str
    ours: str
    interval: str = "—"
    verdict: str = v.NOT_TESTED
    why: str = ""
    claimed: bool = True
    diff: v.Difference | None = None
    p: float | None = None
    p_holm: float | None = None
    item: Value | Comparison | Check | None = None
    alternatives: dict[str, float] | None = None  # other verdicts on another host (ch11/robustness.py)


def not_lr_tested(item, runs: dict[str, RunData]) -> str:
    run = item.requires_lr_change
    if run and run in runs and not runs[run].lr_changed():
        return (f"`{run}`'s schedule never changed the learning rate in any seed, so it ran as constant LR: "
                "the claim about the schedule is untested, not null")
    return ""


def value_row(item: Value, runs: dict[str, RunData], label: str) -> Row:
    run = runs[item.run]
    vals = list(run.values(item.metric, SCALE[item.unit]).values())
    tolerance = f" ± {item.tolerance:g}" if item.tolerance else ""
    row = Row("value", f"{label} — {metric_name(item.metric)}", fmt(item.value, item.unit) + tolerance
              + (f" ({item.note})" if item.note else ""), run.describe(item.metric, item.unit), item=item)
    interval = v.prediction_interval(vals)
    if interval:
        row.interval = f"one more run: [{interval[0]:.{DECIMALS[item.unit]}f}, {interval[1]:.{DECIMALS[item.unit]}f}]"
    row.why = not_lr_tested(item, runs)
    if not item.compare:
        row.why = item.note or "shown, not tested"
    elif not row.why:
        row.verdict = v.value_verdict(vals, item.value, item.tolerance)
        if row.verdict == v.NOT_TESTED:
            row.why = "fewer than 2 seeds with a value"
    return row


def comparison_row(item: Comparison, runs: dict[str, RunData], labels: dict[str, str]) -> Row:
    a, b = runs[item.a], runs[item.b]
    scale = SCALE["points"] if item.metric in PERCENT_METRICS else 1.0
    diff_unit = "points" if item.metric in PERCENT_METRICS else unit_of(item.metric)
    d = v.compare(a.values(item.metric, scale), b.values(item.metric, scale))
    sign = 1 if item.sign == "+" else -1
    claimed = (fmt(item.size, diff_unit, sign=True) if item.size is not None
               else f"{labels[item.a]} {'>' if sign > 0 else '<'} {labels[item.b]}")
    row = Row("comparison", f"{labels[item.a]} − {labels[item.b]} — {metric_name(item.metric)}",
              claimed + (f" ({item.note})" if item.note else ""), "—", diff=d, item=item)
    if d is not None:
        lo, hi = d.ci()
        row.ours = (f"{fmt(d.diff, diff_unit, sign=True)} ({'paired' if d.paired else 'Welch'}, "
                    f"n={d.n_a}" + ("" if d.paired else f"/{d.n_b}") + ")")
        row.interval = f"95 % CI [{lo:+.{DECIMALS[diff_unit]}f}, {hi:+.{DECIMALS[diff_unit]}f}]"
        row.p = d.p()
    row.why = not_lr_tested(item, runs) or ("" if d else "fewer than 2 seeds with a value on a side")
    if row.why:
        row.p = None
    return row


def judge_comparison(row: Row, delta: float) -> None:
    """Verdict of a comparison row once its Holm-adjusted p-value is known."""
    item, d = row.item, row.diff
    if row.why:
        return
    margin = item.delta or delta
    row.verdict = v.comparison_verdict(d, 1 if item.sign == "+" else -1, item.size, row.p_holm, margin)
    unit = " pts" if item.metric in PERCENT_METRICS else ""
    if row.verdict == v.INCONCLUSIVE:
        row.why = f"detectable at 80 % power: ≥ {d.mde():.2f}{unit}"
    elif row.verdict == v.EQUIVALENT:
        row.why = f"within ±{margin:g}{unit} (TOST p = {d.tost_p(margin):.3f})"
    elif row.verdict == v.SIZE_DIFFERS:
        row.why = f"claimed size {item.size:+g}{unit} outside our CI"


def layer_rows(run: RunData, stage: str = "layers_at_init") -> dict[int, list[dict]]:
    return {s: info[stage] for s, info in run.infos.items() if info.get(stage)}


def check_row(item: Check, runs: dict[str, RunData]) -> Row:
    run = runs[item.run]
    passed, detail = [], ""
    if item.kind == "variance_ratio":
        ratios = []
        for rows in layer_rows(run).values():
            r = [x["weight_var"] / x["theory_var"] for x in rows if x.get("weight_var") is not None]
            ratios += r
            passed.append(all(abs(x - 1) <= item.tolerance for x in r))
        if ratios:
            detail = f"variance / theory {min(ratios):.3f}–{max(ratios):.3f} over every layer"
    elif item.kind == "activation_stability":
        ratios = []
        for rows in layer_rows(run).values():
            hidden = [x.get("activation_std") for x in rows[:-1]]  # the last row is the output layer
            if len(hidden) >= 2 and hidden[0] and hidden[-1] is not None:
                ratios.append(hidden[-1] / hidden[0])
                passed.append(item.bounds[0] <= ratios[-1] <= item.bounds[1])
        if ratios:
            detail = f"std(last hidden) / std(first hidden) {min(ratios):.2f}–{max(ratios):.2f}"
    elif item.kind == "no_learning":
        best = run.values("best_val_accuracy", 100.0)
        passed = [best[s] is None or best[s] <= item.threshold for s in run.seeds]
        trained = [f"{best[s]:.1f} %" for s in run.seeds if best[s] is not None]
        detail = (f"{len(run.diverged())} of {len(run.seeds)} diverged; best validation accuracy of the others: "
                  + (", ".join(trained) or "—"))
    else:  # at_least / at_most over the seeds that did not diverge
        vals = [x for x in run.values(item.metric, 100.0).values() if x is not None]
        passed = [x >= item.threshold if item.kind == "at_least" else x <= item.threshold for x in vals]
        if vals:
            detail = f"{metric_name(item.metric)} {min(vals):.2f}–{max(vals):.2f} %"
        if run.diverged():
            detail += f" ({len(run.diverged())} of {len(run.seeds)} seeds diverged: not counted)"
    row = Row("check", item.text, "qualitative" if item.claimed else "not claimed",
              f"{detail}; holds in {sum(passed)} of {len(passed)} seeds" if passed else detail or "no data",
              verdict=v.check_verdict(passed), claimed=item.claimed, item=item)
    if row.verdict == v.NOT_TESTED:
        row.why = "fewer than 2 seeds to check"
    return row


def add_budget_warnings(row: Row, runs: dict[str, RunData]) -> None:
    """Say beside a verdict when a run it rests on had not converged within its budget."""
    names = [row.item.a, row.item.b] if row.kind == "comparison" else [row.item.run]
    warnings = [w for n in dict.fromkeys(names) if (w := runs[n].still_improving())]
    if warnings and row.verdict != v.NOT_TESTED:
        note = "not converged in its budget: " + ", ".join(warnings)
        row.why = f"{row.why}; {note}" if row.why else note


def judge(claims: Claims, dataset: str, runs: dict[str, RunData]) -> dict[int, list[Row]]:
    """Every claim item of ``dataset``'s experiments, judged; Holm over all comparisons of the report."""
    rows: dict[int, list[Row]] = {}
    for number, exp in claims.of(dataset).items():
        present = lambda *names: all(n in runs for n in names)  # noqa: E731
        rows[number] = ([value_row(i, runs, exp.runs[i.run]) for i in exp.values if present(i.run)]
                        + [comparison_row(i, runs, exp.runs) for i in exp.comparisons if present(i.a, i.b)]
                        + [check_row(i, runs) for i in exp.checks if present(i.run)])
    tested = [r for rs in rows.values() for r in rs if r.kind == "comparison"]
    for row, p in zip(tested, v.holm([r.p for r in tested])):
        row.p_holm = p
        judge_comparison(row, claims.delta)
    for row in (r for rs in rows.values() for r in rs if r.kind != "check"):
        add_budget_warnings(row, runs)
    return rows


def per_epoch(run: RunData, column: str, scale: float = 100.0) -> dict | None:
    """Mean and std over the seeds with a finite value, per (1-based) epoch, and how many seeds that is."""
    series = [h[column].to_numpy(dtype=float) * scale for h in run.histories.values() if column in h]
    if not series:
        return None
    longest = max(len(s) for s in series)
    mean, std, counts = [], [], []
    for i in range(longest):
        stat = summarize([s[i] for s in series if len(s) > i])
        counts.append(stat["n"])
        mean.append(math.nan if stat["mean"] is None else stat["mean"])
        std.append(math.nan if stat["std"] is None else stat["std"])
    return {"epochs": np.arange(1, longest + 1), "mean": np.asarray(mean), "std": np.asarray(std),
            "counts": counts, "n_note": n_note(counts)}


def n_note(counts: list[int]) -> str:
    """'n=5', or how the number of seeds behind the mean changes: 'n=5 at epoch 1, 1 from epoch 3'."""
    if len(set(counts)) == 1:
        return f"n={counts[0]}"
    parts = [f"n={counts[0]} at epoch 1"]
    for i in range(1, len(counts)):
        if counts[i] != counts[i - 1]:
            parts.append(f"{counts[i]} from epoch {i + 1}")
    return ", ".join(parts[:4]) + (", …" if len(parts) > 4 else "")
