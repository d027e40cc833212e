"""Stage report@<dataset>: the write-up's claims beside our measured numbers -> reports/<dataset>/.

Usage: python -m stages.report <dataset>
Writes reports/<dataset>/results.md and figures/*.png atomically (the folder appears complete or not at
all), from ch11/claims.yaml and every run's per-seed files under metrics/<dataset>/. Verdicts come from
ch11/evidence.py and ch11/verdicts.py, markdown from ch11/report_text.py, figures from
ch11/report_figures.py. No Keras: numpy, pandas, scipy, matplotlib.
"""
from __future__ import annotations

import json
from pathlib import Path

from ch11 import atomic, claims as claims_mod, evidence as ev, paths, params as params_mod, robustness
from ch11.errors import PipelineError, run_main
from ch11.report_text import (baselines_section, experiment_section, glance, header, robustness_section,
                              summary_table)
from ch11.results import runs_of


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


def read_host_check(dataset: str) -> dict | None:
    """bench/host_sensitivity.py's findings for ``dataset``, when that check was run for it."""
    path = paths.HOST_CHECKS
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8")).get(dataset)
    except (ValueError, AttributeError) as exc:
        raise PipelineError(f"{path} is not a JSON object of dataset -> findings ({exc}): re-run "
                            f"`python bench/host_sensitivity.py --save` or restore it with `git checkout {path}`.") from exc


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
    check = read_host_check(dataset)
    if check:
        robustness.alternatives(claims, dataset, runs, rows, robustness.redraw_weight(check))
    sections = []
    for number, exp in experiments.items():
        sections += experiment_section(number, exp, rows[number], runs, dataset, fig_dir)
    text = (header(params, dataset, runs, claims.delta) + glance(experiments, rows)
            + baselines_section(claims.baselines, experiments, runs) + robustness_section(check, runs, rows)
            + sections + summary_table(runs, read_summary(dataset, runs)))
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
