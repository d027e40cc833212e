"""Prefect flow ``ch11-pipeline``: the DVC pipeline's stale stages run in parallel, recorded as `dvc repro` would.

Everything about the pipeline comes from DVC itself (dvc.yaml, dvc.lock, params.yaml); nothing here lists stages:

* plan: the targets (stage names such as ``train@e04_elu``, group names such as ``train``, or fnmatch
  globs such as ``train@e04_*``; default: every stage) plus all their upstream stages, taken from
  ``Repo.index.graph`` in `dvc repro`'s order (frozen stages cut off from their upstream, as there);
* a stage is looked at when all its upstream stages are done, and goes ahead only if DVC finds it changed
  (``Stage.changed()``: command, deps, params or outs differ from dvc.lock) - the very check `dvc repro`
  makes at that point, so a stage whose upstream ran but wrote identical outputs is skipped;
* a changed stage's outputs are removed, then checked out of DVC's cache when dvc.lock or the run cache
  already holds them (as `dvc repro` does); otherwise its command runs as a Prefect task, in a subprocess
  with the stage's working directory, up to ``concurrency`` at once (thread pool, or an existing Dask
  cluster), the deepest ready stage first (each evaluation soon after its training), then the longest by
  the recorded seed times (no long training left to start last). Retries are the
  stages' own (download@ backs off per URL, params.yaml `download.retries`): the flow adds none;
* after the command succeeds the stage is saved, its cached outputs committed to .dvc/cache and its
  dvc.lock entry written - the same calls, in the same order, that `dvc repro` makes after a command.

DVC allows one writer per repository (its own lock is dropped while a command runs, so concurrent
`dvc repro -s` calls race for it). Here every DVC call - status, removal, restore, commit, lock-file
write - goes through flows/dvc_adapter.py from the flow's thread, one at a time, under DVC's repository
lock, on the one ``Repo`` and stage objects loaded when planning (as `dvc repro` keeps them); only the
commands run in parallel. Stages whose commands end together are written to dvc.lock in one go: each
write re-reads and re-writes the whole file, seconds with a full-size dvc.lock
(`dvc repro` pays that per stage).

Before anything runs, the flow says what the planned trainings cost by the recorded timings
(flows/estimates.py): in all, what is unchanged or in the DVC cache, and what is left to run.

Cores and devices (flows/host.py): cores follow the work. The commands that start together share the cores
with those still running: each gets ``CH11_WORKERS = max(1, cores // commands running)`` seeds at once, each
in a process of one thread (``CH11_THREADS=1``, as under `dvc repro`, so results never depend on it), so the
one changed training among unchanged stages trains its seeds on every core; ``concurrency`` (commands at
once) defaults to the core count. On a GPU host (``nvidia-smi -L`` or
``CUDA_VISIBLE_DEVICES``; no framework is imported here) ``concurrency`` defaults to ``per_gpu`` (8)
trainings per visible GPU, each pinned to one GPU with ``CUDA_VISIBLE_DEVICES`` and allocating memory
as it needs it (JAX: no pre-allocation; TensorFlow: memory growth). With a
Dask cluster the workers must see the project at the same path, and the GPU pinning assumes they share
this host's GPUs.

Why a dispatch loop rather than ``task.submit(wait_for=upstream)``: Prefect resolves ``wait_for`` inside the
worker, so a submitted stage would hold one of the ``concurrency`` workers while its upstream still runs
(evaluations submitted early would idle the slots that trainings need), and each stage's DVC check and
restore must happen after its upstream is recorded, in the one thread that talks to DVC. The loop below
hands Prefect's task runner (``ThreadPoolTaskRunner`` or ``DaskTaskRunner``) only stages that are ready,
so every worker runs a command, and records finished ones in batches.

SIGINT (Ctrl-C) or SIGTERM, to the flow or its whole process group, stops every running stage command (each
runs in its own process group), starts nothing more and ends the flow and its local Prefect server within
seconds, with one line and exit code 130/143, waiting on no server (flows/stopping.py); finished stages stay
recorded, and a re-run resumes each interrupted training from its last finished epoch. (Commands running
on a Dask cluster's workers are other processes: the signal stops the flow there, not them.)

A failing command fails the flow with the stage's own message (the last lines of its stderr); stages
already finished, and those still running at that moment, are recorded in dvc.lock; nothing new starts
unless ``keep_going`` (then only the failed stage's downstream is left out, like `dvc repro -k`).

Artifacts: table ``ch11-run-metrics`` (every metrics/*/eval/*.json) and markdown ``ch11-reports`` (links
to reports/*/results.md, figures and validation Data Docs).

Runs with Prefect's ephemeral local server (no PREFECT_API_URL needed)::

    python -m flows.pipeline                                   # every stale stage
    python -m flows.pipeline --targets 'train@e04_*' --concurrency 2
    python -m flows.pipeline --targets aggregate --dask-address tcp://127.0.0.1:8786
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# A first run on a fresh machine creates Prefect's SQLite database while the ephemeral server starts,
# which can take longer than Prefect's 20 s default on a busy 2-core host: give it 2 minutes.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from prefect import flow, get_run_logger  # noqa: E402 - after the setting above
from prefect.states import Failed, State  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from ch11.paths import PROJECT_ROOT  # noqa: E402
from flows import stopping  # noqa: E402
from flows.artifacts import publish_artifacts  # noqa: E402
from flows.dvc_adapter import DvcAdapter  # noqa: E402
from flows.estimates import cost_line, recorded_seconds, seed_times, training_run  # noqa: E402
from flows.host import cpu_cores, visible_gpus  # noqa: E402
from flows.scheduler import STOP, Scheduler, StageFailed, stop_commands  # noqa: E402

# Trainings per GPU. Measured by the team on one H200 with Keras-JAX (team notes, outside this repository):
# 8 production-MLP trainings at once ran at 2.2-2.9 s/epoch each vs 1.4 s alone, ~4.7x the throughput of one.
PER_GPU = 8


# --------------------------------------------------------------------------------------------------------
# The flow


@flow(name="ch11-pipeline")
def ch11_pipeline(targets: list[str] | None = None, concurrency: int | None = None,
                  dask_address: str | None = None, project_dir: str | None = None, keep_going: bool = False,
                  per_gpu: int = PER_GPU, stage_timeout_s: float | None = None,
                  allow_missing: bool = False) -> dict[str, list[str]] | State:
    """Bring the targets (default: every stage) and their upstream up to date, like `dvc repro`, running
    independent stage commands in parallel.

    Args:
        targets: stage names, groups (``train``) or fnmatch globs (``train@e04_*``); default all stages.
        concurrency: commands at once; default ``per_gpu`` x the visible GPUs, else the CPU cores.
        per_gpu: trainings sharing one GPU (the models are small: one leaves most of a GPU idle).
        stage_timeout_s: a command running longer is killed and its stage fails with that reason.
        dask_address: run the commands on this existing Dask scheduler instead of a thread pool.
        project_dir: the DVC project; default the one this file belongs to.
        keep_going: after a failure, still run what does not depend on the failed stage.
        allow_missing: as `dvc repro --allow-missing`: a stage whose outputs are absent (a clone without
            the DVC cache) but whose command, deps and params are unchanged is skipped.
    """
    stopping.reclaim()
    logger = get_run_logger()
    root = Path(project_dir or PROJECT_ROOT).resolve()
    book = DvcAdapter(root, allow_missing)
    try:
        return _run(book, root, targets, concurrency, dask_address, keep_going, per_gpu, logger,
                    stage_timeout_s)
    except StageFailed as exc:   # the flow fails with the stages' messages, without a Python traceback
        return Failed(message=str(exc), data=exc)
    finally:
        book.close()


def _run(book: DvcAdapter, root: Path, targets, concurrency, dask_address, keep_going, per_gpu, logger,
         stage_timeout_s=None) -> dict[str, list[str]]:
    gpus = visible_gpus()
    cores = cpu_cores()
    if concurrency is not None and concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    order, upstream = book.plan(targets)
    concurrency = concurrency or per_gpu * len(gpus) or cores
    logger.info("%d stage(s) to check in %s; up to %d command(s) at once, sharing %d cores (CH11_WORKERS), %s",
                len(order), root, concurrency, cores, f"GPUs {', '.join(gpus)}" if gpus else "CPU only")
    timed = set(seed_times(root))
    logger.info("%s", cost_line(root, book.outlook([name for name in order if training_run(name) in timed]),
                                max(concurrency, cores)))
    if dask_address:
        from prefect_dask import DaskTaskRunner

        runner = DaskTaskRunner(address=dask_address)
    else:
        runner = ThreadPoolTaskRunner(max_workers=concurrency)
    try:
        with runner:
            # on a GPU host a command's workers share its one GPU: at most per_gpu of them
            scheduler = Scheduler(book, order, upstream, runner, concurrency, cores, gpus, keep_going, logger,
                                  stage_timeout_s, recorded_seconds(root), per_gpu if gpus else None)
            try:
                summary = scheduler.run()
            except BaseException:   # Prefect's TerminationSignal (SIGTERM) or Ctrl-C: before the runner
                stop_commands()     # waits for its tasks, end their commands
                raise
    finally:
        try:
            if not STOP.is_set():   # stopping: its server may be gone (flows/stopping.py)
                publish_artifacts(root)
        except Exception as exc:  # noqa: BLE001 - never hide the run's own outcome behind an artifact error
            logger.warning("could not publish the artifacts: %s", exc)
    logger.info("ran %d, restored %d, skipped %d (unchanged)", len(summary["ran"]), len(summary["restored"]),
                len(summary["skipped"]))
    if scheduler.errors:
        message = "\n\n".join(scheduler.errors.values())
        left = summary["blocked"] + summary["not_started"]
        if left:
            message += f"\n\nNot run because of this: {', '.join(left)}."
        raise StageFailed(message)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m flows.pipeline", description=__doc__.split("\n\n")[0])
    parser.add_argument("--targets", nargs="+", metavar="TARGET",
                        help="stage names, groups or fnmatch globs, e.g. 'train@e04_*' (default: all stages)")
    parser.add_argument("--concurrency", type=int,
                        help="commands at once (default: --per-gpu x GPUs, else CPU cores)")
    parser.add_argument("--stage-timeout", type=float, help="seconds a stage command may run (default: no limit)")
    parser.add_argument("--per-gpu", type=int, default=PER_GPU,
                        help=f"trainings sharing one GPU (default {PER_GPU})")
    parser.add_argument("--dask-address", help="address of an existing Dask scheduler, e.g. tcp://host:8786")
    parser.add_argument("--project-dir", help="the DVC project (default: this checkout)")
    parser.add_argument("--keep-going", action="store_true", help="after a failure, run what does not depend on it")
    parser.add_argument("--allow-missing", action="store_true",
                        help="skip stages whose outputs are absent but unchanged (a clone without the DVC cache)")
    args = parser.parse_args(argv)
    stopping.install()
    try:
        summary = ch11_pipeline(targets=args.targets, concurrency=args.concurrency, dask_address=args.dask_address,
                                project_dir=args.project_dir, keep_going=args.keep_going, per_gpu=args.per_gpu,
                                stage_timeout_s=args.stage_timeout, allow_missing=args.allow_missing)
    except BaseException as exc:
        if stopping.RECEIVED:     # whatever the flow's end raised after the signal: the one line instead
            stopping.exit_now()
        if not isinstance(exc, StageFailed):
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if stopping.RECEIVED:
        stopping.exit_now()
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
