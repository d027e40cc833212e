"""The report's figures (ch11/report/plots.py draws them), and the data of each experiment's DVC plot."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ch11 import paths
from ch11.report import evidence as ev, plots
from ch11.report.evidence import by_reading
from ch11.report.stats import finite

CLASS_NAMES = {
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}


def draw(experiments: dict, found: dict, runs: dict[str, ev.RunData], dataset: str, fig_dir: Path) -> dict:
    """Every figure of the report: experiment number -> its figures, "forest" -> the forest plot of the effects."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    drawn = {number: experiment_figures(number, exp, runs, dataset, fig_dir) for number, exp in experiments.items()}
    rows = by_reading([r for r in found["effects"] if r["metric"] == "test_accuracy"])
    if forest := plots.forest_plot(fig_dir / "effects_forest.png",
                                   "Final test accuracy: each technique vs its matched baseline", rows, found["delta"]):
        drawn["forest"] = f"figures/{forest.name}"
    return drawn


def experiment_figures(number: int, exp, runs: dict[str, ev.RunData], dataset: str, fig_dir: Path) -> list[dict]:
    """Draw the experiment's figures; each one drawn as {"kind", "file"} (report.md.j2 captions each kind)."""
    shown = shown_runs(exp, runs)
    title = f"{exp.name or f'Exp. {number}'}: {exp.title}"
    out = []

    def add(kind: str, plot, *args) -> None:
        """``plot`` (ch11/report/plots.py) draws exp<NN>_<kind>.png, or nothing when it has no data."""
        if path := plot(fig_dir / f"exp{number:02d}_{kind}.png", *args):
            out.append({"kind": kind, "file": path.name})

    metrics = list(dict.fromkeys(["test_accuracy", *(c.metric for c in exp.comparisons
                                                     if c.metric in ev.PERCENT_METRICS)]))
    panels = []
    for metric in metrics:
        bars = []
        for run, label in shown:
            div = f" ({len(run.diverged())} of {len(run.seeds)} diverged)" if run.diverged() else ""
            claimed = next((i.value for i in exp.values if i.run == run.name and i.metric == metric), None)
            bars.append({"label": label + div, "claimed": claimed,
                         "values": finite(run.values(metric, 100.0).values())})
            mc = finite(run.values("mc_test_accuracy", 100.0).values())
            if metric == "test_accuracy" and mc:
                bars.append({"label": f"{label} — MC dropout", "values": mc, "claimed": None})
        panels.append({"xlabel": f"{ev.metric_name(metric)} (%)", "bars": bars})
    add("accuracy", plots.variant_bars, f"{title} — by variant", panels)
    add("learning_curves", plots.learning_curves, f"{title} — validation accuracy per epoch",
        mean_curves(exp, runs))
    for fig in exp.figures:
        if fig == "layers":
            series = [s for s in layer_series(shown) if s["after"]]
            add("layer_diagnostics", plots.layer_diagnostics, "Per-layer kernel gradient norm and activation std",
                 series)
        elif fig == "variance":
            add("init_variance", plots.init_variance, "Initialisation: kernel variance vs each layer's own theory",
                 layer_series(shown))
        elif fig == "learning_rates":
            first = [(label, next(iter(run.histories.values()))) for run, label in shown if run.histories]
            lr = [{"label": label, "epochs": np.arange(1, len(h) + 1), "lr": h["learning_rate"].to_numpy(dtype=float)}
                  for label, h in first]
            add("learning_rates", plots.learning_rates, "Learning rate each schedule used (first seed)", lr)
        elif fig == "activations":
            path = plots.activation_shapes(fig_dir / "activation_functions.png")  # shared by experiments
            out.append({"kind": "activation_functions", "file": path.name})
        elif isinstance(fig, dict) and fig["confusion"] in runs:
            table = pd.read_csv(paths.confusion(dataset, fig["confusion"]))
            add("confusion", plots.confusion_heatmap, f"Confusion matrix: {exp.runs[fig['confusion']]} (first seed)",
                 table["actual"], table["predicted"], CLASS_NAMES[dataset])
    return out


def shown_runs(exp, runs: dict[str, ev.RunData]) -> list[tuple[ev.RunData, str]]:
    """The experiment's runs present, with their labels (those it shows apart left out)."""
    return [(runs[n], label) for n, label in exp.runs.items() if n in runs and n not in exp.separate]


def mean_curves(exp, runs: dict[str, ev.RunData]) -> list[dict]:
    """Each shown run's validation accuracy per epoch, mean over seeds: the learning-curve figure's data and,
    written by the report stage, its DVC plot's."""
    return [{"label": label, **c} for run, label in shown_runs(exp, runs) if (c := ev.per_epoch(run, "val_accuracy"))]


def layer_series(shown: list[tuple[ev.RunData, str]]) -> list[dict]:
    """Per run with probe data: its label, layers, tick labels and per-layer means at init and after."""
    means = [(label, layer_means(run, "layers_at_init"), layer_means(run, "layers_after_training"))
             for run, label in shown]
    return [{"label": label, "layers": init["layers"], "tick_labels": init["tick_labels"], "init": init,
             "after": after} for label, init, after in means if init]


def layer_means(run: ev.RunData, stage: str) -> dict | None:
    """Mean over seeds, per Dense layer, of every probe metric (None where no seed has a finite value)."""
    per_seed = list(ev.layer_rows(run, stage).values())
    if not per_seed:
        return None
    first = per_seed[0]
    out = {"layers": [r["layer"] for r in first],
           "tick_labels": [f"{r['layer']}{' (out)' if i == len(first) - 1 else ''}\n{r['fan_in']}→{r['fan_out']}"
                           if len(first) <= 8 else str(r["layer"]) for i, r in enumerate(first)]}
    for metric in ("grad_norm", "activation_std", "weight_var", "theory_var"):
        vals = [finite(rows[i].get(metric) for rows in per_seed) for i in range(len(first))]
        out[metric] = [float(np.mean(x)) if x else None for x in vals]
    return out
