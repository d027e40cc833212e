"""The report's markdown, rendered from the findings (ch11/findings.py) and the figures already drawn: the
answer first (effects table, forest plot), then the write-up's claims, how to read them, the write-up's
single numbers, one section per experiment and the summary of all runs. Writes nothing."""
from __future__ import annotations

from collections import Counter

from ch11 import evidence as ev, verdicts as v
from ch11.findings import percent
from ch11.stats import summarize

DATASET_TITLES = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
HOST_MARK = "†"


def table(header: str, rows) -> list[str]:
    """A markdown table: ``header`` names the columns, separated by "|"; every cell is escaped."""
    def line(cells) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|").replace("\n", " ") for c in cells) + " |"
    columns = header.split("|")
    return [line(columns), "|" + "---|" * len(columns), *map(line, rows)]


def tally(rows: list[dict], key: str, order) -> str:
    """'3 helps, 1 hurts': how many rows have each value of ``key``, in ``order``."""
    counts = Counter(r[key] for r in rows)
    return ", ".join(f"{counts[x]} {x}" for x in order if counts[x])


def interval(row: dict, decimals: int = 2) -> str:
    if row["diff"] is None:
        return "—"
    return (f"{row['diff']:+.{decimals}f} [{row['ci_low']:+.{decimals}f}, {row['ci_high']:+.{decimals}f}]"
            + (f" {HOST_MARK}" if row.get("host_moved") else ""))


def p_cell(p: float | None) -> str:
    return "—" if p is None else f"{p:.2g}"


def metric_suffix(row: dict) -> str:
    metric = row.get("a_metric") or row["metric"]
    return "" if metric in ("test_accuracy", "mc_test_accuracy") else f" — {ev.metric_name(row['metric'])}"


READING_ORDER = v.READINGS + (v.NOT_TESTED,)


def by_reading(effects: list[dict]) -> list[dict]:
    """The effects in reading order (helps, no effect, hurts, unresolved, diverges), largest Δ first."""
    return sorted(effects, key=lambda r: (READING_ORDER.index(r["reading"]),
                                          -(r["diff"] if r["diff"] is not None else 0)))


def answer(found: dict, forest: str | None) -> list[str]:
    """The effects table, sorted into readings, and the forest plot right under it."""
    effects = found["effects"]
    lines = ["## What each technique does here", "",
             f"Each technique against its matched baseline — same seeds, same budget and checkpoint rule: Δ = "
             f"technique − baseline in points of test accuracy (unless the row names another metric), 95 % CI. "
             f"**no effect**: within ±{found['delta']:g} pts (equivalence test, TOST); **helps / hurts**: otherwise "
             f"different from 0; **unresolved**: neither. Both tests are Holm-adjusted over this table (p (Holm) is "
             f"the test against 0), so a CI that just excludes 0 can still read unresolved. {len(effects)} rows: "
             f"{tally(effects, 'reading', READING_ORDER)}.", ""]
    rows = ((f"**{r['reading']}**", r["label"] + metric_suffix(r), r["exp"], interval(r), p_cell(r["p_holm"]),
             r["n"] or "—", r["rule"], converged_cell(r["converged"]) + f" ({r['converged_seeds']})",
             "—" if r["claim"] is None else f"{r['claim']:+.2f}", "; ".join(r["notes"])) for r in by_reading(effects))
    lines += table("reading|technique|exp.|Δ [95 % CI]|p (Holm)|n|rule|converged|the write-up|notes", rows)
    lines += ["", f"{HOST_MARK}: a run of this row gave other numbers on a second host (measured; see How to read). "
              "converged: seeds meeting the early-stopping criterion (lowest validation loss at least its patience "
              "— 15 for fixed budgets — before the last epoch), per run; **no** when a run's majority did not.", ""]
    if forest:
        lines += [f"![Forest plot of the effects]({forest})", "",
                  "*Each effect with its 95 % CI, coloured by reading; diamond = the write-up's Δ; shaded = the "
                  f"±{found['delta']:g}-point no-effect band.*", ""]
    return lines


def converged_cell(converged: bool | None) -> str:
    return "n/a (epoch 1)" if converged is None else "yes" if converged else "**no**"


def claimed_cell(row: dict) -> str:
    """The write-up's claimed difference: its size, else its sign."""
    if row["size"] is None:
        return "A > B" if row["sign"] == "+" else "A < B"
    return f"{row['size']:+.2f} {'pts' if row['metric'] != 'epochs' else 'epochs'}"


def claims_section(found: dict) -> list[str]:
    """Every claimed difference and qualitative check of the write-up, judged."""
    comparisons = found["comparisons"]
    lines = ["## The write-up's claims", "", "Its claimed differences (run A − run B), judged on ours: "
             f"{tally(comparisons, 'verdict', v.CLAIM_VERDICTS + (v.NOT_TESTED,))}.", ""]
    rows = ((r["exp"], r["claim"] + metric_suffix(r), claimed_cell(r), interval(r), r["n"] or "—",
             p_cell(r["p_holm"]), r["rule"], converged_cell(r["converged"]), f"**{r['verdict']}**",
             "; ".join(x for x in (r["note"], r["why"]) if x)) for r in comparisons)
    lines += table("exp.|claim|the write-up|ours: Δ [95 % CI]|n|p (Holm)|rule|converged|verdict|note", rows)
    if found["checks"]:
        checks = ((r["exp"], r["claim"], r["ours"], f"**{r['verdict']}**" if r["claimed"] else
                   f"{r['verdict']} (not claimed)") for r in found["checks"])
        lines += ["", "Qualitative claims, tested seed by seed:", ""] + table("exp.|claim|ours|verdict", checks)
    return lines + [""]


HOW_TO_READ = """## How to read

- **Seeds and pairing.** Every run trains with several seeds; a seed fixes the data order (and the initial
  weights where the architecture is the same), so two runs are compared **paired** over the seeds they share
  (Welch's t-test otherwise). 95 % CIs are t intervals of the mean difference.
- **Multiplicity.** The effects table is one family, the write-up's claimed differences another: within each,
  p-values against 0 and the equivalence (TOST, ±{delta} pts) p-values are Holm-adjusted.
- **Claim verdicts.** *supported*: significant with the claimed sign and the claimed size (if any) inside our
  CI; *size excluded*: our CI excludes the claimed size, whatever p says against 0; *opposite sign*:
  significant the other way; *no effect*: only a sign was claimed and TOST shows the difference within ±{delta};
  *consistent, below resolution*: the CI holds both 0 and the claim — our seeds cannot tell them apart.
- **Rules.** "30 ep., last weights": a fixed budget, the last epoch's weights. "≤ N ep., early stopping": stop
  when validation loss has not improved for 15 epochs and restore the weights of its lowest value (the
  write-up's production rule). Both arms of a row share their rule.
- **Diverged seeds** (non-finite loss) have no accuracy: counted beside it, never averaged in.
- **Other hosts.** {host}"""


def host_rule(host: dict) -> str:
    """The host-robustness rule in a few lines, from what was measured (metrics/host_checks.json)."""
    if not host:
        return "No second host was measured: nothing is marked."
    return (f"{host['hosts']} ({host['source']}): {', '.join(f'`{r}`' for r in host['identical'])} reproduced "
            f"bit-identically (seeds {', '.join(map(str, host['seeds']))}); "
            f"{', '.join(f'`{r}`' for r in host['moved'])} did not ({host['moved_by']}). "
            f"Rows resting on a run that moved carry {HOST_MARK}; runs never measured carry no mark either way.")


def values_section(found: dict, runs: dict[str, ev.RunData], baselines: dict[str, str]) -> list[str]:
    """The write-up's absolute single numbers: outside the counts above, with why they are not comparable."""
    if not found["values"]:
        return []
    lines = ["## The write-up's single numbers", "",
             "Absolute numbers the write-up reports for one run, beside ours. *in range*: inside our 95 % "
             "prediction interval for one more run. Not counted above: the write-up reports different numbers for "
             "one and the same network in different experiments, so only its differences are comparable.", ""]
    lines += table("exp.|run — metric|the write-up|ours|one more run|verdict|note", (
        (r["exp"], f"{r['label']} — {ev.metric_name(r['metric'])}",
         ev.fmt(r["claimed"], r["unit"]) + (f" ± {r['tolerance']:g}" if r["tolerance"] else ""), r["ours"],
         "—" if not r["interval"] else "[{:.{d}f}, {:.{d}f}]".format(*r["interval"], d=ev.DECIMALS[r["unit"]]),
         r["verdict"], r["why"] or (r["note"] or "")) for r in found["values"]))
    for run, what in baselines.items():
        reported = sorted({(r["exp"], r["claimed"]) for r in found["values"]
                           if r["run"] == run and r["metric"] == "test_accuracy"})
        if len(reported) > 1 and run in runs:
            lines += ["", f"`{run}` ({what}): the write-up reports "
                          + ", ".join(f"{x:.2f} % (exp. {n})" for n, x in reported)
                          + f"; ours {runs[run].describe('test_accuracy', 'percent')}."]
    return lines + [""]


def experiment_section(number: int, exp, runs: dict[str, ev.RunData], figure_lines: list[str]) -> list[str]:
    lines = [f"## Experiment {number} — {exp.title}", "", f"> The write-up: \"{exp.claim}\"", ""]
    if exp.note:
        lines += [exp.note, ""]
    present = [n for n in exp.runs if n in runs]
    if not present:
        return lines + ["Not run in this configuration: none of its runs is in params.yaml.", ""]
    lines += ["Runs: " + ", ".join(f"{exp.runs[n]} (`{n}`, {len(runs[n].seeds)} seeds, {runs[n].rule}"
                                    + (f", {len(runs[n].diverged())} diverged" if runs[n].diverged() else "") + ")"
                                    for n in present) + ".", ""]
    still = [f"`{n}` (criterion met in {k} of {t} seeds)" for n in present for k, t in [runs[n].converged()]
             if t and k * 2 <= t]
    if still:
        lines += ["**Still improving at the end of the budget** by the early-stopping criterion (the lowest "
                  "validation loss at least the patience before the last epoch): " + ", ".join(still)
                  + ". A longer budget may change their numbers.", ""]
    clipped = [f"`{n}` in {percent(share[0])} of its steps" for n in present if (share := runs[n].clip_share())]
    if clipped:
        lines += ["Clipping changed the gradient (mean over seeds): " + ", ".join(clipped) + ".", ""]
    acted = [f"`{n}` in {runs[n].lr_acted()} of {len(runs[n].seeds)} seeds" for n in present
             if runs[n].schedule == "plateau"]
    if acted:
        lines += ["ReduceLROnPlateau lowered the learning rate: " + ", ".join(acted)
                  + " (a seed where it never acted trained at a constant rate).", ""]
    return lines + figure_lines


def summary_table(runs: dict[str, ev.RunData], summary: dict) -> list[str]:
    """Every run's summary over seeds: aggregate@'s summary.json, and wall time from the timing files."""
    cols = [("test_accuracy", "test acc (%)", "percent"), ("mc_test_accuracy", "MC-dropout test acc (%)", "percent"),
            ("best_val_accuracy", "best val acc (%)", "percent"), ("best_epoch", "best epoch", "epochs"),
            ("epochs", "epochs", "epochs"), ("logged_gap", "gap, the write-up's (pts)", "points"),
            ("overfit_gap", "gap, inference mode (pts)", "points"), ("train_time_s", "train time (min)", "minutes")]

    def mean_std(run: ev.RunData, metric: str, unit: str) -> str:
        s = (summarize(list(run.values(metric).values())) if metric in ("train_time_s", "logged_gap")
             else summary[run.name].get(metric, {"n": 0}))
        d, scale = ev.DECIMALS[unit], ev.SCALE[unit]
        if not s["n"]:
            return "—"
        return f"{s['mean'] * scale:.{d}f}" + (f" ± {s['std'] * scale:.{d}f}" if s["std"] else "")
    return ["## Summary of all runs", "", "Mean ± std over the seeds that did not diverge.", ""] + table(
        "|".join(["run", *(c[1] for c in cols), "seeds", "diverged"]),
        ([f"`{r.name}`", *(mean_std(r, metric, unit) for metric, _, unit in cols), summary[r.name]["seeds"],
          summary[r.name]["diverged_seeds"]] for r in runs.values())) + [""]


def seed_span(seeds) -> str:
    """'1–10' for a run of consecutive seeds, else the list."""
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


def header(params, dataset: str, runs: dict[str, ev.RunData]) -> list[str]:
    groups = Counter(tuple(run.seeds) for run in runs.values()).most_common()  # most runs first, else in order
    spans = "; ".join(f"{seed_span(seeds)} ({count} runs)" for seeds, count in groups)
    backends = ", ".join(sorted({i["backend"] for r in runs.values() for i in r.infos.values()}))
    lines = [f"# Chapter 11 — results on {DATASET_TITLES[dataset]}", "",
             f"Generated by `python -m stages.report {dataset}` from metrics/{dataset}/ and ch11/claims.yaml (the "
             f"write-up's numbers); the same numbers in metrics/{dataset}/effects.json. Seeds: {spans}. "
             f"Backend: {backends}.", ""]
    capped = {k: x for k, x in params.limits.model_dump().items() if x is not None}
    if capped:
        lines += ["**Fast profile:** params.yaml `limits` caps every run (" + ", ".join(f"{k}={x}" for k, x in
                  capped.items()) + "): these numbers are NOT comparable with the write-up's.", ""]
    return lines


def render(params, dataset: str, found: dict, claims, runs: dict[str, ev.RunData], summary: dict,
           figures: dict) -> str:
    """The whole results.md. ``figures``: "forest" -> its relative path, experiment number -> markdown lines."""
    lines = header(params, dataset, runs) + answer(found, figures.get("forest")) + claims_section(found)
    lines += [HOW_TO_READ.replace("{delta}", f"{found['delta']:g}").replace("{host}", host_rule(found["host_check"])),
              ""] + values_section(found, runs, claims.baselines)
    for number, exp in claims.of(dataset).items():
        lines += experiment_section(number, exp, runs, figures.get(number, []))
    lines += summary_table(runs, summary)
    if dataset == "fashion_mnist" and "cifar10" in params.datasets:
        lines += ["**CIFAR-10** (experiment 14 and exercise 8) is reported in `reports/cifar10/results.md` where "
                  "the dataset could be obtained."]
    return "\n".join(lines).rstrip() + "\n"
