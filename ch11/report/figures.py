"""The report's figures: which each experiment shows, from its runs' per-seed data, and how each is drawn
(matplotlib, Agg backend; no TensorFlow). A drawing function takes plain numbers (the activation functions' shapes:
computed here with numpy), writes one PNG at DPI and returns its path, or None when it has nothing to draw. Output
is deterministic: fixed seed-dot offsets, no timestamps."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from scipy.special import erf, expit

from ch11 import paths
from ch11.report import findings as fd, verdicts as v
from ch11.report.stats import finite, summarize

matplotlib.use("Agg")   # PNG files only, whatever the process's default backend

CLASS_NAMES = {
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
DPI = 110
COLORS = plt.get_cmap("tab10").colors
# Every figure's style, applied per drawing function (@plt.rc_context): matplotlib's global settings untouched
STYLE = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "legend.fontsize": 9, "axes.grid": True,
         "grid.alpha": 0.3, "axes.spines.top": False, "axes.spines.right": False}
READING_COLORS = {v.HELPS: "#1a9850", v.HELPS_SLIGHTLY: "#91cf60", v.NO_EFFECT: "#4575b4", v.HURTS_SLIGHTLY: "#fc8d59",
                  v.HURTS: "#d73027", v.UNRESOLVED: "#808080", v.DIVERGES: "#7b3294"}
SELU_ALPHA, SELU_SCALE = 1.6732632423543772, 1.0507009873554805
ACTIVATIONS = {
    "sigmoid": expit,
    "tanh": np.tanh,
    "ReLU": lambda z: np.maximum(z, 0),
    "LeakyReLU (α=0.2)": lambda z: np.where(z > 0, z, 0.2 * z),
    "ELU (α=1)": lambda z: np.where(z > 0, z, np.expm1(np.minimum(z, 0))),
    "SELU": lambda z: SELU_SCALE * np.where(z > 0, z, SELU_ALPHA * np.expm1(np.minimum(z, 0))),
    "GELU": lambda z: 0.5 * z * (1 + erf(z / np.sqrt(2))),
    "Swish (SiLU)": lambda z: z * expit(z),
}


def draw(experiments: dict, found: dict, runs: dict[str, fd.RunData], dataset: str, fig_dir: Path) -> dict:
    """Every figure of the report: experiment number -> its figures, "forest" -> the forest plot of the effects."""
    fig_dir.mkdir(parents=True, exist_ok=True)
    drawn = {number: experiment_figures(number, exp, runs, dataset, fig_dir) for number, exp in experiments.items()}
    rows = fd.by_reading([r for r in found["effects"] if r["metric"] == "test_accuracy"])
    if forest := forest_plot(fig_dir / "effects_forest.png",
                             "Final test accuracy: each technique vs its matched baseline", rows, found["delta"]):
        drawn["forest"] = f"figures/{forest.name}"
    return drawn


def experiment_figures(number: int, exp, runs: dict[str, fd.RunData], dataset: str, fig_dir: Path) -> list[dict]:
    """Draw the experiment's figures; each one drawn as {"kind", "file"} (report.md.j2 captions each kind)."""
    shown = shown_runs(exp, runs)
    title = f"{exp.name or f'Exp. {number}'}: {exp.title}"
    out = []

    def add(kind: str, plot, *args) -> None:
        """``plot`` draws exp<NN>_<kind>.png, or nothing when it has no data."""
        if path := plot(fig_dir / f"exp{number:02d}_{kind}.png", *args):
            out.append({"kind": kind, "file": path.name})

    metrics = list(dict.fromkeys(["test_accuracy", *(c.metric for c in exp.comparisons
                                                     if c.metric in fd.PERCENT_METRICS)]))
    panels = []
    for metric in metrics:
        bars = []
        for run, label in shown:
            div = f" ({len(run.diverged())} of {len(run.seeds)} diverged)" if run.diverged() else ""
            claimed = next((i.value for i in exp.values if i.run == run.name and i.metric == metric), None)
            bars.append({"label": label + div, "claimed": claimed,
                         "values": finite(run.values(metric, 100.0).values())})
            if metric == "test_accuracy" and (mc := finite(run.values("mc_test_accuracy", 100.0).values())):
                bars.append({"label": f"{label} — MC dropout", "values": mc, "claimed": None})
        panels.append({"xlabel": f"{fd.metric_name(metric)} (%)", "bars": bars})
    add("accuracy", variant_bars, f"{title} — by variant", panels)
    add("learning_curves", learning_curves, f"{title} — validation accuracy per epoch",
        mean_curves(exp, runs))
    for fig in exp.figures:
        if fig == "layers":
            add("layer_diagnostics", layer_diagnostics, "Per-layer kernel gradient norm and activation std",
                [s for s in layer_series(shown) if s["after"]])
        elif fig == "variance":
            add("init_variance", init_variance, "Initialisation: kernel variance vs each layer's own theory",
                layer_series(shown))
        elif fig == "learning_rates":
            first = [(label, next(iter(run.histories.values()))) for run, label in shown if run.histories]
            add("learning_rates", learning_rates, "Learning rate each schedule used (first seed)",
                [{"label": label, "epochs": np.arange(1, len(h) + 1), "lr": h["learning_rate"].to_numpy(dtype=float)}
                 for label, h in first])
        elif fig == "activations":
            path = activation_shapes(fig_dir / "activation_functions.png")  # shared by experiments
            out.append({"kind": "activation_functions", "file": path.name})
        elif isinstance(fig, dict) and fig["confusion"] in runs:
            table = pd.read_csv(paths.confusion(dataset, fig["confusion"]))
            add("confusion", confusion_heatmap, f"Confusion matrix: {exp.runs[fig['confusion']]} (first seed)",
                table["actual"], table["predicted"], CLASS_NAMES[dataset])
    return out


def shown_runs(exp, runs: dict[str, fd.RunData]) -> list[tuple[fd.RunData, str]]:
    """The experiment's runs present, with their labels (those it shows apart left out)."""
    return [(runs[n], label) for n, label in exp.runs.items() if n in runs and n not in exp.separate]


def mean_curves(exp, runs: dict[str, fd.RunData]) -> list[dict]:
    """Each shown run's validation accuracy per epoch, mean over seeds: the learning-curve figure's data and,
    written by the report stage, its DVC plot's."""
    return [{"label": label, **c} for run, label in shown_runs(exp, runs) if (c := fd.per_epoch(run, "val_accuracy"))]


def layer_series(shown: list[tuple[fd.RunData, str]]) -> list[dict]:
    """Per run with probe data: its label, its layers and their tick labels, and per layer the mean over seeds of
    every probe metric at init and after training (None where no seed has a finite value; "after": None when no
    seed has probes after training)."""
    series = []
    for run, label in shown:
        init, after = (list(fd.layer_rows(run, s).values()) for s in ("layers_at_init", "layers_after_training"))
        if init:
            first = init[0]
            ticks = [f"{r['layer']}{' (out)' if i == len(first) - 1 else ''}\n{r['fan_in']}→{r['fan_out']}"
                     if len(first) <= 8 else str(r["layer"]) for i, r in enumerate(first)]
            series.append({"label": label, "layers": [r["layer"] for r in first], "tick_labels": ticks,
                           "init": layer_means(init), "after": layer_means(after)})
    return series


def layer_means(per_seed: list[list[dict]]) -> dict | None:
    if not per_seed:
        return None
    return {m: [summarize([rows[i].get(m) for rows in per_seed])["mean"] for i in range(len(per_seed[0]))]
            for m in ("grad_norm", "activation_std", "weight_var", "theory_var")}


def epoch_plot(path: Path, title: str, ylabel: str, curves: list[dict], plot, yscale: str = "linear"
               ) -> Path | None:
    """Curves over epochs, ``plot(ax, i, curve)`` drawing each; integer epoch ticks on short runs; the legend below
    axes that keep their height however many curves it lists, in as many columns as fit (labels run to ~60
    characters). None without a curve."""
    curves = [c for c in curves if len(c["epochs"])]
    if not curves:
        return None
    longest = max(len(c["label"]) + len(c.get("n_note", "")) for c in curves)
    ncol = 1 if len(curves) <= 3 else 3 if longest <= 40 else 2
    fig, ax = plt.subplots(figsize=(10.5, 5.2 + 0.22 * math.ceil(len(curves) / ncol)))
    for i, c in enumerate(curves):
        plot(ax, i, c)
    ax.set(xlabel="epoch", ylabel=ylabel, yscale=yscale)
    ax.set_title(title, fontweight="bold")
    epochs = max(len(c["epochs"]) for c in curves)
    if epochs <= 15:
        ax.set_xticks(np.arange(1, epochs + 1))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.12), frameon=False, ncol=ncol, fontsize=8)
    fig.tight_layout()
    return save(fig, path)


def save(fig, path: Path, title: str | None = None) -> Path:
    """Write the figure as a PNG; with ``title``, first as the figure's bold title and lay it out."""
    if title:
        fig.suptitle(title, fontweight="bold")
        fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return path


@plt.rc_context(STYLE)
def variant_bars(path: Path, title: str, panels: list[dict]) -> Path | None:
    """Horizontal bars, one panel per metric. panel: {"xlabel": str, "bars": [{"label", "values" (per seed,
    already in display units), "claimed" (the write-up's number or None)}]}. Bars without values are left out."""
    panels = [{**p, "bars": [b for b in p["bars"] if b["values"]]} for p in panels]
    panels = [p for p in panels if p["bars"]]
    if not panels:
        return None
    n_bars = max(len(p["bars"]) for p in panels)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels) + 1.8, max(0.55 * n_bars + 1.9, 2.9)),
                             squeeze=False)
    for ax, panel in zip(axes[0], panels):
        bars = panel["bars"]
        y = np.arange(len(bars))[::-1]
        stats = [summarize(b["values"]) for b in bars]   # every bar has values (filtered above)
        ax.barh(y, [s["mean"] for s in stats], xerr=[s["std"] or 0.0 for s in stats], height=0.6,
                color=[COLORS[i % 10] for i in range(len(bars))], alpha=0.55, edgecolor="black",
                linewidth=0.6, error_kw={"elinewidth": 1.5, "capsize": 5, "ecolor": "black"})
        for yi, bar in zip(y, bars):
            offsets = np.linspace(-0.18, 0.18, n) if (n := len(bar["values"])) > 1 else np.zeros(1)
            ax.scatter(bar["values"], yi + offsets, s=22, color="black", zorder=3)
            if bar["claimed"] is not None:
                ax.scatter([bar["claimed"]], [yi], marker="D", s=60, color="red", edgecolor="white",
                           linewidth=0.8, zorder=4)
        ax.set_yticks(y, [b["label"] for b in bars])
        everything = [x for b in bars for x in (*b["values"], b["claimed"]) if x is not None]
        lo, hi = min(everything), max(everything)
        pad = max(0.5, 0.12 * (hi - lo))
        left = lo - 3 * pad
        ax.set_xlim(max(left, 0), hi + pad)
        ax.set_xlabel(panel["xlabel"] + (f"\n(axis starts at {left:.1f}, not 0)" if left > 0 else ""))
        ax.grid(axis="y", visible=False)
    handles = [Patch(facecolor="grey", alpha=0.55, edgecolor="black", label="mean over seeds"),
               Line2D([], [], color="black", marker="|", markersize=10, linestyle="-", label="±1 std over seeds"),
               Line2D([], [], color="black", marker="o", markersize=5, linestyle="", label="one seed")]
    if any(b["claimed"] is not None for p in panels for b in p["bars"]):
        handles.append(Line2D([], [], color="red", marker="D", markersize=7, linestyle="",
                              label="write-up's reported value"))
    fig.suptitle(title, fontweight="bold")
    fig.tight_layout()
    fig.legend(handles=handles, loc="upper center", ncol=len(handles), frameon=False,
               bbox_to_anchor=(0.5, 0.0), title_fontsize=9,
               title="bar = mean over seeds, error bar = ±1 std (sample, ddof=1), dots = individual seeds")
    return save(fig, path)


@plt.rc_context(STYLE)
def learning_curves(path: Path, title: str, curves: list[dict]) -> Path | None:
    """curves: [{"label", "epochs", "mean", "std", "n_note"}] (arrays): mean over seeds per epoch (1-based), with a
    ±1 std band where at least two seeds reached that epoch."""
    def plot(ax, i: int, c: dict) -> None:
        ax.plot(c["epochs"], c["mean"], "-" if i < 10 else "--", color=COLORS[i % 10], linewidth=1.8,
                marker="o" if len(c["epochs"]) <= 15 else None, markersize=3.5,
                label=f"{c['label']} ({c['n_note']})")
        if np.isfinite(c["std"]).any():
            ax.fill_between(c["epochs"], c["mean"] - c["std"], c["mean"] + c["std"], color=COLORS[i % 10],
                            alpha=0.15, linewidth=0)
    return epoch_plot(path, title, "validation accuracy (%)", curves, plot)


@plt.rc_context(STYLE)
def layer_diagnostics(path: Path, title: str, series: list[dict]) -> Path | None:
    """2 x 2 grid (gradient norm, activation std) x (at init, after training), log scale, one line per run.
    series: [{"label", "layers", "tick_labels", "init": {"grad_norm", "activation_std"}, "after": {...}}]
    (means over seeds per layer; None where a value is not finite)."""
    if not series:
        return None
    rows = [("grad_norm", "gradient norm of the kernel"), ("activation_std", "std of the layer's output")]
    cols = [("init", "at initialisation"), ("after", "after training")]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), sharex=True, sharey="row")
    for r, (metric, name) in enumerate(rows):
        for c, (stage, stage_title) in enumerate(cols):
            ax = axes[r][c]
            for i, s in enumerate(series):
                vals = np.array(s[stage][metric], dtype=float)  # None -> NaN
                vals[vals <= 0] = np.nan
                if np.isfinite(vals).any():
                    ax.plot(s["layers"], vals, "-o", color=COLORS[i % 10], linewidth=2, label=s["label"])
            if ax.lines:
                ax.set_yscale("log")
            else:
                ax.text(0.5, 0.5, "no finite values", transform=ax.transAxes, ha="center")
            ax.set_title(f"{name} — {stage_title}")
            if c == 0:
                ax.set_ylabel(f"{name}\n(mean over seeds, log scale)")
            if r == 1:
                ax.set_xticks(series[0]["layers"], series[0]["tick_labels"])
                ax.set_xlabel("Dense layer (fan_in → fan_out)")
    axes[0][0].legend(frameon=False)
    return save(fig, path, title)


@plt.rc_context(STYLE)
def init_variance(path: Path, title: str, series: list[dict]) -> Path | None:
    """One panel per initializer: empirical kernel variance per layer (at init, after training) against the
    theoretical value. series: [{"label", "layers", "tick_labels", "init": {"weight_var", "theory_var"}, "after":
    {"weight_var"} or None}] (means over seeds)."""
    if not series:
        return None
    fig, axes = plt.subplots(1, len(series), figsize=(4.6 * len(series) + 0.6, 4.6), squeeze=False, sharey=True)
    for ax, s in zip(axes[0], series):
        ax.plot(s["layers"], s["init"]["theory_var"], "--", color="black", linewidth=1.5, marker="x",
                markersize=8, label="theory")
        ax.plot(s["layers"], s["init"]["weight_var"], "o", color=COLORS[0], markersize=8, label="empirical, at init")
        if s["after"]:
            ax.plot(s["layers"], s["after"]["weight_var"], "s", color=COLORS[1], markersize=7,
                    markerfacecolor="none", markeredgewidth=1.5, label="empirical, after training")
        ax.set(yscale="log", xlabel="Dense layer (fan_in → fan_out)", title=s["label"])
        ax.set_xticks(s["layers"], s["tick_labels"], fontsize=8)
    axes[0][0].set_ylabel("kernel weight variance (log scale)\nmean over seeds")
    axes[0][0].legend(frameon=False)
    return save(fig, path, title)


@plt.rc_context(STYLE)
def learning_rates(path: Path, title: str, curves: list[dict]) -> Path | None:
    """The learning rate each schedule actually used per epoch (from the history). curves: [{"label",
    "epochs", "lr"}]."""
    def plot(ax, i: int, c: dict) -> None:
        ax.plot(c["epochs"], c["lr"], "-", color=COLORS[i % 10], marker="osD^v<>ph*"[i % 10], markersize=5,
                linewidth=1.8, label=c["label"])
    return epoch_plot(path, title, "learning rate (end of epoch, log scale)", curves, plot, yscale="log")


@plt.rc_context(STYLE)
def confusion_heatmap(path: Path, title: str, actual, predicted, class_names: list[str]) -> Path | None:
    """Counts of (actual, predicted) class indices; colour = share of the actual class (row-normalised)."""
    if not len(actual):
        return None
    k = len(class_names)
    counts = pd.crosstab(actual, predicted).reindex(index=range(k), columns=range(k), fill_value=0).to_numpy()
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(8.6, 7.4))
    ax.grid(False)
    im = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i, j in zip(*np.nonzero(counts)):
        ax.text(j, i, str(counts[i, j]), ha="center", va="center", fontsize=8,
                color="white" if shares[i, j] > 0.5 else "black")
    ax.set_xticks(range(k), class_names, rotation=40, ha="right")
    ax.set_yticks(range(k), class_names)
    ax.set(xlabel="predicted class", ylabel="actual class")
    accuracy = np.trace(counts) / max(counts.sum(), 1)
    ax.set_title(f"{title}\n{counts.sum()} test images, accuracy {100 * accuracy:.2f} %", fontweight="bold")
    cbar = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cbar.set_label("share of the actual class (numbers = counts)")
    fig.tight_layout()
    return save(fig, path)


@plt.rc_context(STYLE)
def forest_plot(path: Path, title: str, rows: list[dict], delta: float) -> Path | None:
    """Effects with their (adjusted) CI, one line each, top to bottom in ``rows`` order. row: {"label", "diff",
    "ci_low", "ci_high", "reading", "claim" (the write-up's Δ or None)}; rows without a difference are left
    out. The ±delta band marks 'no effect'."""
    rows = [r for r in rows if r["diff"] is not None]
    if not rows:
        return None
    height = 0.27 * len(rows) + 1.6
    fig, ax = plt.subplots(figsize=(13, height))
    y = np.arange(len(rows))[::-1]
    ax.axvspan(-delta, delta, color=READING_COLORS[v.NO_EFFECT], alpha=0.12, lw=0)
    ax.axvline(0, color="black", lw=0.8)
    for yi, r in zip(y, rows):
        color = READING_COLORS[r["reading"]]   # a row with a difference has a reading of verdicts.READINGS
        ax.plot([r["ci_low"], r["ci_high"]], [yi, yi], color=color, lw=2)
        ax.plot(r["diff"], yi, "o", color=color, ms=5)
        if r.get("claim") is not None:
            ax.plot(r["claim"], yi, "D", color="black", mfc="none", ms=6)
    ax.set_yticks(y, [r["label"] for r in rows], fontsize=8)
    ax.set(ylim=(-0.7, len(rows) - 0.3), xlabel="Δ vs matched baseline (points; adjusted CI)", title=title)
    ax.grid(axis="y", alpha=0)
    handles = [Line2D([], [], color=c, lw=2, marker="o", label=k) for k, c in READING_COLORS.items()
               if any(r["reading"] == k for r in rows)]
    handles += [Line2D([], [], ls="", marker="D", color="black", mfc="none", label="the write-up's Δ"),
                Patch(color=READING_COLORS[v.NO_EFFECT], alpha=0.12, label=f"±{delta:g} pts: no effect band")]
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, fontsize=8)
    fig.tight_layout(rect=(0, 0.45 / height, 1, 1))
    return save(fig, path)


@plt.rc_context(STYLE)
def activation_shapes(path: Path) -> Path:
    """The activation functions of experiment 4 (and exercise 8), computed with numpy on z in [-4, 4]."""
    z = np.linspace(-4, 4, 401)
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.2), sharex=True, sharey=True)
    for ax, color, (name, fn) in zip(axes.flat, COLORS, ACTIVATIONS.items()):
        ax.axhline(0, color="grey", linewidth=0.8)
        ax.axvline(0, color="grey", linewidth=0.8)
        ax.plot(z, fn(z), color=color, linewidth=2.2)
        ax.set(title=name, xlim=(-4, 4), ylim=(-2.2, 4.2))
    for ax in axes[1]:
        ax.set_xlabel("input z")
    for ax in axes[:, 0]:
        ax.set_ylabel("activation f(z)")
    return save(fig, path, "Activation functions (computed with numpy)")
