"""The report's numbers, computed once: every effect of ch11/claims.yaml against its matched baseline and every
claim of the write-up judged (rules: ch11/verdicts.py), as a JSON-ready dict. stages/report.py writes it to
metrics/<dataset>/effects.json (a DVC metric); the markdown and the figures render it. No files written here."""
from __future__ import annotations

from ch11 import evidence as ev, verdicts as v
from ch11.claims import Check, Claims, Comparison, Effect, Value


def difference(d: v.Difference | None) -> dict:
    """The numbers of one difference (None fields when it cannot be computed)."""
    if d is None:
        return {"diff": None, "ci_low": None, "ci_high": None, "n": None, "paired": None, "p": None}
    lo, hi = d.ci()
    return {"diff": round(d.diff, 4), "ci_low": round(lo, 4), "ci_high": round(hi, 4), "n": d.n,
            "paired": d.paired, "p": d.p()}


def distinct(a: ev.RunData, b: ev.RunData) -> list[ev.RunData]:
    return [a] if a is b else [a, b]


def pair(runs: dict[str, ev.RunData], a: str, b: str, metric: str, host: dict, a_metric: str | None = None) -> dict:
    """mean(a) - mean(b) of ``metric`` (``a_metric`` read on a) and what qualifies it: the rule, whether every
    run met the early-stopping criterion in most of its seeds (None for a metric read at the end of the first
    epoch, which the budget cannot change) and the counts, whether a run moved on a second host."""
    scale = 100.0 if metric in ev.PERCENT_METRICS or metric == "logged_gap" else 1.0
    d = v.compare(runs[a].values(a_metric or metric, scale), runs[b].values(metric, scale))
    counts = [r.converged() for r in distinct(runs[a], runs[b])]
    return {"a": a, "b": b, "metric": metric, **difference(d), "rule": runs[a].rule,
            "converged": None if metric == "epoch1_val_accuracy" else all(k * 2 > n for k, n in counts),
            "converged_seeds": ", ".join(f"{k}/{n}" for k, n in counts),
            "host_moved": any(n in host.get("moved", []) for n in (a, b)), "_d": d}


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


def effect_row(item: Effect, runs: dict[str, ev.RunData], host: dict) -> dict:
    a, b = runs[item.a], runs[item.b]
    row = {"exp": item.exp, "label": item.label, "a_metric": item.a_metric, "claim": item.claim,
           "notes": notes_for(a, b), **pair(runs, item.a, item.b, item.metric, host, item.a_metric)}
    if a.rule != b.rule:
        row["notes"].append(f"rules differ: `{b.name}` {b.rule}")
    if len(a.diverged()) * 2 >= len(a.seeds) > 0 and not b.diverged():
        row["reading"] = v.DIVERGES
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


def comparison_row(item: Comparison, runs: dict[str, ev.RunData], labels: dict[str, str], host: dict) -> dict:
    row = {"claim": f"{labels[item.a]} − {labels[item.b]}", "sign": item.sign, "size": item.size, "note": item.note,
           "verdict": v.NOT_TESTED, **pair(runs, item.a, item.b, item.metric, host)}
    row["why"] = (not_lr_tested(item.requires_lr_change, runs)
                  or ("" if row["_d"] else "fewer than 2 seeds with a value"))
    if row["why"]:
        row["p"] = None
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


def holm_family(rows: list[dict], delta: float) -> list[tuple[dict, v.Difference]]:
    """Holm-adjust the p-values of ``rows`` (test against 0, and TOST within ±delta) as one family each."""
    tested = [(r, r.pop("_d")) for r in rows]
    live = [(r, d) for r, d in tested if r["p"] is not None and d is not None]
    p_holm = v.holm([r["p"] for r, _ in live])
    tost_holm = v.holm([d.tost_p(delta) for _, d in live])
    for (r, d), p, t in zip(live, p_holm, tost_holm):
        r.update(p_holm=p, tost_p=d.tost_p(delta), tost_holm=t)
    for r, _ in tested:
        r.setdefault("p_holm", None)
        r.setdefault("tost_holm", None)
    return tested


def findings(claims: Claims, dataset: str, runs: dict[str, ev.RunData], host: dict) -> dict:
    """Everything the report states, as numbers and verdicts (module docstring)."""
    experiments = claims.of(dataset)
    present = lambda *names: all(n in runs for n in names)  # noqa: E731
    effects = [effect_row(item, runs, host) for item in claims.effects
               if item.exp in experiments and present(item.a, item.b)]
    for row, d in holm_family(effects, claims.delta):
        row.setdefault("reading", v.effect_reading(d, row["p_holm"], row["tost_holm"]))
    comparisons, values, checks = [], [], []
    for number, exp in experiments.items():
        for item in exp.comparisons:
            if present(item.a, item.b):
                comparisons.append({"exp": number, **comparison_row(item, runs, exp.runs, host)})
        values += [{"exp": number, **value_row(i, runs, exp.runs[i.run])} for i in exp.values if present(i.run)]
        checks += [{"exp": number, **check_row(i, runs)} for i in exp.checks if present(i.run)]
    for row, d in holm_family(comparisons, claims.delta):
        if not row["why"]:
            row["verdict"] = v.claim_verdict(d, 1 if row["sign"] == "+" else -1, row["size"], row["p_holm"],
                                             row["tost_holm"])
    return {"dataset": dataset, "delta": claims.delta, "alpha": v.ALPHA, "host_check": host,
            "effects": effects, "comparisons": comparisons, "values": values, "checks": checks,
            "runs": {name: {"seeds": run.seeds, "diverged": len(run.diverged()), "rule": run.rule,
                            "converged_seeds": run.converged()[0], "lr_acted_seeds": run.lr_acted()}
                     for name, run in runs.items()}}
