"""Serve the ``ch11-pipeline`` flow as the deployment ``ch11-pipeline/nightly`` on a cron schedule.

A served deployment needs a Prefect API that outlives this process and that other shells can reach, so
start a local server first (the ephemeral one that `python -m flows.pipeline` uses lives only as long
as its process)::

    prefect server start                                      # shell 1 (UI on http://127.0.0.1:4200)
    export PREFECT_API_URL=http://127.0.0.1:4200/api          # shells 2 and 3
    python -m flows.deploy --cron "0 2 * * *"                 # shell 2: serve, runs nightly at 02:00
    python -m flows.deploy --cron "30 1 * * 1" --concurrency 2 --targets 'train@e04_*'   # or: Mondays 01:30

Trigger a run now, from any shell with the same PREFECT_API_URL::

    prefect deployment run 'ch11-pipeline/nightly'
    prefect deployment run 'ch11-pipeline/nightly' --param concurrency=1 --param 'targets=["aggregate"]'

The cron is in UTC. The serving process runs each flow run in a subprocess from this checkout
(project_dir defaults to it), one at a time (``limit=1``: two pipeline runs in one workspace would be two
DVC writers); a run triggered while one is going waits for it. Stopping the server (Ctrl-C) (Ctrl-C) leaves the schedule active (``pause_on_shutdown=False``), so the next `serve`
picks up where it stopped. `prefect deployment ls` / `prefect flow-run ls` show what it did.
"""
from __future__ import annotations

import argparse

from flows.pipeline import ch11_pipeline

DEPLOYMENT = "nightly"
DEFAULT_CRON = "0 2 * * *"
DESCRIPTION = "Chapter 11 pipeline: the stale DVC stages, run in parallel and recorded in dvc.lock"
TAGS = ["ch11", "dvc"]


def parameters(targets: list[str] | None = None, concurrency: int | None = None,
               dask_address: str | None = None) -> dict:
    """The deployment's default flow parameters (only those given; the flow's own defaults otherwise)."""
    given = {"targets": targets, "concurrency": concurrency, "dask_address": dask_address}
    return {key: value for key, value in given.items() if value is not None}


def build_deployment(cron: str = DEFAULT_CRON, **params):
    """The RunnerDeployment that :func:`main` serves, built without any API call (used by the tests)."""
    return ch11_pipeline.to_deployment(name=DEPLOYMENT, cron=cron, parameters=parameters(**params),
                                       description=DESCRIPTION, tags=TAGS)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cron", default=DEFAULT_CRON, help=f"cron schedule in UTC (default {DEFAULT_CRON!r})")
    parser.add_argument("--targets", nargs="+", metavar="TARGET", help="stage names, groups or globs")
    parser.add_argument("--concurrency", type=int, help="commands at once (default: GPUs, else CPU cores)")
    parser.add_argument("--dask-address", help="run commands on this existing Dask scheduler")
    args = parser.parse_args(argv)
    ch11_pipeline.serve(name=DEPLOYMENT, cron=args.cron, pause_on_shutdown=False, limit=1,
                        parameters=parameters(args.targets, args.concurrency, args.dask_address),
                        description=DESCRIPTION, tags=TAGS)


if __name__ == "__main__":
    main()
