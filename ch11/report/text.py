"""The report's markdown: every table cell and every number its prose states, computed from the findings
(ch11/report/findings.py), the runs and the figures already drawn; ch11/report/report.md.j2 lays them out (the answer
first, then the write-up's claims, how to read them, its single numbers, one section per experiment and the
summary of all runs). Writes nothing."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import jinja2

from ch11.report import findings as fd, verdicts as v
from ch11.report.findings import by_reading, percent
from ch11.report.stats import summarize

TEMPLATE = Path(__file__).resolve().parent / "report.md.j2"
DATASET_TITLES = {"fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10"}
SUMMARY_COLUMNS = [  # metric, column title, unit
    ("test_accuracy", "test acc (%)", "percent"), ("mc_test_accuracy", "MC-dropout test acc (%)", "percent"),
    ("best_val_accuracy", "best val acc (%)", "percent"), ("best_epoch", "best epoch", "epochs"),
    ("epochs", "epochs", "epochs"), ("logged_gap", "gap, the write-up's (pts)", "points"),
    ("overfit_gap", "gap, inference mode (pts)", "points"), ("train_time_s", "train time (min)", "minutes")]


def tally(rows: list[dict], key: str, order) -> str:
    """'3 helps; 1 hurts': how many rows have each value of ``key``, in ``order``."""
    counts = Counter(r[key] for r in rows)
    return "; ".join(f"{counts[x]} {x}" for x in order if counts[x])


def interval(row: dict) -> str:
    """A difference and its CI, '+1.23 [+0.50, +1.96]', with more decimals where two would print a bound on an edge
    its word is defined on (verdicts.decimals_to_show)."""
    if row["diff"] is None:
        return "—"
    d = row["ci_decimals"]
    return f"{row['diff']:+.{d}f} [{row['ci_low']:+.{d}f}, {row['ci_high']:+.{d}f}]"


def metric_suffix(row: dict) -> str:
    metric = row.get("a_metric") or row["metric"]
    return "" if metric in ("test_accuracy", "mc_test_accuracy") else f" — {fd.metric_name(row['metric'])}"


def p_cell(p: float | None) -> str:
    return "—" if p is None else f"{p:.2g}"


def converged_cell(row: dict) -> str:
    """yes: every seed met the early-stopping criterion; **no** with the counts per run (n/a for a run it cannot
    apply to); n/a where it applies to neither run (a metric read after epoch 1)."""
    if row["converged"] is None:
        return "n/a"
    return "yes" if row["converged"] else f"**no** ({row['converged_seeds']})"


def claimed_cell(row: dict) -> str:
    """The write-up's claimed difference: its size, else its sign."""
    if row["size"] is None:
        return "A > B" if row["sign"] == "+" else "A < B"
    return f"{row['size']:+.2f} {'pts' if row['metric'] != 'epochs' else 'epochs'}"


def value_cells(r: dict) -> dict:
    """A row of the write-up's single numbers: the claim, ours and our prediction interval for one more run."""
    d = fd.DECIMALS[r["unit"]]
    claimed = f"{r['claimed']:.{d}f}{fd.SUFFIX[r['unit']]}" + (f" ± {r['tolerance']:g}" if r["tolerance"] else "")
    one_more = "—" if not r["interval"] else "[{:.{d}f}, {:.{d}f}]".format(*r["interval"], d=d)
    return {"exp.": r["exp"], "run — metric": f"{r['label']} — {fd.metric_name(r['metric'])}",
            "the write-up": claimed, "ours": r["ours"], "one more run": one_more, "verdict": r["verdict"],
            "note": r["why"] or (r["note"] or "")}


def repeated_values(found: dict, runs: dict[str, fd.RunData], baselines: dict[str, str]) -> list[dict]:
    """Shared baselines for which the write-up reports several different test accuracies, with ours."""
    out = []
    for run, what in baselines.items():
        reported = sorted({(r["exp"], r["claimed"]) for r in found["values"]
                           if r["run"] == run and r["metric"] == "test_accuracy"})
        if len(reported) > 1 and run in runs:
            out.append({"run": run, "what": what, "reported": ", ".join(f"{x:.2f} % (exp. {n})" for n, x in reported),
                        "ours": runs[run].describe("test_accuracy", "percent")})
    return out


def experiment(number: int, exp, runs: dict[str, fd.RunData], figures: list[dict]) -> dict:
    """One experiment's section: its runs present, those still improving, clipping and plateau schedules."""
    present = [runs[n] for n in exp.runs if n in runs]
    converged = {r.name: c for r in present if (c := r.converged())}
    return {"number": number, "exp": exp, "figures": figures,
            "runs": [f"{exp.runs[r.name]} (`{r.name}`, {len(r.seeds)} seeds, {r.rule}"
                     + (f", {len(r.diverged())} diverged" if r.diverged() else "") + ")" for r in present],
            "still": [f"`{n}` (criterion met in {k} of {t} seeds)" for n, (k, t) in converged.items() if k < t],
            "clipped": [f"`{r.name}` in {percent(share[0])} of its steps" for r in present
                        if (share := r.clip_share())],
            "acted": [f"`{r.name}` in {r.lr_acted()} of {len(r.seeds)} seeds" for r in present
                      if r.schedule == "plateau"]}


def mean_std(run: fd.RunData, metric: str, unit: str) -> str:
    """A summary-table cell: mean ± std over the seeds that did not diverge."""
    s = summarize([x for seed, x in run.values(metric, fd.SCALE[unit]).items() if seed not in run.diverged()])
    d = fd.DECIMALS[unit]
    if not s["n"]:
        return "—"
    return f"{s['mean']:.{d}f}" + (f" ± {s['std']:.{d}f}" if s["std"] else "")


def seed_span(seeds) -> str:
    """'1–10' for a run of consecutive seeds, else the list."""
    seeds = list(seeds)
    if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)):
        return f"{seeds[0]}–{seeds[-1]}"
    return ", ".join(map(str, seeds))


GROUPS = {"test_accuracy": "Final test accuracy",
          "epoch1_val_accuracy": "Speed of learning: validation accuracy after epoch 1",
          "logged_gap": "Overfitting gap (the write-up's: logged train − validation accuracy, last epoch)"}


def effect_record(r: dict, exps: dict[int, str]) -> dict:
    """One row of an effects table, cells named by their column."""
    return {"reading": f"**{r['reading']}**", "technique": r["label"], "exp.": exps[r["exp"]],
            "Δ [adjusted CI]": interval(r), "p (adj.)": p_cell(r["p_adj"]), "family": r["family"] or "—",
            "n": r["n"] or "—", "rule": r["rule"], "converged": converged_cell(r),
            "the write-up": "—" if r["claim"] is None else f"{r['claim']:+.2f}", "notes": "; ".join(r["notes"])}


def claim_record(r: dict, exps: dict[int, str]) -> dict:
    return {"exp.": exps[r["exp"]], "claim": r["claim"] + metric_suffix(r), "the write-up": claimed_cell(r),
            "ours: Δ [adjusted CI]": interval(r), "n": r["n"] or "—", "p (adj.)": p_cell(r["p_adj"]),
            "rule": r["rule"], "converged": converged_cell(r), "verdict": f"**{r['verdict']}**",
            "note": "; ".join(x for x in (r["note"] and f"the write-up: {r['note']}", r["why"], *r["notes"]) if x)}


def effect_groups(effects: list[dict], exps: dict[int, str]) -> list[dict]:
    """The effects table split by what it measures (final test accuracy first), each in reading order."""
    return [{"title": title, "tally": tally(rows, "reading", v.READINGS),
             "rows": [effect_record(r, exps) for r in rows]}
            for metric, title in GROUPS.items() if (rows := by_reading([r for r in effects if r["metric"] == metric]))]


def listed(rows: list[dict]) -> str:
    """'label +1.23; label +0.31 (< δ)': a row read helps or hurts by less than δ says so."""
    return "; ".join(f"{r['label']} {r['diff']:+.2f}" + (" (< δ)" if r["reading"].endswith("< δ") else "")
                     for r in rows)


def rule_pair_record(p: dict) -> dict:
    """One row of the rule-pairs table: the effect under each rule (its Δ and reading) and how much it changes."""
    def under(r: dict) -> str:
        return ("—" if r["diff"] is None else f"{r['diff']:+.2f}") + f" ({r['rule']}; {r['reading']})"
    return {"technique": p["label"], "Δ under the first rule": under(p["first"]),
            "Δ under the second rule": under(p["second"]), "change: first − second [adjusted CI]": interval(p),
            "n": p["n"] or "—", "p (adj.)": p_cell(p["p_adj"]), "reading": f"**{p['reading']}**",
            "notes": "; ".join(p["notes"])}


def rule_sentence(pairs: list[dict]) -> list[str]:
    """The first screen's sentence on effects that change with the rule (none when no effect has two rules)."""
    if not pairs:
        return []
    depends = [p for p in pairs if p["reading"] in (v.DEPENDS, v.DEPENDS_SLIGHTLY)]
    rest = tally([p for p in pairs if p not in depends], "reading", (v.SAME_UNDER_BOTH, v.UNRESOLVED, v.NOT_TESTED))
    listed = "; ".join(f"{p['label']} {p['first']['diff']:+.2f} at {p['first']['rule']} vs {p['second']['diff']:+.2f} "
                       f"at {p['second']['rule']}, change {p['diff']:+.2f}"
                       + (" (< δ)" if p["reading"] == v.DEPENDS_SLIGHTLY else "") for p in depends)
    return ["**Depends on the budget and checkpoint rule** (one technique under two rules; the change's adjusted CI "
            f"excludes 0): {listed or 'none'}" + (f"; the other pairs: {rest}" if rest else "") + "."]


def answer(found: dict) -> list[str]:
    """The first screen in plain sentences, from the final-accuracy effects and the claim verdicts."""
    final = [r for r in found["effects"] if r["metric"] == "test_accuracy" and r["diff"] is not None]
    pick = lambda *readings: by_reading([r for r in final if r["reading"] in readings])  # noqa: E731
    helps, hurts = pick(v.HELPS, v.HELPS_SLIGHTLY), pick(v.HURTS, v.HURTS_SLIGHTLY)[::-1]
    same, still = pick(v.NO_EFFECT), pick(v.UNRESOLVED)
    big = [r for r in still if abs(r["diff"]) >= found["delta"]]
    diverges = [r["label"] for r in found["effects"] if r["reading"] == v.DIVERGES]
    delta = f"±{found['delta']:g}"
    still_open = f"**Still open** (CI holds 0 and reaches past {delta}): {len(still)}"
    if big:
        still_open += (f"; with |Δ| ≥ {found['delta']:g} pts: "
                       + "; ".join(f"{r['label']} {r['diff']:+.2f}"
                                   + (f" ({fd.would_resolve(r)})" if r["seeds_needed"] else "") for r in big)
                       + f"; the other {len(still) - len(big)} are estimated inside {delta}")
    return [
        f"**Helps** final test accuracy (adjusted CI above 0; Δ in points): {listed(helps) or 'nothing'}.",
        f"**Hurts**: {listed(hurts) or 'nothing'}." + (f" **Diverges**: {', '.join(diverges)}." if diverges else ""),
        f"**No measurable difference** (CI inside {delta} pts): {listed(same) or 'none'}.",
        still_open + ".",
        *rule_sentence(found["rule_pairs"]),
        f"**The write-up's {len(found['comparisons'])} claimed differences**: "
        + tally(found["comparisons"], "verdict", v.CLAIM_VERDICTS) + "."]


def render(params, dataset: str, found: dict, claims, runs: dict[str, fd.RunData], figures: dict) -> str:
    """The whole results.md. ``figures``: "forest" -> its relative path, experiment number -> its figures."""
    groups = Counter(tuple(run.seeds) for run in runs.values()).most_common()  # most runs first, else in order
    capped = {k: x for k, x in params.limits.model_dump().items() if x is not None}
    exps = {n: e.name.replace("Exercise ", "ex. ") if e.name else str(n) for n, e in claims.of(dataset).items()}
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)
    env.filters.update(cell=lambda c: str(c).replace("|", "\\|").replace("\n", " "), code=lambda x: f"`{x}`")
    text = env.from_string(TEMPLATE.read_text(encoding="utf-8")).render(
        title=DATASET_TITLES[dataset], dataset=dataset, delta=f"{found['delta']:g}",
        alpha=f"{found['alpha']:g}", families=found["families"],
        seeds="; ".join(f"{seed_span(seeds)} ({count} runs)" for seeds, count in groups),
        backends=", ".join(sorted({i["backend"] for r in runs.values() for i in r.infos.values()})),
        capped=", ".join(f"{k}={x}" for k, x in capped.items()), answer=answer(found),
        effect_groups=effect_groups(found["effects"], exps), forest=figures.get("forest"),
        rule_pairs=[rule_pair_record(p) for p in found["rule_pairs"]],
        rule_pairs_tested=sum(p["diff"] is not None for p in found["rule_pairs"]),
        claims_tally=tally(found["comparisons"], "verdict", v.CLAIM_VERDICTS),
        comparisons=[claim_record(r, exps) for r in found["comparisons"]],
        checks=[{"exp.": r["exp"], "claim": r["claim"], "ours": r["ours"],
                 "verdict": f"**{r['verdict']}**" if r["claimed"] else f"{r['verdict']} (not claimed)"}
                for r in found["checks"]],
        hosts=found["host_checks"], values=[value_cells(r) for r in found["values"]],
        repeated=repeated_values(found, runs, claims.baselines),
        experiments=[experiment(n, exp, runs, figures.get(n, [])) for n, exp in claims.of(dataset).items()],
        summary=[{"run": f"`{r.name}`", **{title: mean_std(r, metric, unit) for metric, title, unit in SUMMARY_COLUMNS},
                  "seeds": len(r.seeds), "diverged": len(r.diverged())} for r in runs.values()],
        cifar=dataset == "fashion_mnist" and "cifar10" in params.datasets)
    return text.rstrip() + "\n"
