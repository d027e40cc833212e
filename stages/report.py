"""Stage report@<dataset>: numbers first, then words: metrics/<dataset>/effects.json and reports/<dataset>/.

Usage: python -m stages.report <dataset>
The numbers: ch11/report/findings.py (ch11/report/inference.py); effects.json is a plain output; each effect is
also a DVC metric, metrics/<dataset>/effects/<id>.json (`dvc metrics diff` shows how it moved).
The figures: ch11/report/figures.py; results.md: ch11/report/text.py and ch11/report/report.md.j2; curves/: each
experiment's mean validation curves, the data of its DVC plot. Written atomically.
No Keras.
"""
from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from ch11 import atomic, paths, params as params_mod
from ch11.report import claims as claims_mod, dvc_metrics
from ch11.errors import PipelineError, run_main
from ch11.report.findings import findings, load_run
from ch11.report.figures import draw, mean_curves
from ch11.report.text import render
from ch11.report.stats import runs_of


def read_host_checks(dataset: str) -> list[dict]:
    """What other hosts measured for ``dataset`` (runs bit-identical there, runs that moved), if anything."""
    if not paths.HOST_CHECKS.exists():
        return []
    fix = f"restore it with `git checkout {paths.HOST_CHECKS}`."
    try:
        found = json.loads(paths.HOST_CHECKS.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PipelineError(f"cannot read {paths.HOST_CHECKS} ({exc}): {fix}") from exc
    checks = found.get(dataset, []) if isinstance(found, dict) else None
    if not isinstance(checks, list):
        raise PipelineError(f"{paths.HOST_CHECKS} must map each dataset to a list of host checks: {fix}")
    for i, check in enumerate(checks):
        if missing := {"hosts", "source", "seeds", "identical", "moved", "moved_by"} - set(check):
            raise PipelineError(f"{paths.HOST_CHECKS}: check {i + 1} for {dataset} lacks "
                                f"{', '.join(sorted(missing))}; add them (see the other checks) or remove it.")
    return checks


def effects_metrics(found: dict) -> dict:
    """effects.json: each comparison once by its id, with its family, numbers and words (reading where it is an
    effect, verdict where it is a claim; a claim that is also an effect has both); each rule pair by its two
    effects' ids, its change (first − second) and reading."""
    fields = ("family", "diff", "ci_low", "ci_high", "ci_level", "n", "p", "p_adj")
    out: dict[str, dict] = {}
    for r in found["effects"]:
        out.setdefault(r["id"], {f: r[f] for f in fields})["reading"] = r["reading"]
    for r in found["comparisons"]:
        out.setdefault(r["id"], {f: r[f] for f in fields})["verdict"] = r["verdict"]
    pairs = [{"first": p["first"]["id"], "second": p["second"]["id"],
              **{f: p.get(f) for f in ("diff", "ci_low", "ci_high", "ci_level", "n", "p_adj", "reading")}}
             for p in found["rule_pairs"]]
    return {"alpha": found["alpha"], "delta": found["delta"], "families": found["families"], "comparisons": out,
            "rule_pairs": pairs}


def write_curves(path: Path, curves: list[dict]) -> None:
    """The experiment's mean validation curves, one row per (run, epoch): the data of its DVC plot."""
    if not curves:
        return
    frame = pd.concat([pd.DataFrame({"epoch": c["epochs"], "run": c["label"], "val_accuracy": c["mean"].round(3),
                                     "seeds": c["counts"]}) for c in curves])
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.dropna(subset=["val_accuracy"]).to_csv(path, index=False)


def build_report(params, dataset: str, out_dir: Path) -> dict:
    names = runs_of(params, dataset)
    if not names:
        raise PipelineError(f"params.yaml has no run on {dataset}; nothing to report.")
    runs = {name: load_run(params, dataset, name) for name in names}
    claims = claims_mod.load()
    unknown = sorted({n for e in claims.of(dataset).values() for n in e.runs} - set(params.run_names()))
    if unknown:
        print(f"report {dataset}: claims.yaml names runs that params.yaml does not define (skipped): "
              f"{', '.join(unknown)}")
    found = findings(claims, dataset, runs, read_host_checks(dataset))
    drawn = draw(claims.of(dataset), found, runs, dataset, out_dir / "figures")
    for number, exp in claims.of(dataset).items():
        write_curves(out_dir / "curves" / f"exp{number:02d}.csv", mean_curves(exp, runs))
    forest = pd.DataFrame(found["effects"], columns=["id", "label", "diff", "ci_low", "ci_high"])
    forest.drop_duplicates("id").dropna().to_csv(out_dir / "effects.csv", index=False)   # `dvc plots diff`
    (out_dir / "results.md").write_text(render(params, dataset, found, claims, runs, drawn), encoding="utf-8")
    return found


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in params_mod.DATASETS:
        raise PipelineError("usage: python -m stages.report <dataset>, with <dataset> one of: "
                            f"{', '.join(params_mod.DATASETS)}.")
    dataset = argv[0]
    params = params_mod.load()
    with atomic.atomic_path(paths.report_dir(dataset), is_dir=True) as out:
        found = build_report(params, dataset, out)
    atomic.write_json(paths.effects(dataset), effects_metrics(found))
    dvc_metrics.write_files(dvc_metrics.effects_dir(dataset), dvc_metrics.effect_metrics(found["effects"]))
    print(f"report {dataset}: wrote {paths.report_dir(dataset) / 'results.md'}, figures/ and {paths.effects(dataset)}")


if __name__ == "__main__":
    run_main(main)
