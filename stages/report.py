"""Stage report@<dataset>: the seed's claims beside our measured numbers -> reports/<dataset>/.

Usage: python -m stages.report <dataset>
Writes reports/<dataset>/results.md and reports/<dataset>/figures/*.png, atomically (the folder appears
complete or not at all). Reads ch11/claims.yaml and, for every run of params.yaml on this dataset and every
seed params.yaml lists (never fewer, never stale files of removed seeds): metrics/<dataset>/eval,
history, train and confusion files. No TensorFlow: numpy, pandas, scipy and matplotlib only.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

import ch11
from ch11 import atomic, figures, paths, params as params_mod, stats
from ch11.errors import PipelineError, run_main
from ch11.results import per_seed_metrics, runs_of

CLAIMS_PATH = Path(ch11.__file__).resolve().parent / "claims.yaml"
CLASS_NAMES = {
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
DATASET_TITLES = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
CONFUSION_RUNS = {13: "e13_production", 14: "e14_cifar_mlp"}  # the production model of each dataset
LAYER_EXPERIMENTS = (1, 3)        # gradient norm / activation std per layer, poor vs He
VARIANCE_EXPERIMENTS = (2,)       # empirical weight variance vs theory
SCHEDULE_EXPERIMENTS = (9,)       # learning rate per epoch from the history
ACTIVATION_FIGURE = {"fashion_mnist": 4, "cifar10": 15}  # section that shows the activation shapes

METRIC_NAMES = {"test_accuracy": "test accuracy", "best_val_accuracy": "best validation accuracy",
                "epoch1_val_accuracy": "validation accuracy after epoch 1",
                "mc_test_accuracy": "MC-dropout test accuracy",
                "overfit_gap": "overfitting gap (train − validation accuracy at the best epoch)",
                "epochs": "epochs trained", "best_epoch": "best epoch", "train_time_s": "training time"}
PERCENT_METRICS = {"test_accuracy", "best_val_accuracy", "epoch1_val_accuracy", "mc_test_accuracy"}
UNIT_SCALE = {"percent": 100.0, "points": 100.0, "epochs": 1.0, "minutes": 1 / 60, "seconds": 1.0}
UNIT_SUFFIX = {"percent": " %", "points": " pts", "epochs": " epochs", "minutes": " min", "seconds": " s"}
UNIT_DECIMALS = {"percent": 2, "points": 2, "epochs": 1, "minutes": 2, "seconds": 1}
VERDICTS = (stats.CONFIRMED, stats.WITHIN_NOISE, stats.CONTRADICTED, stats.UNDETERMINED)
NOT_TESTED = "not tested"


# ---------------------------------------------------------------------------------------------- data


@dataclass
class RunData:
    """One run's per-seed files, in the order of params.yaml's seeds (None where a file is absent)."""
    name: str
    label: str
    experiment: int
    seeds: list[int]
    evals: list[dict]
    histories: list[pd.DataFrame | None]
    trains: list[dict | None]

    def values(self, metric: str, scale: float = 1.0) -> list[float | None]:
        """The metric per seed (None where missing or not finite), times ``scale``."""
        out = []
        for ev in self.evals:
            v = ev.get(metric)
            out.append(float(v) * scale if v is not None and math.isfinite(float(v)) else None)
        return out


def load_runs(params, dataset: str) -> dict[str, RunData]:
    runs = {}
    for name in runs_of(params, dataset):
        config = params.run(name)
        histories, trains = [], []
        for seed in params.seeds:
            hist = paths.history(dataset, name, seed)
            histories.append(pd.read_csv(hist) if hist.exists() else None)
            info = paths.train_info(dataset, name, seed)
            trains.append(json.loads(info.read_text()) if info.exists() else None)
        runs[name] = RunData(name, config.label, config.experiment, list(params.seeds),
                             per_seed_metrics(params, dataset, name), histories, trains)
    return runs


def load_claims(path: Path = CLAIMS_PATH) -> dict[int, dict]:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineError(f"cannot read the seed's claims from {path}: {exc}") from exc
    experiments = (raw or {}).get("experiments")
    if not isinstance(experiments, dict):
        raise PipelineError(f"{path}: top-level key 'experiments' (a mapping number -> experiment) missing.")
    for number, exp in experiments.items():
        for key in ("title", "dataset", "claim"):
            if key not in exp:
                raise PipelineError(f"{path}: experiments.{number} has no '{key}'.")
        if exp["dataset"] not in params_mod.DATASETS:
            raise PipelineError(f"{path}: experiments.{number}.dataset is {exp['dataset']!r}; expected one of "
                                f"{', '.join(params_mod.DATASETS)}.")
        for i, item in enumerate(exp.get("comparisons", [])):
            if item.get("sign") not in ("+", "-"):
                raise PipelineError(f"{path}: experiments.{number}.comparisons[{i}].sign must be '+' or '-'.")
        for i, item in enumerate(exp.get("values", [])):
            if item.get("unit", "percent") not in UNIT_SCALE:
                raise PipelineError(f"{path}: experiments.{number}.values[{i}].unit must be one of "
                                    f"{', '.join(UNIT_SCALE)}.")
    return {int(k): v for k, v in experiments.items()}


# ----------------------------------------------------------------------------------------- formatting


def fmt_p(p: float | None) -> str:
    if p is None:
        return "—"
    if p == 0:
        return "0 (zero seed-to-seed variance)"
    return f"{p:.1e}" if p < 0.001 else f"{p:.3f}"


def fmt_num(x: float | None, unit: str) -> str:
    return "—" if x is None else f"{x:.{UNIT_DECIMALS[unit]}f}"


def fmt_ms(s: dict, unit: str, with_n: bool = True, total: int | None = None) -> str:
    """'mean ± std unit (n=k)'; n shows 'k of N' when some seeds have no finite value."""
    if not s["n"]:
        return "— (no finite value)"
    std = f" ± {fmt_num(s['std'], unit)}" if s["std"] is not None else ""  # one seed: no std
    n = f"n={s['n']}" if total is None or total == s["n"] else f"n={s['n']} of {total}"
    text = f"{fmt_num(s['mean'], unit)}{std}{UNIT_SUFFIX[unit]}"
    return f"{text} ({n})" if with_n else text


def fmt_verdict(verdict: str) -> str:
    return f"**{verdict}**" if verdict in (stats.CONFIRMED, stats.WITHIN_NOISE, stats.CONTRADICTED) else verdict


def default_unit(metric: str) -> str:
    if metric in PERCENT_METRICS:
        return "percent"
    return {"overfit_gap": "points", "epochs": "epochs", "best_epoch": "epochs",
            "train_time_s": "seconds"}.get(metric, "seconds")


def metric_name(metric: str) -> str:
    return METRIC_NAMES.get(metric, metric.replace("_", " "))


# ------------------------------------------------------------------------------------------ claim rows


@dataclass
class Row:
    kind: str            # value | comparison | check
    key: str             # "value 0", "comparison 1", "check <id>"
    claim: str
    seed: str
    ours: str
    diff: str
    verdict: str
    p: float | None
    sentence: dict = field(default_factory=dict)  # what the interpretation sentence needs
    claimed: bool = True  # False: a check the seed did not claim (shown, not tallied)


def value_row(i: int, item: dict, runs: dict[str, RunData]) -> Row | None:
    run = runs.get(item["run"])
    if run is None:
        return None
    metric = item.get("metric", "test_accuracy")
    unit = item.get("unit", default_unit(metric))
    vals = run.values(metric, UNIT_SCALE[unit])
    s = stats.summarize(vals)
    claimed = float(item["value"])
    tol = float(item.get("tolerance", 0.5 if unit in ("percent", "points") else 0.0))
    if item.get("compare", True) is False:
        verdict, p = NOT_TESTED, None
    else:
        verdict, p = stats.value_verdict(vals, claimed, tol)
    seed = f"{fmt_num(claimed, unit)}{UNIT_SUFFIX[unit]}"
    if item.get("note"):
        seed += f" — {item['note']}"
    diff_unit = "points" if unit == "percent" else unit  # a difference of percentages is in points
    tol_text = (f"; agreement within ±{fmt_num(tol, diff_unit)}{UNIT_SUFFIX[diff_unit]}"
                if tol and verdict != NOT_TESTED else "")
    diff = s["mean"] - claimed if s["n"] else None
    return Row("value", f"value {i}", f"{run.label} — {metric_name(metric)}{tol_text}", seed,
               fmt_ms(s, unit, total=len(vals)),
               "—" if diff is None else f"{diff:+.{UNIT_DECIMALS[unit]}f}{UNIT_SUFFIX[diff_unit]}", verdict, p,
               {"label": run.label, "metric": metric, "unit": unit, "claimed": claimed, "tol": tol,
                "mean": s["mean"], "std": s["std"], "n": s["n"], "diff": diff})


def comparison_values(a: RunData, b: RunData, metric: str) -> tuple[list, list, str]:
    unit = "points" if metric in PERCENT_METRICS or metric == "overfit_gap" else default_unit(metric)
    scale = UNIT_SCALE[unit]
    return a.values(metric, scale), b.values(metric, scale), unit


def describe_pair(va: list, vb: list, diff: float, unit: str) -> str:
    sa, sb = stats.summarize(va), stats.summarize(vb)
    inner = "percent" if unit == "points" else unit
    return (f"{diff:+.{UNIT_DECIMALS[unit]}f}{UNIT_SUFFIX[unit]} ({fmt_ms(sa, inner, with_n=False)} vs "
            f"{fmt_ms(sb, inner, with_n=False)}, n={sa['n']}/{sb['n']})")


def comparison_row(i: int, item: dict, runs: dict[str, RunData]) -> Row | None:
    a, b = runs.get(item["a"]), runs.get(item["b"])
    if a is None or b is None:
        return None
    metric = item.get("metric", "test_accuracy")
    va, vb, unit = comparison_values(a, b, metric)
    sign = 1.0 if item["sign"] == "+" else -1.0
    size = item.get("size")
    verdict, diff, p = stats.comparison_verdict(va, vb, sign)
    claim_text = (f"{size:+.2f}{UNIT_SUFFIX[unit]}" if size is not None
                  else f"{a.label} {'>' if sign > 0 else '<'} {b.label}")
    if item.get("note"):
        claim_text += f" ({item['note']})"
    ours = "—" if math.isnan(diff) else describe_pair(va, vb, diff, unit)
    delta = "—" if size is None or math.isnan(diff) else f"{diff - size:+.2f}{UNIT_SUFFIX[unit]}"
    return Row("comparison", f"comparison {i}", f"{a.label} vs {b.label} — {metric_name(metric)}",
               claim_text, ours, delta, verdict, p,
               {"a": a.label, "b": b.label, "metric": metric, "unit": unit, "diff": diff, "size": size,
                "sign": sign, "claim": claim_text, "n": min(stats.summarize(va)["n"], stats.summarize(vb)["n"])})


def layer_rows(run: RunData, stage: str) -> list[list[dict] | None]:
    return [None if t is None else t.get(stage) for t in run.trains]


def check_row(item: dict, runs: dict[str, RunData]) -> Row | None:
    run = runs.get(item["run"])
    if run is None:
        return None
    kind, passed, detail = item["kind"], [], ""
    if kind == "variance_ratio":
        tol, ratios = float(item.get("tolerance", 0.1)), []
        for layers in layer_rows(run, item.get("stage", "layers_at_init")):
            if not layers:
                continue
            r = [row["weight_var"] / row["theory_var"] for row in layers
                 if row.get("weight_var") is not None and row.get("theory_var")]
            if r:
                ratios += r
                passed.append(all(abs(x - 1) <= tol for x in r))
        if ratios:
            detail = (f"weight_var / theory_var {min(ratios):.3f}–{max(ratios):.3f} over "
                      f"{len(ratios) // max(len(passed), 1)} layers")
    elif kind == "activation_stability":
        lo, hi = item.get("bounds", [0.5, 2.0])
        ratios = []
        for layers in layer_rows(run, item.get("stage", "layers_at_init")):
            hidden = [row.get("activation_std") for row in (layers or [])[:-1]]  # the last row = output
            if len(hidden) >= 2 and hidden[0] and hidden[-1] is not None:
                ratio = hidden[-1] / hidden[0]
                ratios.append(ratio)
                passed.append(lo <= ratio <= hi)
        if ratios:
            detail = f"std(last hidden) / std(first hidden) {min(ratios):.2f}–{max(ratios):.2f}"
    elif kind in ("at_least", "at_most"):
        metric, threshold = item["metric"], float(item["threshold"])
        vals = [v for v in run.values(metric, UNIT_SCALE[default_unit(metric)]) if v is not None]
        passed = [v >= threshold if kind == "at_least" else v <= threshold for v in vals]
        if vals:
            detail = f"{metric_name(metric)} {min(vals):.2f}–{max(vals):.2f} %"
    else:
        raise PipelineError(f"{CLAIMS_PATH}: check {item.get('id')!r} has unknown kind {kind!r}; expected "
                            "variance_ratio, activation_stability, at_least or at_most.")
    total = len(run.seeds)
    verdict = stats.check_verdict(passed)
    ours = (f"{detail}; passes in {sum(passed)} of {len(passed)} seeds"
            + (f" ({total - len(passed)} of {total} seeds without data)" if len(passed) < total else "")
            if passed else f"no data in any of {total} seeds")
    return Row("check", f"check {item['id']}", item["text"], "qualitative" if item.get("claimed", True)
               else "not claimed", ours, "—", verdict, None,
               {"text": item["text"], "passed": sum(passed), "n": len(passed), "detail": detail},
               claimed=item.get("claimed", True))


# ----------------------------------------------------------------------------------------- sentences


def sentence_for(row: Row) -> str:
    s, v = row.sentence, row.verdict
    if row.kind == "comparison":
        if math.isnan(s["diff"]):
            return f"Undetermined: no finite {metric_name(s['metric'])} to compare {s['a']} with {s['b']}"
        d, unit = s["diff"], UNIT_SUFFIX[s["unit"]].strip()
        what = f"{metric_name(s['metric'])}"
        if v == stats.CONFIRMED:
            return (f"Confirmed: {s['a']} {'beats' if d > 0 else 'trails'} {s['b']} by {abs(d):.2f} {unit} "
                    f"of {what} (seed: {s['claim']}), p = {fmt_p(row.p)}")
        if v == stats.WITHIN_NOISE:
            return (f"Within noise: {s['a']} − {s['b']} = {d:+.2f} {unit} of {what} (seed: {s['claim']}), "
                    f"p = {fmt_p(row.p)}, so our {s['n']} seeds cannot tell the two apart and the seed's "
                    "effect is not reproduced as a real one")
        if v == stats.CONTRADICTED:
            return (f"Contradicted: {s['a']} is {abs(d):.2f} {unit} {'better' if d > 0 else 'worse'} than "
                    f"{s['b']} on {what} (p = {fmt_p(row.p)}), the opposite of the seed's claim "
                    f"({s['claim']})")
        return (f"Undetermined (fewer than 2 seeds): we measure {s['a']} − {s['b']} = {d:+.2f} {unit} of "
                f"{what} against the seed's {s['claim']}")
    if row.kind == "value":
        if s["mean"] is None:
            return f"Undetermined: no finite {metric_name(s['metric'])} for {s['label']}"
        unit, dec = s["unit"], UNIT_DECIMALS[s["unit"]]
        suffix = UNIT_SUFFIX[unit]
        diff_suffix = UNIT_SUFFIX["points" if unit == "percent" else unit]
        ours = f"{s['mean']:.{dec}f}" + (f" ± {s['std']:.{dec}f}" if s["std"] is not None else "") + suffix
        claimed = f"{s['claimed']:.{dec}f}{suffix}"
        gap = f"{abs(s['diff']):.{dec}f}{diff_suffix} {'above' if s['diff'] > 0 else 'below'}"
        what = f"{s['label']} {metric_name(s['metric'])}"
        if v == stats.CONFIRMED:
            return (f"Confirmed: our {what} is {ours}, within ±{s['tol']:g}{diff_suffix} of the seed's "
                    f"{claimed}")
        if v == stats.WITHIN_NOISE:
            return (f"Within noise: our {what} is {ours}, {gap} the seed's {claimed}, but a single run of "
                    f"ours could plausibly give the seed's number (p = {fmt_p(row.p)})")
        if v == stats.CONTRADICTED:
            return (f"Contradicted: our {what} is {ours}, {gap} the seed's {claimed}, outside what our "
                    f"seeds produce (p = {fmt_p(row.p)})")
        if v == NOT_TESTED:
            return f"Not tested: our {what} is {ours} against the seed's {claimed} (hardware-dependent)"
        return f"Undetermined (fewer than 2 seeds): our {what} is {ours} against the seed's {claimed}"
    # check
    if v == stats.CONFIRMED:
        return f"Confirmed: {s['text']} — holds in all {s['n']} seeds ({s['detail']})"
    if v == stats.WITHIN_NOISE:
        return f"Within noise: {s['text']} — holds in only {s['passed']} of {s['n']} seeds ({s['detail']})"
    if v == stats.CONTRADICTED:
        return f"Contradicted: {s['text']} — fails in every seed ({s['detail']})"
    return f"Undetermined (fewer than 2 seeds with data): {s['text']}"


def headline_row(exp: dict, rows: list[Row]) -> Row | None:
    tested = [r for r in rows if r.claimed]
    if not tested:
        return None
    wanted = exp.get("headline")
    for r in tested:
        if wanted and r.key == wanted:
            return r
    for kind in ("comparison", "value", "check"):
        for r in tested:
            if r.kind == kind and r.verdict != NOT_TESTED:
                return r
    return tested[0]


def interpretation(head: Row, rows: list[Row]) -> str:
    sentence = sentence_for(head)
    others = [r for r in rows if r is not head and r.claimed and r.verdict != NOT_TESTED]
    if others:
        counts = [f"{sum(r.verdict == v for r in others)} {v}" for v in VERDICTS
                  if any(r.verdict == v for r in others)]
        sentence += f"; the other {len(others)} claim item{'s' if len(others) > 1 else ''}: {', '.join(counts)}"
    return sentence + "."


def disagreement(row: Row) -> str:
    s = row.sentence
    if row.kind == "comparison":
        return (f"The seed claims {s['a']} vs {s['b']}: {s['claim']} on {metric_name(s['metric'])}; "
                f"we measure {row.ours}, p = {fmt_p(row.p)}.")
    if row.kind == "value":
        return (f"The seed reports {row.seed} for {s['label']} ({metric_name(s['metric'])}); we measure "
                f"{row.ours}, p = {fmt_p(row.p)}.")
    return f"The seed's claim \"{s['text']}\" fails in our data: {row.ours}."


# -------------------------------------------------------------------------------------------- figures


def per_epoch(run: RunData, column: str) -> dict | None:
    """Mean and std over seeds of a history column, per (1-based) epoch, over the seeds that reached it."""
    series = [h[column].to_numpy(dtype=float) for h in run.histories if h is not None and column in h]
    if not series:
        return None
    longest = max(len(s) for s in series)
    mean, std = [], []
    for i in range(longest):
        vals = [s[i] for s in series if len(s) > i and math.isfinite(s[i])]
        mean.append(float(np.mean(vals)) if vals else math.nan)
        std.append(float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan)
    return {"epochs": np.arange(1, longest + 1), "mean": np.asarray(mean), "std": np.asarray(std),
            "n_seeds": len(series)}


def layer_means(run: RunData, stage: str, metrics: tuple[str, ...]) -> dict | None:
    """Mean over seeds, per Dense layer, of probe metrics (None where no seed has a finite value)."""
    per_seed = [rows for rows in layer_rows(run, stage) if rows]
    if not per_seed:
        return None
    layers = [row["layer"] for row in per_seed[0]]
    out = {"layers": layers,
           "tick_labels": [f"{row['layer']}{' (output)' if i == len(per_seed[0]) - 1 else ''}\n"
                           f"{row['fan_in']}→{row['fan_out']}" for i, row in enumerate(per_seed[0])]}
    for metric in metrics:
        vals = []
        for i in range(len(layers)):
            xs = [rows[i].get(metric) for rows in per_seed if len(rows) > i]
            xs = stats.finite(xs)
            vals.append(float(np.mean(xs)) if xs else None)
        out[metric] = vals
    return out


def claimed_value(exp: dict, run: str, metric: str) -> float | None:
    for item in exp.get("values", []):
        if item["run"] == run and item.get("metric", "test_accuracy") == metric \
                and item.get("unit", default_unit(metric)) == "percent":
            return float(item["value"])
    return None


def bar_panels(exp: dict, exp_runs: list[RunData]) -> list[dict]:
    metrics = ["test_accuracy"]
    for item in exp.get("comparisons", []) + exp.get("values", []):
        m = item.get("metric", "test_accuracy")
        if m in PERCENT_METRICS and m not in metrics:
            metrics.append(m)
    panels = []
    for metric in metrics:
        bars = []
        for run in exp_runs:
            bars.append({"label": run.label, "values": stats.finite(run.values(metric, 100.0)),
                         "claimed": claimed_value(exp, run.name, metric)})
            if metric == "test_accuracy" and stats.finite(run.values("mc_test_accuracy")):
                bars.append({"label": f"{run.label} — MC dropout inference",
                             "values": stats.finite(run.values("mc_test_accuracy", 100.0)), "claimed": None})
        panels.append({"xlabel": f"{metric_name(metric)} (%)", "bars": bars})
    return panels


def experiment_figures(number: int, exp: dict, exp_runs: list[RunData], dataset: str, fig_dir: Path,
                       cache: dict) -> list[tuple[str, str]]:
    """(file name, caption) of each figure of one experiment; figures whose runs are absent are skipped."""
    out = []
    n_seeds = len(exp_runs[0].seeds) if exp_runs else 0
    seeds_text = f"{n_seeds} seed{'s' if n_seeds != 1 else ''}"
    title = f"Exp. {number}: {exp['title']}"

    def add(path, caption):
        if path is not None:
            out.append((Path(path).name, caption))

    if exp_runs:
        add(figures.variant_bars(fig_dir / f"exp{number:02d}_accuracy.png",
                                 f"{title} — accuracy by variant ({seeds_text})", bar_panels(exp, exp_runs)),
            f"Accuracy per variant: bar = mean over {seeds_text}, error bar = ±1 std, dots = seeds, "
            "red diamond = the seed write-up's reported value.")
        curves = []
        for run in exp_runs:
            c = per_epoch(run, "val_accuracy")
            if c is not None:
                curves.append({"label": run.label, **c, "mean": c["mean"] * 100, "std": c["std"] * 100})
        add(figures.learning_curves(fig_dir / f"exp{number:02d}_learning_curves.png",
                                    f"{title} — validation accuracy per epoch", curves),
            "Learning curves: validation accuracy per epoch, mean over the seeds that reached the epoch "
            "(band = ±1 std).")
    if number in LAYER_EXPERIMENTS and exp_runs:
        key = ("layers", tuple(r.name for r in exp_runs))
        if key not in cache:
            series = []
            for run in exp_runs:
                init = layer_means(run, "layers_at_init", ("grad_norm", "activation_std"))
                after = layer_means(run, "layers_after_training", ("grad_norm", "activation_std"))
                if init and after:
                    series.append({"label": run.label, "layers": init["layers"],
                                   "tick_labels": init["tick_labels"], "init": init, "after": after})
            cache[key] = figures.layer_diagnostics(
                fig_dir / f"exp{number:02d}_layer_diagnostics.png",
                "Vanishing gradients: per-layer gradient norm and activation std", series)
        add(cache[key], "Per-layer kernel gradient norm and output std on a fixed batch of 1,024 training "
                        "images, at initialisation and after training (mean over seeds, log scale).")
    if number in VARIANCE_EXPERIMENTS:
        series = []
        for run in exp_runs:
            init = layer_means(run, "layers_at_init", ("weight_var", "theory_var"))
            after = layer_means(run, "layers_after_training", ("weight_var",))
            if init:
                series.append({"label": run.label, "layers": init["layers"], "tick_labels": init["tick_labels"],
                               "weight_var": init["weight_var"], "theory_var": init["theory_var"],
                               "weight_var_after": after["weight_var"] if after else None})
        add(figures.init_variance(fig_dir / f"exp{number:02d}_init_variance.png",
                                  "Initialisation: empirical kernel variance vs theory", series),
            "Kernel weight variance per layer: theory (He 2/fan_in, Glorot 2/(fan_in+fan_out), LeCun 1/fan_in) "
            "vs empirical at initialisation and after training (mean over seeds, log scale).")
    if number in SCHEDULE_EXPERIMENTS:
        curves = []
        for run in exp_runs:
            hist = run.histories[0]
            if hist is not None and "learning_rate" in hist:
                curves.append({"label": run.label, "epochs": np.arange(1, len(hist) + 1),
                               "lr": hist["learning_rate"].to_numpy(dtype=float)})
        seed = exp_runs[0].seeds[0] if exp_runs else None
        add(figures.learning_rates(fig_dir / f"exp{number:02d}_learning_rates.png",
                                   f"Learning rate each schedule produced (seed {seed})", curves),
            f"Learning rate per epoch as logged in the history of seed {seed} (log scale).")
    conf_run = CONFUSION_RUNS.get(number)
    if conf_run and any(r.name == conf_run for r in exp_runs):
        run = next(r for r in exp_runs if r.name == conf_run)
        path = paths.confusion(dataset, conf_run, run.seeds[0])
        if path.exists():
            table = pd.read_csv(path)
            add(figures.confusion_heatmap(fig_dir / f"exp{number:02d}_confusion_{conf_run}.png",
                                          f"Confusion matrix: {run.label} ({conf_run}, seed {run.seeds[0]})",
                                          table["actual"].to_numpy(), table["predicted"].to_numpy(),
                                          CLASS_NAMES[dataset]),
                f"Confusion matrix of {conf_run}, seed {run.seeds[0]}, on the test set (colour = share of "
                "the actual class).")
    if ACTIVATION_FIGURE.get(dataset) == number:
        add(figures.activation_shapes(fig_dir / "activation_functions.png"),
            "Shapes of the activation functions compared (computed with numpy).")
    return out


# ---------------------------------------------------------------------------------------------- report


def experiment_runs(number: int, exp: dict, runs: dict[str, RunData]) -> list[RunData]:
    names = exp.get("runs") or [name for name, r in runs.items() if r.experiment == number]
    return [runs[n] for n in names if n in runs]


def direction(metric: str, diff: float) -> str:
    """'better'/'worse' for accuracies; for other metrics (epochs, time, gap) just 'higher'/'lower'."""
    if metric in PERCENT_METRICS:
        return "better" if diff > 0 else "worse"
    return "higher" if diff > 0 else "lower"


def significance_lines(exp: dict, exp_runs: list[RunData], runs: dict[str, RunData]) -> list[str]:
    lines = []
    ref = runs.get(exp.get("reference", ""))
    separate = set(exp.get("separate_runs", {}))
    claimed = [c.get("metric", "test_accuracy") for c in exp.get("comparisons", [])]
    metrics = list(dict.fromkeys(["test_accuracy", *claimed, *exp.get("compare_metrics", [])]))
    if ref is not None:
        for run in exp_runs:
            if run.name == ref.name or run.name in separate:
                continue
            for metric in metrics:
                va, vb, unit = comparison_values(run, ref, metric)
                diff, p = stats.welch(va, vb)
                if math.isnan(diff):
                    lines.append(f"- **{run.label}** vs **{ref.label}** ({metric_name(metric)}): no finite values.")
                    continue
                if p is None:
                    verdict = "untestable with fewer than 2 seeds"
                elif p < stats.ALPHA:
                    verdict = f"significant: {run.label} is {direction(metric, diff)}"
                else:
                    verdict = "not significant (within seed-to-seed noise)"
                lines.append(f"- **{run.label}** vs **{ref.label}** ({metric_name(metric)}): "
                             f"{describe_pair(va, vb, diff, unit)}, Welch p = {fmt_p(p)} → {verdict}.")
    for run in exp_runs:
        mc, plain = run.values("mc_test_accuracy", 100.0), run.values("test_accuracy", 100.0)
        if stats.finite(mc):
            diff, p = stats.paired(mc, plain)
            verdict = ("untestable with fewer than 2 seeds" if p is None else
                       f"significant: MC dropout is {'better' if diff > 0 else 'worse'}" if p < stats.ALPHA
                       else "not significant")
            lines.append(f"- **{run.label}**, MC dropout vs plain inference (same models, test accuracy): "
                         f"{diff:+.2f} pts, paired t-test p = {fmt_p(p)} → {verdict}.")
    return lines


def unreported_sentence(exp: dict, exp_runs: list[RunData], runs: dict[str, RunData]) -> str:
    scored = [(stats.summarize(r.values("test_accuracy", 100.0)), r) for r in exp_runs]
    scored = [(s, r) for s, r in scored if s["n"]]
    if not scored:
        return "The seed reports no number, and no run has a finite test accuracy."
    s, best = max(scored, key=lambda sr: sr[0]["mean"])
    text = (f"The seed reports no number; our best variant is {best.label} at "
            f"{fmt_ms(s, 'percent')} test accuracy")
    ref = runs.get(exp.get("reference", ""))
    if ref is not None and ref is not best:
        diff, p = stats.welch(best.values("test_accuracy", 100.0), ref.values("test_accuracy", 100.0))
        text += (f", {diff:+.2f} pts vs {ref.label} (Welch p = {fmt_p(p)}, "
                 f"{stats.significance(p)})")
    return text + "."


def divergence_lines(exp_runs: list[RunData]) -> list[str]:
    """Say which seeds diverged and how they are counted (kept, never dropped)."""
    notes = []
    for r in exp_runs:
        seeds = [seed for seed, ev in zip(r.seeds, r.evals) if ev.get("diverged")]
        if seeds:
            notes.append(f"`{r.name}` diverged (NaN loss, training stopped) with seed{'s' if len(seeds) > 1 else ''} "
                         f"{', '.join(map(str, seeds))} of {len(r.seeds)}")
    if not notes:
        return []
    return ["**Divergence.** " + "; ".join(notes) + ". A diverged model's NaN outputs predict nothing: its test "
            "accuracy counts as 0 % (its validation accuracy is Keras' argmax of NaN, i.e. class 0's share) and "
            "its seed stays in every mean, std and test.", ""]


def experiment_section(number: int, exp: dict, runs: dict[str, RunData], dataset: str, fig_dir: Path,
                       cache: dict) -> tuple[list[str], dict]:
    exp_runs_all = experiment_runs(number, exp, runs)
    separate = set(exp.get("separate_runs", {}))
    exp_runs = [r for r in exp_runs_all if r.name not in separate]
    lines = [f"## Experiment {number} — {exp['title']}", "", f"> The seed: \"{exp['claim']}\"", ""]
    overview = {"number": number, "title": exp["title"], "claim": exp["claim"]}
    if not exp_runs_all:
        names = exp.get("runs") or []
        lines += ["Not run in this configuration: none of this experiment's runs"
                  + (f" ({', '.join(names)})" if names else "") + " is in params.yaml.", ""]
        overview["verdict"] = "not run"
        for name, caption in experiment_figures(number, exp, [], dataset, fig_dir, cache):
            lines += [f"![{caption}](figures/{name})", "", f"*{caption}*", ""]
        return lines, overview
    lines += ["Runs: " + ", ".join(f"`{r.name}` ({r.label})" for r in exp_runs_all) + ".", ""]
    for name, why in exp.get("separate_runs", {}).items():
        if name in runs:
            lines += [f"`{name}` is reported in the summary table only: {why}.", ""]
    lines += divergence_lines(exp_runs_all)

    rows, skipped = [], []
    for i, item in enumerate(exp.get("values", [])):
        row = value_row(i, item, runs)
        (rows.append(row) if row else skipped.append(item["run"]))
    for i, item in enumerate(exp.get("comparisons", [])):
        row = comparison_row(i, item, runs)
        (rows.append(row) if row else skipped.append(f"{item['a']} vs {item['b']}"))
    for item in exp.get("checks", []):
        row = check_row(item, runs)
        (rows.append(row) if row else skipped.append(item["run"]))

    if exp.get("reported", True) is False:
        lines += ["The seed reports no number for this experiment: our measurements only, nothing to "
                  "confirm or contradict.", "", f"**Interpretation.** {unreported_sentence(exp, exp_runs, runs)}",
                  ""]
        overview["verdict"] = "no reported number"
    elif rows:
        lines += ["| claim | the seed reported | ours (mean ± std, n seeds) | difference (ours − seed) | "
                  "verdict | p |", "|---|---|---|---|---|---|"]
        for r in rows:
            cells = [r.claim, r.seed, r.ours, r.diff, fmt_verdict(r.verdict), fmt_p(r.p)]
            lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
        lines.append("")
        head = headline_row(exp, rows)
        if head is not None:
            p_text = f" (p = {fmt_p(head.p)})" if head.p is not None else ""
            lines += [f"**Verdict: {head.verdict}**{p_text}. **Interpretation.** {interpretation(head, rows)}",
                      ""]
            overview["verdict"] = head.verdict
            overview["tally"] = {v: sum(r.verdict == v for r in rows if r.claimed) for v in VERDICTS}
        against = [r for r in rows if r.claimed and r.verdict == stats.CONTRADICTED]
        if against:
            lines += ["Where we disagree with the seed:", ""] + [f"- {disagreement(r)}" for r in against] + [""]
    else:
        lines += ["None of the runs this claim is about is in params.yaml; nothing to test.", ""]
        overview["verdict"] = "not run"
    if skipped:
        lines += ["Claim items skipped (runs not in params.yaml): " + ", ".join(dict.fromkeys(skipped)) + ".",
                  ""]

    sig = significance_lines(exp, exp_runs_all, runs)
    if sig:
        lines += ["Comparisons from per-seed values (Welch t-test, two-sided, alpha 0.05):", ""] + sig + [""]
    for name, caption in experiment_figures(number, exp, exp_runs, dataset, fig_dir, cache):
        lines += [f"![{caption}](figures/{name})", "", f"*{caption}*", ""]
    return lines, overview


def summary_table(runs: dict[str, RunData]) -> list[str]:
    cols = [("test_accuracy", "test acc (%)", "percent"), ("best_val_accuracy", "best val acc (%)", "percent"),
            ("best_epoch", "best epoch", "epochs"), ("epochs", "epochs", "epochs"),
            ("overfit_gap", "overfit gap (pts)", "points"), ("train_time_s", "train time (s)", "seconds")]
    has_mc = any(stats.finite(r.values("mc_test_accuracy")) for r in runs.values())
    if has_mc:
        cols.insert(1, ("mc_test_accuracy", "MC-dropout test acc (%)", "percent"))
    head = "| run | label | exp | " + " | ".join(c[1] for c in cols) + " | n seeds | diverged |"
    lines = ["## Summary of all runs", "",
             "Mean ± std over seeds (sample std); n = number of seeds params.yaml lists, all of them used.", "",
             head, "|" + "---|" * (len(cols) + 5)]
    for r in runs.values():
        cells = []
        for metric, _, unit in cols:
            vals = r.values(metric, UNIT_SCALE[unit])
            s = stats.summarize(vals)
            cell = fmt_ms(s, unit, with_n=False).replace(UNIT_SUFFIX[unit], "") if s["n"] else "—"
            if s["n"] and s["n"] < len(vals):
                cell += f" (n={s['n']})"
            cells.append(cell)
        diverged = sum(bool(e.get("diverged")) for e in r.evals)
        lines.append(f"| `{r.name}` | {r.label} | {r.experiment} | " + " | ".join(cells)
                     + f" | {len(r.seeds)} | {diverged} |")
    seeds = next(iter(runs.values())).seeds
    lines += ["", "### Test accuracy per seed (%)", "",
              "| run | " + " | ".join(f"seed {s}" for s in seeds) + " |", "|---|" + "---|" * len(seeds)]
    for r in runs.values():
        lines.append(f"| `{r.name}` | " + " | ".join("—" if v is None else f"{v:.2f}"
                                                     for v in r.values("test_accuracy", 100.0)) + " |")
    return lines + [""]


def header(params, dataset: str, runs: dict[str, RunData]) -> list[str]:
    seeds = list(params.seeds)
    lines = [f"# Chapter 11 — results on {DATASET_TITLES[dataset]}", "",
             f"Generated by `python -m stages.report {dataset}` from metrics/{dataset}/ (per-seed eval, history, "
             f"train and confusion files) and ch11/claims.yaml (the seed write-up's reported numbers).", "",
             f"**Seeds:** {len(seeds)} per run ({', '.join(map(str, seeds))}), every seed params.yaml lists, "
             f"none dropped; {len(runs)} runs.", "",
             "**Statistics:** Welch t-test, two-sided, alpha 0.05; error bars = std (sample standard deviation "
             "over seeds, ddof = 1). Accuracies in %, differences in percentage points (pts).", "",
             "**Verdicts.** A claimed difference (run A vs run B) is **confirmed** when our per-seed values "
             "differ significantly with the claimed sign, **within noise** when the difference is not "
             "significant, **contradicted** when it is significant with the opposite sign. A claimed value is "
             "**confirmed** when our mean lies within the stated tolerance of it (0.50 pts for accuracies "
             "unless noted), **within noise** when it is farther but still a plausible single run of ours "
             "(the seed reports single runs: two-sided t-test of the seed's number as one more draw, "
             "s·√(1 + 1/n), n − 1 df), **contradicted** otherwise. A qualitative claim checked per seed is "
             "**confirmed** when it holds in every seed, **within noise** in some, **contradicted** in none. "
             "undetermined (n<2): fewer than two seeds, no test possible.", ""]
    limits = params.limits
    capped = {k: v for k, v in limits.model_dump().items() if v is not None}
    if capped:
        lines += ["**Fast profile:** params.yaml `limits` caps every run ("
                  + ", ".join(f"{k}={v}" for k, v in capped.items())
                  + "): these numbers are NOT comparable with the seed's.", ""]
    if dataset == "cifar10":
        lines += ["**Data:** the CIFAR-10 numbers come from whatever data the pipeline validated "
                  "(data/validated/cifar10.npz, built by validate@cifar10 from data/raw/cifar10; see "
                  "metrics/validation/cifar10.json). If that was not the official archive, the comparison "
                  "with the seed is void.", ""]
    elif params.cifar_runs:
        lines += [f"**CIFAR-10** (experiment 14 and exercise 8: {len(params.cifar_runs)} runs) is reported in "
                  "`reports/cifar10/results.md` by `report@cifar10`. Where `download@cifar10` cannot obtain "
                  "the dataset (no internet and no local copy), that report is absent: its numbers await a "
                  "machine with the dataset.", ""]
    return lines


def glance_table(overviews: list[dict]) -> list[str]:
    lines = ["## Verdicts at a glance", "", "| # | experiment | the seed's claim | headline verdict | "
             "all claim items |", "|---|---|---|---|---|"]
    for o in overviews:
        tally = o.get("tally")
        items = ", ".join(f"{n} {v}" for v, n in tally.items() if n) if tally else "—"
        lines.append(f"| {o['number']} | {o['title']} | {o['claim']} | {fmt_verdict(o.get('verdict', '—'))} | "
                     f"{items} |")
    return lines + [""]


def build_report(params, dataset: str, out_dir: Path) -> None:
    runs = load_runs(params, dataset)
    if not runs:
        raise PipelineError(f"params.yaml has no run on {dataset}; nothing to report.")
    summary_path = paths.summary(dataset)
    if not summary_path.exists():
        raise PipelineError(f"{summary_path} not found; run `dvc repro aggregate@{dataset}` first.")
    summary = json.loads(summary_path.read_text())
    stale = [name for name in runs if name not in summary]
    if stale:
        raise PipelineError(f"{summary_path} is stale: it lacks {', '.join(stale)}. Run "
                            f"`dvc repro aggregate@{dataset}` (or `python -m stages.aggregate {dataset}`).")
    claims = load_claims()
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    sections, overviews, cache = [], [], {}
    for number in sorted(claims):
        exp = claims[number]
        if exp["dataset"] != dataset:
            continue
        lines, overview = experiment_section(number, exp, runs, dataset, fig_dir, cache)
        sections += lines
        overviews.append(overview)
    text = header(params, dataset, runs) + glance_table(overviews) + sections + summary_table(runs)
    (out_dir / "results.md").write_text("\n".join(text).rstrip() + "\n", encoding="utf-8")


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in params_mod.DATASETS:
        raise PipelineError("usage: python -m stages.report <dataset>, with <dataset> one of: "
                            f"{', '.join(params_mod.DATASETS)}.")
    dataset = argv[0]
    params = params_mod.load()
    with atomic.atomic_path(paths.report_dir(dataset), is_dir=True) as out:
        out.mkdir(parents=True, exist_ok=True)
        build_report(params, dataset, out)
    print(f"report {dataset}: wrote {paths.report_dir(dataset) / 'results.md'} and figures/")


if __name__ == "__main__":
    run_main(main)
