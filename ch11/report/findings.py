"""The report's evidence and findings, computed once. Evidence: each run's per-seed results as the train and
evaluate stages wrote them (RunData), and the names, units and order the renderers (text.py, figures.py) show them
in. Findings: every effect of ch11/report/claims.yaml against its matched baseline and every claim of the write-up
judged, each comparison estimated and adjusted once (ch11/report/inference.py) and read off its adjusted CI
(ch11/report/verdicts.py), as a JSON-ready dict; stages/report.py writes its numbers to
metrics/<dataset>/effects.json (plain output; the DVC metrics are effects/<id>.json, dvc_metrics.py). numpy/pandas only, no files written."""
from __future__ import annotations

import json
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import pandas as pd

from ch11 import paths
from ch11.report import inference as inf, verdicts as v
from ch11.report.claims import Check, Claims, Comparison, Effect, Value, key_of
from ch11.report.stats import is_finite, per_seed_metrics, summarize

# A run's budget and checkpoint rule (and its seeds): what its configuration holds besides its technique
RULE_FIELDS = {"epochs", "early_stopping", "seeds"}
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


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


def by_reading(effects: list[dict]) -> list[dict]:
    """The effects in reading order (helps, no effect, hurts, unresolved, diverges), largest Δ first."""
    return sorted(effects, key=lambda r: (v.READINGS.index(r["reading"]),
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
    technique: str | None = None    # its configuration but RULE_FIELDS (JSON): equal for runs that differ in rule only

    @property
    def rule(self) -> str:
        """The budget and checkpoint rule, e.g. '≤ 100 ep., early stopping' or '30 ep., last weights'."""
        return (f"≤ {self.epochs} ep., early stopping" if self.patience else f"{self.epochs} ep., last weights")

    @property
    def rule_key(self) -> tuple:
        """The rule as (early stopping?, epochs, patience): equal for equal rules, fixed budgets sorted first."""
        return self.patience is not None, self.epochs, self.patience

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
            out[seed] = float(x) * scale if is_finite(x) else None
        return out

    def diverged(self) -> list[int]:
        return [s for s in self.seeds if self.evals[s].get("diverged")]

    def converged(self) -> tuple[int, int] | None:
        """(seeds whose history meets the early-stopping criterion, seeds with a history): the lowest
        validation loss at least `patience` epochs before the end (fixed budgets: FIXED_BUDGET_PATIENCE); None for
        a 1cycle run, whose schedule anneals to its last epoch by design."""
        if self.schedule == "onecycle":
            return None
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
                   config.schedule.name, json.dumps(technique(params, name), sort_keys=True))


def technique(params, name: str) -> dict:
    """The run's configuration but its rule (RULE_FIELDS); a transfer run's base model by the base's technique, so
    two transfer runs whose bases differ in rule only have the same technique."""
    config = params.run(name).model_dump(exclude=RULE_FIELDS)
    if config["transfer"]:
        config["transfer"]["base"] = technique(params, config["transfer"]["base"])
    return config


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


def slug(key: inf.Key) -> str:
    """A comparison's stable, filesystem-safe id, e.g. 'e04_elu-vs-baseline' or
    'e05_bn_after-vs-baseline.epoch1_val_accuracy'."""
    a, read, b, metric = key
    return (f"{a}{'.' + read if read != metric else ''}-vs-{b}"
            + ("" if metric == "test_accuracy" else f".{metric}"))


def scale_of(metric: str) -> float:
    return 100.0 if metric in PERCENT_METRICS or metric == "logged_gap" else 1.0


def numbers(key: inf.Key, est: inf.Estimate | None, adjusted: inf.Adjusted | None, delta: float) -> dict:
    """One comparison's numbers as every table shows them (None fields when it cannot be computed)."""
    out = {"id": slug(key), "ci_decimals": 2, **dict.fromkeys(("family", "diff", "ci_low", "ci_high", "ci_level", "n",
                                                                  "p", "p_adj", "model", "seeds_needed"))}
    if est is not None and adjusted is not None:
        out.update(family=adjusted.family, diff=round(est.diff, 4), ci_low=round(adjusted.ci_low, 4),
                   ci_high=round(adjusted.ci_high, 4), ci_level=round(adjusted.level, 5), n=est.n, p=est.p(),
                   p_adj=adjusted.p_adj, model="seed-blocked" if est.blocked else "Welch")
        out["ci_decimals"] = v.decimals_to_show(out["ci_low"], out["ci_high"], (0.0, delta, -delta))
        if abs(est.diff) >= delta and adjusted.ci_low <= 0 <= adjusted.ci_high:
            out["seeds_needed"] = inf.seeds_to_resolve(est, adjusted.level, est.diff)
    return out


def qualifiers(runs: dict[str, RunData], a: str, b: str, metric: str) -> dict:
    """What qualifies a comparison: the rule, whether every seed of both runs met the early-stopping criterion
    (None where it applies to neither: a metric read after epoch 1; a run whose schedule anneals to its last epoch
    by design is left out, its count n/a), the counts."""
    pair = distinct(runs[a], runs[b])
    counts = [r.converged() if metric != "epoch1_val_accuracy" else None for r in pair]
    judged = [c for c in counts if c is not None]
    return {"rule": runs[a].rule, "converged": all(k == n for k, n in judged) if judged else None,
            "converged_seeds": ", ".join("n/a" if c is None else f"{c[0]}/{c[1]}" for c in counts)}


def distinct(a: RunData, b: RunData) -> list[RunData]:
    return [a] if a is b else [a, b]


def percent(share: float) -> str:
    """A share in percent; near 0 and 1 with the decimals that keep "rarely" from reading "never" and
    "almost always" from reading "always"."""
    return f"{100 * share:.{2 if 0 < share < 0.01 else 1 if 0.99 < share < 1 else 0}f} %"


def notes_for(a: RunData, b: RunData) -> list[str]:
    """What the reader needs beside the numbers: diverged seeds, schedules or clipping that did not act."""
    notes = [f"`{run.name}` diverged in {len(run.diverged())} of {len(run.seeds)} seeds" for run in distinct(a, b)
             if run.diverged()]
    if a is not b and (same := a.identical_seeds(b)):
        notes.append(f"identical to `{b.name}` in {same} of {len(a.seeds)} seeds (the technique never acted there)")
    if share := a.clip_share():
        notes.append(f"clipping changed the gradient in {percent(share[0])} of steps (epoch 1: {percent(share[1])}, "
                     f"last epoch: {percent(share[2])}; mean over seeds)")
    if a.schedule == "plateau":
        notes.append(f"the plateau schedule lowered the LR in {a.lr_acted()} of {len(a.seeds)} seeds")
    return notes


def rules_note(a: RunData, b: RunData) -> list[str]:
    """The rule column shows a's rule; b's where it differs."""
    return [f"rules differ: `{b.name}` {b.rule}"] if a.rule != b.rule else []


def would_resolve(row: dict) -> str:
    """'~17 seeds would resolve it with 80 % power' for an unresolved row with ``seeds_needed``."""
    return f"~{row['seeds_needed']} seeds would resolve it with {100 * inf.RESOLVE_POWER:.0f} % power"


def effect_row(item: Effect, runs: dict[str, RunData], shared: dict, delta: float) -> dict:
    a, b = runs[item.a], runs[item.b]
    row = {"exp": item.exp, "label": item.label, "a": item.a, "b": item.b, "metric": item.metric,
           "a_metric": item.a_metric, "claim": item.claim, "notes": notes_for(a, b) + rules_note(a, b),
           **qualifiers(runs, item.a, item.b, item.metric), **shared}
    if row["seeds_needed"]:
        row["notes"].append(f"{would_resolve(row)} at this spread, were Δ as estimated")
    if len(a.diverged()) * 2 >= len(a.seeds) > 0 and not b.diverged():
        row["reading"] = v.DIVERGES
    elif row["diff"] is None:
        row["reading"] = v.NOT_TESTED
    else:
        row["reading"] = v.effect_reading(row["ci_low"], row["ci_high"], delta)
    return row


def value_row(item: Value, runs: dict[str, RunData], label: str) -> dict:
    run = runs[item.run]
    vals = list(run.values(item.metric, SCALE[item.unit]).values())
    interval = v.prediction_interval(vals)
    row = {"run": item.run, "label": label, "metric": item.metric, "unit": item.unit, "claimed": item.value,
           "tolerance": item.tolerance, "note": item.note, "ours": run.describe(item.metric, item.unit),
           "interval": list(interval) if interval else None}
    why = not_lr_tested(item.requires_lr_change, runs) if item.compare else item.note or "shown, not tested"
    return {**row, "verdict": v.NOT_TESTED if why else v.value_verdict(interval, item.value, item.tolerance), "why": why}


def not_lr_tested(run: str | None, runs: dict[str, RunData]) -> str:
    if run and run in runs and not runs[run].lr_acted():
        return (f"`{run}`'s schedule never changed the learning rate in any seed, so it ran as constant LR: "
                "the claim about the schedule is untested, not null")
    return ""


def comparison_row(item: Comparison, why: str, runs: dict[str, RunData], labels: dict[str, str],
                   shared: dict, delta: float) -> dict:
    """A claim of the write-up judged; one the data cannot test (``why``) shows its numbers without a p-value."""
    row = {"claim": f"{labels[item.a]} − {labels[item.b]}", "a": item.a, "b": item.b, "metric": item.metric,
           "sign": item.sign, "size": item.size, "note": item.note, "why": why,
           "notes": rules_note(runs[item.a], runs[item.b]), **qualifiers(runs, item.a, item.b, item.metric), **shared}
    if item.size is not None and abs(item.size) < delta:
        row["notes"].append(f"the claimed size is itself inside ±{delta:g}: no CI can refute it as a meaningful effect")
    if item.size is not None and row["diff"] is not None:
        edges = (0.0, delta, -delta, item.size, -item.size)
        row["ci_decimals"] = v.decimals_to_show(row["ci_low"], row["ci_high"], edges)
    if why:
        row.update(p=None, p_adj=None)
    row["verdict"] = v.NOT_TESTED if why or row["diff"] is None else v.claim_verdict(
        row["ci_low"], row["ci_high"], 1 if item.sign == "+" else -1, item.size, delta)
    return row


def check_row(item: Check, runs: dict[str, RunData]) -> dict:
    run = runs[item.run]
    passed, detail = [], ""
    if item.kind == "variance_ratio":
        per_seed = [[x["weight_var"] / x["theory_var"] for x in rows if x.get("weight_var") is not None]
                    for rows in layer_rows(run).values()]
        passed = [all(abs(x - 1) <= item.tolerance for x in r) for r in per_seed]
        if ratios := sum(per_seed, []):
            detail = f"variance / theory {min(ratios):.3f}–{max(ratios):.3f} over every layer"
    elif item.kind == "activation_stability":
        # rows[:-1]: the hidden layers (the last row is the output layer)
        hidden = [[x.get("activation_std") for x in rows[:-1]] for rows in layer_rows(run).values()]
        ratios = [h[-1] / h[0] for h in hidden if len(h) >= 2 and h[0] and h[-1] is not None]
        passed = [item.bounds[0] <= r <= item.bounds[1] for r in ratios]
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
    return {"run": item.run, "claim": item.text, "claimed": item.claimed,
            "ours": f"{detail}; holds in {sum(passed)} of {len(passed)} seeds" if passed else detail or "no data",
            "verdict": v.check_verdict(passed)}


def rule_pairs(effects: list[dict], runs: dict[str, RunData], delta: float) -> list[dict]:
    """Each final-accuracy effect measured under two budget and checkpoint rules (the same technique against the
    same baseline, their runs' configurations equal but for RULE_FIELDS): how much the effect changes, Δ under the
    first rule (a fixed budget first) − Δ under the second, estimated seed by seed (inference.paired_mean) and
    adjusted over every pair that can be estimated (Bonferroni), whatever their readings; a pair with a row that
    diverges or is not tested is not tested."""
    groups: dict[tuple, dict[str, dict]] = {}
    for r in effects:
        a, b = runs[r["a"]], runs[r["b"]]
        if r["metric"] == "test_accuracy" and a.technique and b.technique:
            groups.setdefault((a.technique, r["a_metric"], b.technique), {})[r["id"]] = r
    rule = lambda r: (runs[r["a"]].rule_key, runs[r["b"]].rule_key)  # noqa: E731
    pairs = [(x, y) for rows in groups.values() for x, y in combinations(sorted(rows.values(), key=rule), 2)
             if rule(x) != rule(y)]
    changes = {}
    for i, (x, y) in enumerate(pairs):
        if {x["reading"], y["reading"]}.isdisjoint({v.DIVERGES, v.NOT_TESTED}):
            dx, dy = per_seed_effect(x, runs), per_seed_effect(y, runs)
            changes[i] = inf.paired_mean([dx[s] - dy[s] for s in sorted(dx.keys() & dy.keys())])
    adjusted = inf.adjust({i: e for i, e in changes.items() if e}, inf.RULE_PAIRS)
    out = []
    for i, (x, y) in enumerate(pairs):
        row = {"label": min(x["label"], y["label"], key=len), "first": x, "second": y, "diff": None,
               "reading": v.NOT_TESTED, "n": None, "p_adj": None,
               "notes": [*rules_note(runs[x["a"]], runs[x["b"]]), *rules_note(runs[y["a"]], runs[y["b"]])]}
        if adj := adjusted.get(i):
            low, high = round(adj.ci_low, 4), round(adj.ci_high, 4)
            row.update(diff=round(changes[i].diff, 4), ci_low=low, ci_high=high, ci_level=round(adj.level, 5),
                       n=changes[i].n, p_adj=adj.p_adj, reading=v.rule_reading(low, high, delta),
                       ci_decimals=v.decimals_to_show(low, high, (0.0, delta, -delta)))
        out.append(row)
    return out


def per_seed_effect(row: dict, runs: dict[str, RunData]) -> dict[int, float]:
    """An effect row's a − b in its display units, seed -> value, over the seeds where both sides have one."""
    scale = scale_of(row["metric"])
    a = runs[row["a"]].values(row["a_metric"] or row["metric"], scale)
    b = runs[row["b"]].values(row["metric"], scale)
    return {s: a[s] - b[s] for s in a if a[s] is not None and b.get(s) is not None}


def design(claims: Claims, dataset: str, runs: dict[str, RunData]):
    """The comparisons the report makes: the write-up's claims (exp, item, why untested), the effects, every
    comparison once (key -> the experiment whose model estimates it: a claim's, else its first effect's), and
    the two families (confirmatory: the claims the data can test; exploratory: the other effects)."""
    experiments = claims.of(dataset)
    claimed = [(number, item, not_lr_tested(item.requires_lr_change, runs)) for number, exp in experiments.items()
               for item in exp.comparisons if {item.a, item.b} <= runs.keys()]
    effects = [item for item in claims.effects if item.exp in experiments and {item.a, item.b} <= runs.keys()]
    keys = {k: e for k, e in reversed([(key_of(i), n) for n, i, _ in claimed] + [(key_of(i), i.exp) for i in effects])}
    confirmatory = {key_of(i) for _, i, why in claimed if not why}
    return claimed, effects, keys, confirmatory, {key_of(i) for i in effects} - confirmatory


def findings(claims: Claims, dataset: str, runs: dict[str, RunData], hosts: list[dict]) -> dict:
    """Everything the report states, as numbers and verdicts (module docstring). Each comparison is estimated once
    and belongs to one family: confirmatory when it is a claim of the write-up that the data can test, else
    exploratory; every table that shows it shows the same numbers."""
    experiments, delta = claims.of(dataset), claims.delta
    claimed, effects, keys, confirmatory, exploratory = design(claims, dataset, runs)
    judged = inf.infer(keys, confirmatory, exploratory,
                       lambda run, read, metric: runs[run].values(read, scale_of(metric)))
    shared = {k: numbers(k, *judged[k], delta) for k in keys}
    effect_rows = [effect_row(item, runs, shared[key_of(item)], delta) for item in effects]
    return {"delta": delta, "alpha": inf.ALPHA, "host_checks": hosts,
            "families": {f: sum(1 for _, a in judged.values() if a and a.family == f)
                         for f in (inf.CONFIRMATORY, inf.EXPLORATORY)},
            "effects": effect_rows, "rule_pairs": rule_pairs(effect_rows, runs, delta),
            "comparisons": [{"exp": number, **comparison_row(item, why, runs, experiments[number].runs,
                                                             shared[key_of(item)], delta)}
                            for number, item, why in claimed],
            "values": [{"exp": number, **value_row(i, runs, exp.runs[i.run])}
                       for number, exp in experiments.items() for i in exp.values if i.run in runs],
            "checks": [{"exp": number, **check_row(i, runs)}
                       for number, exp in experiments.items() for i in exp.checks if i.run in runs]}
