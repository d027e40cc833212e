"""Stage report@<dataset>: the write-up's claims beside our measured numbers -> reports/<dataset>/.

Usage: python -m stages.report <dataset>
Writes reports/<dataset>/results.md and figures/*.png atomically (the folder appears complete or not at
all), from ch11/claims.yaml and every run's per-seed files under metrics/<dataset>/. Verdicts come from
ch11/evidence.py and ch11/verdicts.py; this module renders them. No Keras: numpy, pandas, scipy, matplotlib.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from ch11 import atomic, claims as claims_mod, evidence as ev, figures, paths, params as params_mod, verdicts as v
from ch11.errors import PipelineError, run_main
from ch11.results import runs_of
from ch11.stats import summarize

CLASS_NAMES = {
    "fashion_mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                      "Bag", "Ankle boot"],
    "cifar10": ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"],
}
DATASET_TITLES = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
HOW_TO_READ = """## How to read the verdicts

Each claim of the write-up is judged against our per-seed numbers; the write-up reports single runs.

- **Differences** (run A − run B): when the runs share their seeds the test is **paired** (a seed fixes the
  data order, and the initial weights where the architecture is the same), else Welch's t-test. p-values
  are **Holm-adjusted over every claimed difference in this report**. *confirmed*: significant with the
  claimed sign and, when the write-up gives a size, that size inside our 95 % CI; *direction confirmed,
  size differs*: significant with the claimed sign, size outside our CI; *contradicted*: significant with
  the opposite sign; *equivalent*: not significant and the two one-sided tests (TOST, α 0.05) show the
  difference within ±δ (δ = {delta} pts unless stated); *inconclusive*: neither — the row gives the
  smallest difference our seeds would detect with 80 % power.
- **Values** (a number the write-up reports for one run): *confirmed* when it lies inside our 95 %
  prediction interval for one more run (mean ± t·s·√(1 + 1/n)), *contradicted* otherwise.
- **Checks** (a qualitative claim tested seed by seed): *confirmed* in every seed, *contradicted* in none,
  *inconclusive* in some.
- *not tested*: the data cannot test the claim, and the row says why (e.g. a schedule that never changed
  the learning rate, or fewer than two seeds with a value).
- **Diverged seeds** (non-finite loss) have no accuracy: they are reported as "k diverged" beside the
  accuracy, never averaged into it.
"""


def cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def claim_table(rows: list[ev.Row]) -> list[str]:
    lines = ["| claim | the write-up | ours | interval | verdict | p (raw / Holm) | note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        p = "—" if r.p is None else f"{r.p:.2g} / {r.p_holm:.2g}" if r.p_holm is not None else f"{r.p:.2g}"
        verdict = f"**{r.verdict}**" if r.claimed else f"{r.verdict} (not claimed)"
        lines.append("| " + " | ".join(cell(c) for c in (r.claim, r.reported, r.ours, r.interval, verdict, p,
                                                             r.why or "")) + " |")
    return lines + [""]


def exploratory(exp, runs: dict[str, ev.RunData]) -> list[str]:
    """Each variant against the experiment's reference (no verdict, not adjusted), and MC dropout."""
    lines = []
    ref = runs.get(exp.reference or "")
    metrics = list(dict.fromkeys(["test_accuracy", *(c.metric for c in exp.comparisons), *exp.compare_metrics]))
    for name, label in exp.runs.items():
        run = runs.get(name)
        if run is None:
            continue
        if ref is not None and name != ref.name and name not in exp.separate:
            for metric in metrics:
                scale = 100.0 if metric in ev.PERCENT_METRICS else 1.0
                d = v.compare(run.values(metric, scale), ref.values(metric, scale))
                if d is not None:
                    lo, hi = d.ci()
                    lines.append(f"- {label} − {exp.runs[ref.name]}, {ev.metric_name(metric)}: {d.diff:+.2f} "
                                 f"[{lo:+.2f}, {hi:+.2f}] ({'paired' if d.paired else 'Welch'}, n={d.n_a}"
                                 + ("" if d.paired else f"/{d.n_b}") + ")")
        d = v.compare(run.values("mc_test_accuracy", 100.0), run.values("test_accuracy", 100.0))
        if d is not None:
            lo, hi = d.ci()
            lines.append(f"- {label}, MC dropout − plain inference (same models, test accuracy): "
                         f"{d.diff:+.2f} pts [{lo:+.2f}, {hi:+.2f}] (paired, n={d.n_a})")
    if not lines:
        return []
    return ["Exploratory differences (95 % CI, not adjusted for multiplicity, no verdict):", "", *lines, ""]


def experiment_figures(number: int, exp, runs: dict[str, ev.RunData], dataset: str, fig_dir: Path) -> list[str]:
    shown = [(runs[n], label) for n, label in exp.runs.items() if n in runs and n not in exp.separate]
    title = f"Exp. {number}: {exp.title}"
    out = []

    def add(path, caption):
        if path is not None:
            out.extend([f"![{caption}](figures/{Path(path).name})", "", f"*{caption}*", ""])

    metrics = list(dict.fromkeys(["test_accuracy", *(c.metric for c in exp.comparisons
                                                     if c.metric in ev.PERCENT_METRICS)]))
    panels = []
    for metric in metrics:
        bars = []
        for run, label in shown:
            div = f" ({len(run.diverged())} of {len(run.seeds)} diverged)" if run.diverged() else ""
            claimed = next((i.value for i in exp.values if i.run == run.name and i.metric == metric), None)
            bars.append({"label": label + div, "claimed": claimed,
                         "values": v.finite(run.values(metric, 100.0).values())})
            mc = v.finite(run.values("mc_test_accuracy", 100.0).values())
            if metric == "test_accuracy" and mc:
                bars.append({"label": f"{label} — MC dropout", "values": mc, "claimed": None})
        panels.append({"xlabel": f"{ev.metric_name(metric)} (%)", "bars": bars})
    add(figures.variant_bars(fig_dir / f"exp{number:02d}_accuracy.png", f"{title} — by variant", panels),
        "Per variant: bar = mean over the seeds that did not diverge, error bar = ±1 std, dots = seeds, "
        "red diamond = the write-up's reported value.")
    curves = [{"label": label, **c} for run, label in shown if (c := ev.per_epoch(run, "val_accuracy"))]
    write_curves(fig_dir.parent / "curves" / f"exp{number:02d}.csv", curves)
    add(figures.learning_curves(fig_dir / f"exp{number:02d}_learning_curves.png",
                                f"{title} — validation accuracy per epoch", curves),
        "Validation accuracy per epoch: mean over the seeds with a finite value at that epoch (the legend "
        "gives n, and where it changes), band = ±1 std.")
    for fig in exp.figures:
        if fig == "layers":
            series = [s for s in layer_series(shown) if s["after"]]
            add(figures.layer_diagnostics(fig_dir / f"exp{number:02d}_layer_diagnostics.png",
                                          "Per-layer kernel gradient norm and activation std", series),
                "Per-layer kernel gradient norm and output std on a fixed batch of 1,024 training images, at "
                "initialisation and after training (mean over seeds with a finite value, log scale). Inference "
                "mode: at initialisation BatchNorm's moving statistics are still mean 0 / variance 1, so BN does "
                "not normalise in the at-init panels.")
        elif fig == "variance":
            series = [{**s, "weight_var": s["init"]["weight_var"], "theory_var": s["init"]["theory_var"],
                       "weight_var_after": s["after"]["weight_var"] if s["after"] else None}
                      for s in layer_series(shown)]
            add(figures.init_variance(fig_dir / f"exp{number:02d}_init_variance.png",
                                      "Initialisation: kernel variance vs each layer's own theory", series),
                "Kernel variance per layer against the theory of that layer's own initializer (hidden layers: "
                "the run's; output layer: Keras' Glorot-uniform default), mean over seeds, log scale.")
        elif fig == "learning_rates":
            lr = []
            for run, label in shown:
                if run.histories:
                    seed, hist = next(iter(run.histories.items()))
                    lr.append({"label": label, "epochs": np.arange(1, len(hist) + 1),
                               "lr": hist["learning_rate"].to_numpy(dtype=float)})
            add(figures.learning_rates(fig_dir / f"exp{number:02d}_learning_rates.png",
                                       "Learning rate each schedule used (first seed)", lr),
                "Learning rate per epoch as logged in each run's first seed (log scale).")
        elif fig == "activations":
            add(figures.activation_shapes(fig_dir / "activation_functions.png"),
                "Shapes of the activation functions compared (computed with numpy).")
        elif isinstance(fig, dict) and fig["confusion"] in runs:
            table = pd.read_csv(paths.confusion(dataset, fig["confusion"]))
            add(figures.confusion_heatmap(fig_dir / f"exp{number:02d}_confusion.png",
                                          f"Confusion matrix: {exp.runs[fig['confusion']]} (first seed)",
                                          table["actual"].to_numpy(), table["predicted"].to_numpy(),
                                          CLASS_NAMES[dataset]),
                "Confusion matrix on the test set, first seed that did not diverge (colour = share of the "
                "actual class).")
    return out


def write_curves(path: Path, curves: list[dict]) -> None:
    """The experiment's mean validation curves, one row per (run, epoch): the data of its DVC plot."""
    if not curves:
        return
    frame = pd.concat([pd.DataFrame({"epoch": c["epochs"], "run": c["label"], "val_accuracy": c["mean"].round(3),
                                     "seeds": c["counts"]}) for c in curves])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.dropna(subset=["val_accuracy"]).to_csv(path, index=False)


def layer_series(shown: list[tuple[ev.RunData, str]]) -> list[dict]:
    """Per run with probe data: its label, layers, tick labels and per-layer means at init and after."""
    series = []
    for run, label in shown:
        init, after = layer_means(run, "layers_at_init"), layer_means(run, "layers_after_training")
        if init:
            series.append({"label": label, "layers": init["layers"], "tick_labels": init["tick_labels"],
                           "init": init, "after": after})
    return series


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
        vals = [v.finite(rows[i].get(metric) for rows in per_seed) for i in range(len(first))]
        out[metric] = [float(np.mean(x)) if x else None for x in vals]
    return out


def experiment_section(number: int, exp, rows: list[ev.Row], runs, dataset: str, fig_dir: Path) -> list[str]:
    lines = [f"## Experiment {number} — {exp.title}", "", f"> The write-up: \"{exp.claim}\"", ""]
    if exp.note:
        lines += [exp.note, ""]
    present = {n: label for n, label in exp.runs.items() if n in runs}
    if not present:
        return lines + ["Not run in this configuration: none of its runs is in params.yaml.", ""]
    lines += ["Runs: " + ", ".join(f"{label} (`{n}`, {len(runs[n].seeds)} seeds"
                                    + (f", {len(runs[n].diverged())} diverged" if runs[n].diverged() else "") + ")"
                                    for n, label in present.items()) + ".",
              "Budget: " + "; ".join(dict.fromkeys(runs[n].budget for n in present)) + " (reasons: params.yaml).", ""]
    unconverged = [w for n in present if (w := runs[n].still_improving())]
    if unconverged:
        lines += ["**Not converged within the budget** (seeds that used the whole budget, early stopping never firing, "
                  "had their best validation epoch in its last tenth on average; "
                  "a longer budget may change their numbers and the verdicts resting on them): "
                  + ", ".join(unconverged) + ".", ""]
    if not exp.reported:
        lines += ["The write-up reports no number here: our measurements only, nothing to confirm or contradict.",
                  ""]
    elif rows:
        lines += claim_table(rows)
    return lines + exploratory(exp, runs) + experiment_figures(number, exp, runs, dataset, fig_dir)


def glance(claims, rows: dict[int, list[ev.Row]]) -> list[str]:
    lines = ["## Verdicts at a glance", "", "| # | experiment | the write-up's claim | verdicts of its claim items |",
             "|---|---|---|---|"]
    for number, exp in claims.items():
        claimed = [r for r in rows.get(number, []) if r.claimed]
        tally = ", ".join(f"{sum(r.verdict == x for r in claimed)} {x}" for x in v.VERDICTS
                          if any(r.verdict == x for r in claimed)) or ("no reported number" if not exp.reported
                                                                       else "—")
        lines.append(f"| {number} | {cell(exp.title)} | {cell(exp.claim)} | {tally} |")
    return lines + [""]


def baselines_section(baselines: dict[str, str], experiments, runs: dict[str, ev.RunData]) -> list[str]:
    """Where the write-up's numbers for what is here one network (the shared baselines) disagree."""
    reported = {run: [(n, i.value) for n, e in experiments.items() for i in e.values
                      if i.run == run and i.metric == "test_accuracy"] for run in baselines if run in runs}
    values = [x for found in reported.values() for _, x in found]
    if len(values) < 2:
        return []
    lines = ["## One baseline, several reported numbers", ""]
    for run, found in reported.items():
        if found:
            lines.append(f"- Experiments {', '.join(str(n) for n, _ in found)} compare against `{run}` "
                         f"({baselines[run]}): the write-up reports "
                         f"{', '.join(f'{x:.2f} % (exp. {n})' for n, x in found)}; "
                         f"ours {runs[run].describe('test_accuracy', 'percent')}.")
    return lines + ["", f"The write-up's numbers for this one network span {max(values) - min(values):.2f} pts "
                        f"({min(values):.2f}–{max(values):.2f} %). Where that spread exceeds our seed-to-seed "
                        "spread, the write-up's experiments did not share one setup; its *differences* within an "
                        "experiment are the comparable quantity, not its absolute numbers.", ""]


def summary_table(runs: dict[str, ev.RunData], summary: dict) -> list[str]:
    """Every run's summary over seeds: aggregate@'s summary.json, and wall time from the timing files."""
    cols = [("test_accuracy", "test acc (%)", "percent"), ("mc_test_accuracy", "MC-dropout test acc (%)", "percent"),
            ("best_val_accuracy", "best val acc (%)", "percent"), ("best_epoch", "best epoch", "epochs"),
            ("epochs", "epochs", "epochs"), ("overfit_gap", "overfit gap (pts)", "points"),
            ("train_time_s", "train time (min)", "minutes")]
    lines = ["## Summary of all runs", "", "Mean ± std over the seeds that did not diverge.", "",
             "| run | " + " | ".join(c[1] for c in cols) + " | seeds | diverged |", "|---|" + "---|" * (len(cols) + 2)]
    for r in runs.values():
        cells = []
        for metric, _, unit in cols:
            s = (summarize(list(r.values(metric).values())) if metric == "train_time_s"
                 else summary[r.name].get(metric, {"n": 0}))
            d, scale = ev.DECIMALS[unit], ev.SCALE[unit]
            cells.append("—" if not s["n"] else f"{s['mean'] * scale:.{d}f}"
                         + (f" ± {s['std'] * scale:.{d}f}" if s["std"] else ""))
        lines.append(f"| `{r.name}` | " + " | ".join(cells)
                     + f" | {summary[r.name]['seeds']} | {summary[r.name]['diverged_seeds']} |")
    return lines + [""]


def header(params, dataset: str, runs: dict[str, ev.RunData], delta: float) -> list[str]:
    seeds = list(params.seeds)
    own = {n: r.seeds for n, r in runs.items() if r.seeds != seeds}
    lines = [f"# Chapter 11 — results on {DATASET_TITLES[dataset]}", "",
             f"Generated by `python -m stages.report {dataset}` from metrics/{dataset}/ and ch11/claims.yaml "
             "(the write-up's reported numbers).", "",
             f"**Seeds:** {', '.join(map(str, seeds))} for every run"
             + (" except " + "; ".join(f"`{n}`: {', '.join(map(str, s))}" for n, s in own.items()) if own else "")
             + f". **Backend:** {', '.join(sorted({i['backend'] for r in runs.values() for i in r.infos.values()}))}.",
             "", HOW_TO_READ.replace("{delta}", f"{delta:g}")]
    capped = {k: x for k, x in params.limits.model_dump().items() if x is not None}
    if capped:
        lines += ["**Fast profile:** params.yaml `limits` caps every run (" + ", ".join(f"{k}={x}" for k, x in
                                                                                     capped.items())
                  + "): these numbers are NOT comparable with the write-up's.", ""]
    if dataset == "fashion_mnist" and params.cifar_runs:
        lines += [f"**CIFAR-10** (experiment 14 and exercise 8: {len(params.cifar_runs)} runs) is reported in "
                  "`reports/cifar10/results.md`. Where `download@cifar10` cannot obtain the dataset (no internet "
                  "and no local copy), that report is absent: its numbers await a machine with the dataset.", ""]
    return lines


def read_summary(dataset: str, runs: dict[str, ev.RunData]) -> dict:
    path = paths.summary(dataset)
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PipelineError(f"cannot read {path} ({exc}): run `python -m stages.aggregate {dataset}` "
                            "(or `dvc repro`) first.") from exc
    missing = sorted(set(runs) - set(summary))
    if missing:
        raise PipelineError(f"{path} has no summary of {', '.join(missing)}: it is older than params.yaml. "
                            f"Run `python -m stages.aggregate {dataset}` (or `dvc repro`) first.")
    return summary


def build_report(params, dataset: str, out_dir: Path) -> None:
    names = runs_of(params, dataset)
    if not names:
        raise PipelineError(f"params.yaml has no run on {dataset}; nothing to report.")
    runs = {name: ev.load_run(params, dataset, name) for name in names}
    claims = claims_mod.load()
    unknown = sorted({n for e in claims.of(dataset).values() for n in e.runs} - set(params.run_names()))
    if unknown:
        print(f"report {dataset}: claims.yaml names runs that params.yaml does not define (skipped): "
              f"{', '.join(unknown)}")
    fig_dir = out_dir / "figures"
    fig_dir.mkdir(parents=True, exist_ok=True)
    experiments = claims.of(dataset)
    rows = ev.judge(claims, dataset, runs)
    sections = []
    for number, exp in experiments.items():
        sections += experiment_section(number, exp, rows[number], runs, dataset, fig_dir)
    text = (header(params, dataset, runs, claims.delta) + glance(experiments, rows)
            + baselines_section(claims.baselines, experiments, runs) + sections
            + summary_table(runs, read_summary(dataset, runs)))
    (out_dir / "results.md").write_text("\n".join(text).rstrip() + "\n", encoding="utf-8")


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in params_mod.DATASETS:
        raise PipelineError("usage: python -m stages.report <dataset>, with <dataset> one of: "
                            f"{', '.join(params_mod.DATASETS)}.")
    dataset = argv[0]
    params = params_mod.load()
    with atomic.atomic_path(paths.report_dir(dataset), is_dir=True) as out:
        build_report(params, dataset, out)
    print(f"report {dataset}: wrote {paths.report_dir(dataset) / 'results.md'} and figures/")


if __name__ == "__main__":
    run_main(main)
