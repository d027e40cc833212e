"""Stage aggregate@<dataset>: per-run mean, std, n, min, max over seeds -> metrics/<dataset>/summary.json,
and each run's headline numbers -> metrics/<dataset>/runs/<run>.json (its DVC metrics: ch11/report/dvc_metrics.py).

Usage: python -m stages.aggregate <dataset>
Reads only the (run, seed) pairs that params.yaml names today, never stale files of removed seeds.
"""
from __future__ import annotations

from ch11 import atomic, paths, params as params_mod
from ch11.report.dvc_metrics import run_metrics, runs_dir, write_files
from ch11.errors import PipelineError, run_main
from ch11.report.stats import aggregate, per_seed_metrics, runs_of


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in params_mod.DATASETS:
        raise PipelineError(f"usage: python -m stages.aggregate <dataset>, one of {', '.join(params_mod.DATASETS)}")
    dataset = argv[0]
    params = params_mod.load()
    summary = {run: aggregate(list(per_seed_metrics(params, dataset, run).values()))
               for run in runs_of(params, dataset)}
    atomic.write_json(paths.summary(dataset), summary)
    write_files(runs_dir(dataset), {run: run_metrics(s) for run, s in summary.items()})
    print(f"aggregate {dataset}: {len(summary)} runs")


if __name__ == "__main__":
    run_main(main)
