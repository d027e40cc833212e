"""Prefect flow ``ch11-pipeline``: the DVC pipeline's stale stages run in parallel, recorded as `dvc repro` would.

Everything about the pipeline comes from DVC itself (dvc.yaml, dvc.lock, params.yaml); nothing here lists stages:

* plan: the targets (stage names such as ``train@e04_relu-1``, group names such as ``train``, or fnmatch
  globs such as ``train@e04_*``; default: every stage) plus all their upstream stages, taken from
  ``Repo.index.graph`` in `dvc repro`'s order (frozen stages cut off from their upstream, as there);
* a stage is looked at when all its upstream stages are done, and goes ahead only if DVC finds it changed
  (``Stage.changed()``: command, deps, params or outs differ from dvc.lock) - the very check `dvc repro`
  makes at that point, so a stage whose upstream ran but wrote identical outputs is skipped;
* a changed stage's outputs are removed, then checked out of DVC's cache when dvc.lock or the run cache
  already holds them (as `dvc repro` does); otherwise its command runs as a Prefect task, in a subprocess
  with the stage's working directory, up to ``concurrency`` at once (thread pool, or an existing Dask
  cluster), the deepest ready stage first (each evaluation soon after its training). Retries are the
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

Threads and devices (flows/host.py): on a CPU host each command gets ``CH11_THREADS = max(1, cores // concurrency)``
and ``concurrency`` defaults to the core count. On a GPU host (``nvidia-smi -L`` or
``CUDA_VISIBLE_DEVICES``; no framework is imported here) ``concurrency`` defaults to ``per_gpu`` (8)
trainings per visible GPU, each pinned to one GPU with ``CUDA_VISIBLE_DEVICES`` and allocating memory
as it needs it (JAX: no pre-allocation; TensorFlow: memory growth). With a
Dask cluster the workers must see the project at the same path, and the GPU pinning assumes they share
this host's GPUs. ``CH11_THREADS > 1`` (fewer parallel commands than cores) may change float results
in the last bits (see ch11/backend.py), whereas `dvc repro` trains with one thread: pass
``concurrency`` >= cores for results bit-identical to it.

Why a dispatch loop rather than ``task.submit(wait_for=upstream)``: Prefect resolves ``wait_for`` inside the
worker, so a submitted stage would hold one of the ``concurrency`` workers while its upstream still runs
(evaluations submitted early would idle the slots that trainings need), and each stage's DVC check and
restore must happen after its upstream is recorded, in the one thread that talks to DVC. The loop below
hands Prefect's task runner (``ThreadPoolTaskRunner`` or ``DaskTaskRunner``) only stages that are ready,
so every worker runs a command, and records finished ones in batches.

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
import queue
import re
import subprocess
import sys
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

# A first run on a fresh machine creates Prefect's SQLite database while the ephemeral server starts,
# which can take longer than Prefect's 20 s default on a busy 2-core host: give it 2 minutes.
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")

from prefect import flow, get_run_logger, task  # noqa: E402 - after the setting above
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.task_runners import ThreadPoolTaskRunner

from flows.dvc_adapter import DvcAdapter
from flows.host import command_env, cpu_cores, visible_gpus

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STDERR_TAIL = 8                      # lines of a failed command's stderr quoted in the error
# Lines TensorFlow prints on every import, before its logging is set up (so TF_CPP_MIN_LOG_LEVEL cannot
# silence them): known, harmless, left out of the stage logs and of quoted errors.
KNOWN_NOISE = re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
                         r"STDERR$|port\.cc:\d+\] oneDNN custom operations are on\.")
METRICS_ARTIFACT = "ch11-run-metrics"
# Trainings per GPU. Measured by the team on one H200 with Keras-JAX (shared/README.md): 8 production-MLP
# trainings at once ran at 2.2-2.9 s/epoch each vs 1.4 s alone, ~4.7x the throughput of one.
PER_GPU = 8
REPORTS_ARTIFACT = "ch11-reports"
FINISHED = ("ran", "restored", "skipped")


class StageFailed(Exception):
    """A stage's command exited non-zero, or DVC could not prepare or record the stage; says which and why."""


# --------------------------------------------------------------------------------------------------------
# The Prefect task: one stage's command(s), in a subprocess


@task(name="dvc-stage", cache_policy=NO_CACHE)
def run_stage_command(stage: str, commands: list[list[str]], cwd: str, env: dict[str, str],
                      timeout_s: float | None = None) -> str:
    """Run the stage's command(s) in ``cwd`` with ``env`` added to this worker's environment; stream the
    output to the task's log. Returns the last line of stdout; raises StageFailed quoting stderr's tail, or
    naming the timeout when a command ran longer than ``timeout_s`` (it is then killed)."""
    logger = get_run_logger()
    full_env = {**os.environ, **env}
    last = ""
    for argv in commands:
        logger.info("> %s", argv[-1])
        proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, errors="replace", close_fds=True)
        tail: deque[str] = deque(maxlen=STDERR_TAIL)

        def pump(stream, keep: deque | None) -> None:
            for line in stream:
                line = line.rstrip()
                if line and not KNOWN_NOISE.search(line):
                    logger.info("%s", line)
                    if keep is not None:
                        keep.append(line)

        reader = threading.Thread(target=pump, args=(proc.stderr, tail), daemon=True)
        reader.start()
        watchdog = threading.Timer(timeout_s, proc.kill) if timeout_s else None
        if watchdog:
            watchdog.start()
        stdout_tail: deque[str] = deque(maxlen=1)
        pump(proc.stdout, stdout_tail)
        reader.join()
        code = proc.wait()
        last = stdout_tail[0] if stdout_tail else last
        if watchdog and not watchdog.is_alive():
            raise StageFailed(f"stage '{stage}' timed out: `{argv[-1]}` ran longer than {timeout_s:g} s "
                              "(--stage-timeout) and was killed; nothing was recorded. A training resumes from "
                              "its last finished epoch when rerun; raise the timeout if the stage is just slow.")
        if watchdog:
            watchdog.cancel()
        if code != 0:
            quoted = "\n".join(f"  {line}" for line in tail) or "  (nothing on stderr)"
            raise StageFailed(f"stage '{stage}' failed: `{argv[-1]}` exited with code {code}:\n{quoted}")
    return last


# --------------------------------------------------------------------------------------------------------
# The scheduler: dependencies, slots, bookkeeping between commands


def deepest_first(order: list[str], upstream: dict[str, list[str]]) -> list[str]:
    """``order`` (upstream stages first) re-sorted so that deeper stages come first, ties kept in order:
    when several stages are ready, an evaluation goes before the next training, and a long run finishes
    whole branches as it goes instead of leaving every evaluation to the end."""
    depth: dict[str, int] = {}
    for name in order:
        depth[name] = 1 + max((depth[up] for up in upstream[name]), default=0)
    return sorted(order, key=lambda name: -depth[name])


class Scheduler:
    """Runs the planned stages: each ready stage is prepared (DVC), its command submitted to the task
    runner when it must run, and recorded (DVC) when the command finishes; at most ``concurrency``
    commands at once. All DVC calls happen in the calling thread (the flow's), one at a time."""

    def __init__(self, book: DvcAdapter, order: list[str], upstream: dict[str, list[str]], runner,
                 concurrency: int, threads: int, gpus: list[str], keep_going: bool, logger,
                 stage_timeout_s: float | None = None):
        self.book, self.order, self.upstream, self.runner = book, order, upstream, runner
        self.threads, self.gpus, self.keep_going, self.logger = threads, gpus, keep_going, logger
        self.stage_timeout_s = stage_timeout_s
        self.state = dict.fromkeys(order, "pending")
        self.dispatch_order = deepest_first(order, upstream)
        self.free_slots = list(range(concurrency))
        self.running: dict[str, tuple[Any, int]] = {}
        self.finished: queue.Queue[str] = queue.Queue()
        self.errors: dict[str, str] = {}
        self.started = time.monotonic()
        self.done = 0

    def run(self) -> dict[str, list[str]]:
        while True:
            if not self.errors or self.keep_going:
                self._dispatch()
            if not self.running:
                break
            ended = [self.finished.get()]
            while True:  # all that ended meanwhile: recorded with one lock-file write
                try:
                    ended.append(self.finished.get_nowait())
                except queue.Empty:
                    break
            self._finish(ended)
        for name, state in self.state.items():
            if state == "pending":
                self.state[name] = "not started"
        return {key: [name for name in self.order if self.state[name] == state]
                for key, state in (("ran", "ran"), ("restored", "restored"), ("skipped", "skipped"),
                                   ("failed", "failed"), ("blocked", "blocked"), ("not_started", "not started"))}

    def _dispatch(self) -> None:
        progress = True
        while progress:
            progress = False
            for name in self.dispatch_order:
                if self.state[name] != "pending":
                    continue
                ups = [self.state[up] for up in self.upstream[name]]
                if any(state in ("failed", "blocked") for state in ups):
                    self.state[name] = "blocked"
                    progress = True
                    continue
                if not all(state in FINISHED for state in ups):
                    continue
                if not self.free_slots:
                    return
                try:
                    action, work = self.book.prepare(name)
                except Exception as exc:  # noqa: BLE001 - DVC's own error, reported as the stage's
                    self._fail(name, f"stage '{name}': DVC could not prepare it: {exc}")
                    if not self.keep_going:
                        return
                    progress = True
                    continue
                progress = True
                if action != "run":
                    self.state[name] = action
                    self.logger.info("%s: %s", name, "unchanged, skipped" if action == "skipped"
                                     else "outputs checked out of the DVC cache")
                    continue
                self._submit(name, *work)

    def _submit(self, name: str, commands: list[list[str]], cwd: str, env: dict[str, str]) -> None:
        slot = self.free_slots.pop(0)
        env = {**env, **command_env(slot, self.threads, self.gpus)}
        job = run_stage_command.with_options(name=name, task_run_name=name)
        future = self.runner.submit(job, {"stage": name, "commands": commands, "cwd": cwd, "env": env,
                                          "timeout_s": self.stage_timeout_s})
        self.state[name] = "running"
        self.running[name] = (future, slot)
        self.logger.info("%s: running (%s)", name, ", ".join(f"{k}={v}" for k, v in sorted(env.items())
                                                              if k not in ("DVC_ROOT", "DVC_STAGE")))
        future.add_done_callback(lambda _future, name=name: self.finished.put(name))

    def _finish(self, names: list[str]) -> None:
        """Commands that ended: failures noted, successes recorded in dvc.lock together."""
        succeeded = []
        for name in names:
            future, slot = self.running.pop(name)
            self.free_slots.append(slot)
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - the stage's failure, whatever raised it
                self._fail(name, str(exc) or repr(exc))
            else:
                succeeded.append(name)
        self.free_slots.sort()
        if not succeeded:
            return
        try:
            errors = self.book.record(succeeded)
        except Exception as exc:  # noqa: BLE001
            errors = dict.fromkeys(succeeded, f"DVC could not record {', '.join(succeeded)}: {exc}")
        for name in succeeded:
            if name in errors:
                self._fail(name, errors[name])
            else:
                self.state[name] = "ran"
                self.done += 1
                self.logger.info("%s: done and recorded in dvc.lock; %s", name, self.progress())

    def progress(self) -> str:
        """'k of N run, ETA ~m min': N counts the stages still to look at as if each must run (an upper bound
        until DVC says they are unchanged), the ETA assumes the mean time per stage so far."""
        todo = sum(state in ("pending", "running") for state in self.state.values())
        elapsed = time.monotonic() - self.started
        eta = elapsed / self.done * todo / 60
        return f"{self.done} of {self.done + todo} run, {elapsed / 60:.0f} min so far, ETA ≤ {eta:.0f} min"

    def _fail(self, name: str, message: str) -> None:
        self.state[name] = "failed"
        self.errors[name] = message
        self.logger.error("%s", message)


# --------------------------------------------------------------------------------------------------------
# Artifacts


def metric_rows(root: Path) -> list[dict[str, Any]]:
    """One row per (run, seed) of every metrics/<dataset>/eval/<run>.json: dataset, run, seed and its
    scalar metrics."""
    rows = []
    for path in sorted(root.glob("metrics/*/eval/*.json")):
        try:
            per_seed = json.loads(path.read_text(encoding="utf-8"))["per_seed"]
        except (OSError, ValueError, KeyError):
            continue
        for seed, data in per_seed.items():
            row: dict[str, Any] = {"dataset": path.parent.parent.name, "run": path.stem, "seed": int(seed)}
            row.update({key: value for key, value in data.items() if not isinstance(value, (dict, list))})
            rows.append(row)
    first = ["dataset", "run", "seed", "test_accuracy", "test_loss", "best_val_accuracy"]
    columns = list(dict.fromkeys([*(k for k in first if any(k in row for row in rows)),
                                  *(key for row in rows for key in row)]))
    return [{key: row.get(key) for key in columns} for row in rows]


def reports_markdown(root: Path) -> str:
    def link(path: Path) -> str:
        return f"[{path.relative_to(root).as_posix()}]({path.resolve().as_uri()})"

    results = sorted(root.glob("reports/*/results.md"))
    figures = sorted(path for path in root.glob("reports/**/*")
                     if path.suffix.lower() in (".png", ".svg", ".pdf")
                     and path.relative_to(root).parts[1] != "validation")
    docs = sorted(root.glob("reports/validation/*/**/index.html"))
    lines = ["# Chapter 11: reports", ""]
    lines += [f"- {link(path)}" for path in results] or ["No results.md yet: run the `report` stages."]
    if figures:
        lines += ["", "## Figures", ""] + [f"- {link(path)}" for path in figures]
    if docs:
        lines += ["", "## Data validation (Great Expectations Data Docs)", ""] + [f"- {link(path)}" for path in docs]
    return "\n".join(lines) + "\n"


def publish_artifacts(root: Path) -> None:
    rows = metric_rows(root)
    create_table_artifact(rows, key=METRICS_ARTIFACT,
                          description=f"Test metrics of every evaluated run ({len(rows)} rows), "
                                      "from metrics/*/eval/*.json")
    create_markdown_artifact(reports_markdown(root), key=REPORTS_ARTIFACT,
                             description="Reports and figures written by the pipeline")


# --------------------------------------------------------------------------------------------------------
# The flow


@flow(name="ch11-pipeline")
def ch11_pipeline(targets: list[str] | None = None, concurrency: int | None = None,
                  dask_address: str | None = None, project_dir: str | None = None, keep_going: bool = False,
                  per_gpu: int = PER_GPU, stage_timeout_s: float | None = None,
                  allow_missing: bool = False) -> dict[str, list[str]]:
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
    logger = get_run_logger()
    root = Path(project_dir or PROJECT_ROOT).resolve()
    book = DvcAdapter(root, allow_missing)
    try:
        return _run(book, root, targets, concurrency, dask_address, keep_going, per_gpu, logger,
                    stage_timeout_s)
    finally:
        book.close()


def _run(book: DvcAdapter, root: Path, targets, concurrency, dask_address, keep_going, per_gpu, logger,
         stage_timeout_s=None) -> dict[str, list[str]]:
    gpus = visible_gpus()
    cores = cpu_cores()
    concurrency = concurrency or per_gpu * len(gpus) or cores
    if concurrency < 1:
        raise ValueError(f"concurrency must be at least 1, got {concurrency}")
    threads = max(1, cores // concurrency)
    order, upstream = book.plan(targets)
    logger.info("%d stage(s) to check in %s; %d at once, CH11_THREADS=%d, %s", len(order), root, concurrency,
                threads, f"GPUs {', '.join(gpus)}" if gpus else "CPU only")
    if dask_address:
        from prefect_dask import DaskTaskRunner

        runner = DaskTaskRunner(address=dask_address)
    else:
        runner = ThreadPoolTaskRunner(max_workers=concurrency)
    try:
        with runner:
            scheduler = Scheduler(book, order, upstream, runner, concurrency, threads, gpus, keep_going,
                                  logger, stage_timeout_s)
            summary = scheduler.run()
    finally:
        try:
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
    try:
        summary = ch11_pipeline(targets=args.targets, concurrency=args.concurrency, dask_address=args.dask_address,
                                project_dir=args.project_dir, keep_going=args.keep_going, per_gpu=args.per_gpu,
                                stage_timeout_s=args.stage_timeout, allow_missing=args.allow_missing)
    except StageFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
