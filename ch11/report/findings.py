"""The report's numbers, computed once: every effect of ch11/report/claims.yaml against its matched baseline and every
claim of the write-up judged, each comparison estimated and adjusted once (ch11/report/inference.py) and read off its
adjusted CI (ch11/report/verdicts.py), as a JSON-ready dict. stages/report.py writes it to
metrics/<dataset>/effects.json (a DVC metric); the markdown and the figures render it. No files written here."""
from __future__ import annotations

from ch11.report import evidence as ev, inference as inf, verdicts as v
from ch11.report.claims import Check, Claims, Comparison, Effect, Value


def key_of(item) -> inf.Key:
    return item.a, getattr(item, "a_metric", None) or item.metric, item.b, item.metric


def slug(key: inf.Key) -> str:
    """A comparison's stable, filesystem-safe id, e.g. 'e04_elu-vs-baseline' or
    'e05_bn_after-vs-baseline.epoch1_val_accuracy'."""
    a, read, b, metric = key
    return (f"{a}{'.' + read if read != metric else ''}-vs-{b}"
            + ("" if metric == "test_accuracy" else f".{metric}"))


def scale_of(metric: str) -> float:
    return 100.0 if metric in ev.PERCENT_METRICS or metric == "logged_gap" else 1.0


def numbers(key: inf.Key, est: inf.Estimate | None, adjusted: inf.Adjusted | None, delta: float) -> dict:
    """One comparison's numbers as every table shows them (None fields when it cannot be computed)."""
    if est is None or adjusted is None:
        return {"id": slug(key), "family": None, "diff": None, "ci_low": None, "ci_high": None, "ci_level": None,
                "n": None, "p": None, "p_adj": None, "model": None, "seeds_needed": None}
    out = {"id": slug(key), "family": adjusted.family, "diff": round(est.diff, 4),
           "ci_low": round(adjusted.ci_low, 4), "ci_high": round(adjusted.ci_high, 4),
           "ci_level": round(adjusted.level, 5), "n": est.n, "p": est.p(), "p_adj": adjusted.p_adj,
           "model": "seed-blocked" if est.blocked else "Welch", "seeds_needed": None}
    if abs(est.diff) >= delta and adjusted.ci_low <= 0 <= adjusted.ci_high:
        out["seeds_needed"] = inf.seeds_to_resolve(est, adjusted.level, est.diff)
    return out


def qualifiers(runs: dict[str, ev.RunData], a: str, b: str, metric: str) -> dict:
    """What qualifies a comparison: the rule, whether every seed of both runs met the early-stopping criterion
    (None where it cannot apply: a metric read after epoch 1, a schedule that anneals to its last epoch by
    design), the counts."""
    pair = distinct(runs[a], runs[b])
    counts = [r.converged() for r in pair]
    applies = metric != "epoch1_val_accuracy" and all(r.schedule != "onecycle" for r in pair)
    return {"rule": runs[a].rule, "converged": all(k == n for k, n in counts) if applies else None,
            "converged_seeds": ", ".join(f"{k}/{n}" for k, n in counts)}


def distinct(a: ev.RunData, b: ev.RunData) -> list[ev.RunData]:
    return [a] if a is b else [a, b]


def percent(share: float) -> str:
    """A share in percent; near 0 and 1 with the decimals that keep "rarely" from reading "never" and
    "almost always" from reading "always"."""
    return f"{100 * share:.{2 if 0 < share < 0.01 else 1 if 0.99 < share < 1 else 0}f} %"


def notes_for(a: ev.RunData, b: ev.RunData) -> list[str]:
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


def effect_row(item: Effect, runs: dict[str, ev.RunData], shared: dict) -> dict:
    a, b = runs[item.a], runs[item.b]
    row = {"exp": item.exp, "label": item.label, "a": item.a, "b": item.b, "metric": item.metric,
           "a_metric": item.a_metric, "claim": item.claim, "notes": notes_for(a, b),
           **qualifiers(runs, item.a, item.b, item.metric), **shared}
    if a.rule != b.rule:
        row["notes"].append(f"rules differ: `{b.name}` {b.rule}")
    if row["seeds_needed"]:
        row["notes"].append(f"~{row['seeds_needed']} seeds would resolve it at this spread")
    if len(a.diverged()) * 2 >= len(a.seeds) > 0 and not b.diverged():
        row["reading"] = v.DIVERGES
    elif row["diff"] is None:
        row["reading"] = v.NOT_TESTED
    else:
        row["reading"] = v.effect_reading(row["ci_low"], row["ci_high"], shared["delta"])
    del row["delta"]
    return row


def value_row(item: Value, runs: dict[str, ev.RunData], label: str) -> dict:
    run = runs[item.run]
    vals = list(run.values(item.metric, ev.SCALE[item.unit]).values())
    interval = v.prediction_interval(vals)
    row = {"run": item.run, "label": label, "metric": item.metric, "unit": item.unit, "claimed": item.value,
           "tolerance": item.tolerance, "note": item.note, "ours": run.describe(item.metric, item.unit),
           "interval": list(interval) if interval else None}
    why = not_lr_tested(item.requires_lr_change, runs) if item.compare else item.note or "shown, not tested"
    return {**row, "verdict": v.NOT_TESTED if why else v.value_verdict(vals, item.value, item.tolerance), "why": why}


def not_lr_tested(run: str | None, runs: dict[str, ev.RunData]) -> str:
    if run and run in runs and not runs[run].lr_acted():
        return (f"`{run}`'s schedule never changed the learning rate in any seed, so it ran as constant LR: "
                "the claim about the schedule is untested, not null")
    return ""


def comparison_row(item: Comparison, why: str, runs: dict[str, ev.RunData], labels: dict[str, str],
                   shared: dict) -> dict:
    row = {"claim": f"{labels[item.a]} − {labels[item.b]}", "a": item.a, "b": item.b, "metric": item.metric,
           "sign": item.sign, "size": item.size, "note": item.note, "why": why,
           **qualifiers(runs, item.a, item.b, item.metric), **shared}
    row["verdict"] = v.NOT_TESTED if why or row["diff"] is None else v.claim_verdict(
        row["ci_low"], row["ci_high"], 1 if item.sign == "+" else -1, item.size, shared["delta"])
    del row["delta"]
    return row


def check_row(item: Check, runs: dict[str, ev.RunData]) -> dict:
    run = runs[item.run]
    passed, detail = [], ""
    if item.kind == "variance_ratio":
        per_seed = [[x["weight_var"] / x["theory_var"] for x in rows if x.get("weight_var") is not None]
                    for rows in ev.layer_rows(run).values()]
        passed = [all(abs(x - 1) <= item.tolerance for x in r) for r in per_seed]
        if ratios := sum(per_seed, []):
            detail = f"variance / theory {min(ratios):.3f}–{max(ratios):.3f} over every layer"
    elif item.kind == "activation_stability":
        # rows[:-1]: the hidden layers (the last row is the output layer)
        hidden = [[x.get("activation_std") for x in rows[:-1]] for rows in ev.layer_rows(run).values()]
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
            detail = f"{ev.metric_name(item.metric)} {min(vals):.2f}–{max(vals):.2f} %"
        if run.diverged():
            detail += f" ({len(run.diverged())} of {len(run.seeds)} seeds diverged: not counted)"
    return {"run": item.run, "claim": item.text, "claimed": item.claimed,
            "ours": f"{detail}; holds in {sum(passed)} of {len(passed)} seeds" if passed else detail or "no data",
            "verdict": v.check_verdict(passed)}


def design(claims: Claims, dataset: str, runs: dict[str, ev.RunData]):
    """The comparisons the report makes: the write-up's claims (exp, item, why untested), the effects, every
    comparison once (key -> the experiment whose model estimates it: a claim's, else its first effect's), and
    the two families (confirmatory: the claims the data can test; exploratory: the other effects)."""
    experiments = claims.of(dataset)
    present = lambda *names: all(n in runs for n in names)  # noqa: E731
    claimed = [(number, item, not_lr_tested(item.requires_lr_change, runs))
               for number, exp in experiments.items() for item in exp.comparisons if present(item.a, item.b)]
    effects = [item for item in claims.effects if item.exp in experiments and present(item.a, item.b)]
    keys = {k: e for k, e in reversed([(key_of(i), n) for n, i, _ in claimed] + [(key_of(i), i.exp) for i in effects])}
    confirmatory = {key_of(i) for _, i, why in claimed if not why}
    return claimed, effects, keys, confirmatory, {key_of(i) for i in effects} - confirmatory


def findings(claims: Claims, dataset: str, runs: dict[str, ev.RunData], hosts: list[dict]) -> dict:
    """Everything the report states, as numbers and verdicts (module docstring). Each comparison is estimated once
    and belongs to one family: confirmatory when it is a claim of the write-up that the data can test, else
    exploratory; every table that shows it shows the same numbers."""
    experiments = claims.of(dataset)
    present = lambda *names: all(n in runs for n in names)  # noqa: E731
    claimed, effects, keys, confirmatory, exploratory = design(claims, dataset, runs)
    judged = inf.infer(keys, confirmatory, exploratory,
                       lambda run, read, metric: runs[run].values(read, scale_of(metric)))
    shared = {k: {**numbers(k, *judged[k], claims.delta), "delta": claims.delta} for k in keys}
    comparisons = [{"exp": number, **comparison_row(item, why, runs, experiments[number].runs,
                                                    shared[key_of(item)])} for number, item, why in claimed]
    for row in comparisons:
        if row["why"]:
            row.update(p=None, p_adj=None)
    values, checks = [], []
    for number, exp in experiments.items():
        values += [{"exp": number, **value_row(i, runs, exp.runs[i.run])} for i in exp.values if present(i.run)]
        checks += [{"exp": number, **check_row(i, runs)} for i in exp.checks if present(i.run)]
    return {"dataset": dataset, "delta": claims.delta, "alpha": inf.ALPHA, "host_checks": hosts,
            "families": {f: sum(1 for _, a in judged.values() if a and a.family == f)
                         for f in (inf.CONFIRMATORY, inf.EXPLORATORY)},
            "effects": [effect_row(item, runs, shared[key_of(item)]) for item in effects],
            "comparisons": comparisons, "values": values, "checks": checks,
            "runs": {name: {"seeds": run.seeds, "diverged": len(run.diverged()), "rule": run.rule,
                            "converged_seeds": run.converged()[0], "lr_acted_seeds": run.lr_acted()}
                     for name, run in runs.items()}}
