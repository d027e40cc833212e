"""Serve the ``ch11-pipeline`` flow as the deployment ``ch11-pipeline/scheduled`` on a cron schedule.

A served deployment needs a real Prefect API server (on an ephemeral one schedules never fire). One
command starts what is needed: without ``PREFECT_API_URL`` it starts ``prefect server start`` on
127.0.0.1:4200 (UI there; stopped with this process), then serves the deployment::

    python -m flows.deploy                                    # serve, on the CI workflow's cron (Mondays 02:00 UTC)
    python -m flows.deploy --cron "30 1 * * 1" --concurrency 2 --targets 'train@e04_*'   # or: Mondays 01:30

With ``PREFECT_API_URL`` set (a server you run yourself), it serves against that server.
Trigger a run now, from another shell (``export PREFECT_API_URL=http://127.0.0.1:4200/api``)::

    prefect deployment run 'ch11-pipeline/scheduled'
    prefect deployment run 'ch11-pipeline/scheduled' --param concurrency=1 --param 'targets=["aggregate"]'

The cron is in UTC. The serving process runs each flow run in a subprocess from this checkout
(project_dir defaults to it), one at a time (``limit=1``: two pipeline runs in one workspace would be two
DVC writers); a run triggered while one is going waits for it. Stopping (Ctrl-C) leaves the schedule active (``pause_on_shutdown=False``), so the next `serve`
picks up where it stopped. `prefect deployment ls` / `prefect flow-run ls` show what it did.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import yaml

from prefect import serve
from prefect.settings import PREFECT_API_URL, temporary_settings

from flows.pipeline import ch11_pipeline

DEPLOYMENT = "scheduled"
WORKFLOW = Path(__file__).resolve().parents[1] / ".github" / "workflows" / "scheduled.yml"


def workflow_cron(path: Path = WORKFLOW) -> str:
    """The schedule of the scheduled CI workflow: the one place the project's cron is written."""
    workflow = yaml.safe_load(path.read_text(encoding="utf-8"))
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    return triggers["schedule"][0]["cron"]


DEFAULT_CRON = workflow_cron()
DESCRIPTION = "Chapter 11 pipeline: the stale DVC stages, run in parallel and recorded in dvc.lock"
TAGS = ["ch11", "dvc"]


def parameters(targets: list[str] | None = None, concurrency: int | None = None,
               dask_address: str | None = None, project_dir: str | None = None) -> dict:
    """The deployment's default flow parameters (only those given; the flow's own defaults otherwise)."""
    given = {"targets": targets, "concurrency": concurrency, "dask_address": dask_address,
             "project_dir": project_dir}
    return {key: value for key, value in given.items() if value is not None}


def build_deployment(cron: str = DEFAULT_CRON, interval: float | None = None, **params):
    """The RunnerDeployment that :func:`main` serves (on ``cron``, or every ``interval`` s), built without any
    API call."""
    schedule = {"interval": interval} if interval else {"cron": cron}
    return ch11_pipeline.to_deployment(name=DEPLOYMENT, **schedule, parameters=parameters(**params),
                                       description=DESCRIPTION, tags=TAGS)


@contextlib.contextmanager
def api_server(port: int = 4200, timeout_s: float = 120):
    """PREFECT_API_URL when set; else a local `prefect server start` for as long as the block runs."""
    if os.environ.get("PREFECT_API_URL"):
        yield os.environ["PREFECT_API_URL"]
        return
    url = f"http://127.0.0.1:{port}/api"
    server = subprocess.Popen([sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1",
                               "--port", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"error: the local Prefect server did not start on {url} within "
                                     f"{timeout_s:g} s (port {port} in use?). Start one yourself with "
                                     "`prefect server start` and set PREFECT_API_URL.") from None
                time.sleep(0.5)
        print(f"Prefect server started: UI on http://127.0.0.1:{port}, API {url}", flush=True)
        with temporary_settings({PREFECT_API_URL: url}):
            yield url
    finally:
        server.terminate()
        server.wait(timeout=30)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m flows.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cron", default=DEFAULT_CRON, help=f"cron schedule in UTC (default {DEFAULT_CRON!r})")
    parser.add_argument("--interval", type=float, help="instead of --cron: a run every this many seconds")
    parser.add_argument("--port", type=int, default=4200, help="port of the local server started without "
                                                               "PREFECT_API_URL (default 4200)")
    parser.add_argument("--project-dir", help="the DVC project the runs work on (default: this checkout)")
    parser.add_argument("--targets", nargs="+", metavar="TARGET", help="stage names, groups or globs")
    parser.add_argument("--concurrency", type=int, help="commands at once (default: GPUs, else CPU cores)")
    parser.add_argument("--dask-address", help="run commands on this existing Dask scheduler")
    args = parser.parse_args(argv)
    deployment = build_deployment(args.cron, args.interval, targets=args.targets, concurrency=args.concurrency,
                                  dask_address=args.dask_address, project_dir=args.project_dir)
    with api_server(args.port):
        serve(deployment, pause_on_shutdown=False, limit=1)


if __name__ == "__main__":
    main()
