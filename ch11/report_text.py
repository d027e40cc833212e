"""The report's markdown: header, how to read the verdicts, verdicts at a glance, the shared baselines, one
section per experiment (claim table, exploratory differences, figures) and the summary of all runs."""
from __future__ import annotations

import re
from pathlib import Path

from ch11 import evidence as ev, robustness, verdicts as v
from ch11.report_figures import experiment_figures
from ch11.stats import summarize

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


def read_verdict_cell(text: str) -> tuple[str, set[str]] | None:
    """The inverse of ``verdict_cell`` for a claimed row: (verdict, its alternatives); None otherwise."""
    match = re.fullmatch(r"\*\*(.+?)\*\*(?: \(another host: (.+)\))?", text.strip())
    return (match.group(1), set(re.findall(r"\*([^*]+)\*", match.group(2) or ""))) if match else None


def verdict_cell(row: ev.Row) -> str:
    """'**verdict**', with the verdicts a re-run on another host may give instead and how often."""
    if not row.claimed:
        return f"{row.verdict} (not claimed)"
    others = ", ".join(f"*{other}* {100 * share:.0f} %" for other, share in (row.alternatives or {}).items())
    return f"**{row.verdict}**" + (f" (another host: {others})" if others else "")


def claim_table(rows: list[ev.Row]) -> list[str]:
    lines = ["| claim | the write-up | ours | interval | verdict | p (raw / Holm) | note |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        p = "—" if r.p is None else f"{r.p:.2g} / {r.p_holm:.2g}" if r.p_holm is not None else f"{r.p:.2g}"
        lines.append("| " + " | ".join(cell(c) for c in (r.claim, r.reported, r.ours, r.interval, verdict_cell(r),
                                                             p, r.why)) + " |")
    return lines + [""]


def robustness_section(check: dict | None, runs: dict[str, ev.RunData], rows: dict[int, list[ev.Row]]) -> list[str]:
    """What bench/host_sensitivity.py measured on another CPU's kernels, and how firm that makes each verdict."""
    if not check:
        return []
    pairs = [(old, new) for run in check["runs"].values() for seed, old in run["committed"].items()
             if (new := run["rerun"].get(seed)) is not None and old is not None]
    moved = [abs(new - old) for old, new in pairs if new != old]
    total = sum(len(run["committed"]) for run in check["runs"].values())
    changed = sorted(check["changed"].items(), key=lambda item: int(item[0].split(":")[0].split()[-1]))
    lines = ["## Robustness: verdicts on another host", "",
             f"On {check['date']}, `bench/host_sensitivity.py` re-trained {len(check['runs'])} runs "
             f"({', '.join(f'`{r}`' for r in check['runs'])}) with {', '.join(f'`{e}`' for e in check['env'])} "
             f"on this host ({check['cpu']}) — the kernels another CPU would pick — and regenerated the "
             f"report as it stood that day from them. {total - len(moved)} of {total} seeds' test accuracies "
             "came out bit-identical; the "
             + (f"others moved by up to {100 * max(moved):.2f} pts (median {100 * sorted(moved)[len(moved) // 2]:.2f}). "
                if moved else "")
             + f"{len(changed)} of {check['verdicts']} verdicts changed" + (":" if changed else ".")]
    for claim, (old, new, *stated) in changed:
        said = "" if not stated else (" (the report had stated it as possible)" if stated[0]
                                      else " (**not** among the alternatives the report had stated)")
        lines.append(f"- {claim}: **{old}** → **{new}**{said}")
    lines += [""] + simulation_summary(check, rows)
    stale = [name for name, run in check["runs"].items() if name in runs and any(
        runs[name].values(robustness.METRIC).get(int(seed)) != old for seed, old in run["committed"].items())]
    if stale:
        lines += ["", f"Runs changed since the check (seeds it recorded now have other test accuracies): "
                      f"{', '.join(f'`{n}`' for n in stale)}; re-run `bench/host_sensitivity.py --save`."]
    return lines + [""]


def simulation_summary(check: dict, rows: dict[int, list[ev.Row]]) -> list[str]:
    """How the alternatives beside the verdicts were obtained, and how many verdicts have none."""
    r, per_run = robustness.redraw_weight(check), robustness.run_ratios(check)
    if r >= 1.0:
        return ["No seed's test accuracy moved: on this evidence another host changes no verdict."]
    judged = [x for rs in rows.values() for x in rs if x.claimed and x.alternatives is not None
              and x.verdict != v.NOT_TESTED]
    firm = sum(not x.alternatives for x in judged)
    spread = sorted(robustness.implied_weight(q, k) for q, k in per_run.values())
    return ["A host change is modelled as a partial re-draw of the seeds, calibrated on these changes "
            f"(`ch11/robustness.py`: r = {r:.2f} of each seed's deviation kept, averaged over the re-trained "
            f"runs, whose own r range from {spread[0]:.2f} to {spread[-1]:.2f}; spreads and seed pairing keep "
            f"their distribution). Every verdict on test accuracy was re-judged on {robustness.SIMULATIONS} "
            f"such re-runs: **{firm} of {len(judged)} never changed in {100 * robustness.MIN_SHARE:.0f} % or more "
            "of them**. Each of the others shows, beside it, what another host may give instead and how often "
            "(\"another host: …\"): read those as *not settled at this number of seeds*. Verdicts on other "
            "metrics (validation accuracy, epochs, checks) are not simulated."
            + (" The measured changes exceed a fresh draw of the seeds (r clipped at 0)." if r == 0 else "")]


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
    """One line per experiment: its verdicts counted, and how many of them another host may change."""
    lines = ["## Verdicts at a glance", "", "| # | experiment | the write-up's claim | verdicts of its claim items |",
             "|---|---|---|---|"]
    for number, exp in claims.items():
        claimed = [r for r in rows.get(number, []) if r.claimed]
        tally = ", ".join(f"{sum(r.verdict == x for r in claimed)} {x}" for x in v.VERDICTS
                          if any(r.verdict == x for r in claimed)) or ("no reported number" if not exp.reported
                                                                       else "—")
        shaky = sum(bool(r.alternatives) for r in claimed)
        tally += f" ({shaky} not settled: another host may change them)" if shaky else ""
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


def seed_span(seeds) -> str:
    """'1–10' for a run of consecutive seeds, else the list."""
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def header(params, dataset: str, runs: dict[str, ev.RunData], delta: float) -> list[str]:
    groups: dict[tuple, list[str]] = {}
    for name, run in runs.items():
        groups.setdefault(tuple(run.seeds), []).append(name)
    common = max(groups, key=lambda k: len(groups[k]))
    others = "; ".join(f"{seed_span(k)} for {', '.join(f'`{n}`' for n in names)}" for k, names in groups.items() if k != common)
    lines = [f"# Chapter 11 — results on {DATASET_TITLES[dataset]}", "",
             f"Generated by `python -m stages.report {dataset}` from metrics/{dataset}/ and ch11/claims.yaml "
             "(the write-up's reported numbers).", "",
             f"**Seeds:** {seed_span(common)} for every run" + (f" except: {others}" if others else "")
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
