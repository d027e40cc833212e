"""The generic part of the flow: run a DVC pipeline's stale stages' commands in parallel as Prefect tasks,
each prepared and recorded through flows/dvc_adapter.py exactly as `dvc repro` would (flows/pipeline.py's
docstring tells how and why). Nothing here knows this project's stages or outputs."""
from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections import deque
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import Failed, State

from flows.dvc_adapter import DvcAdapter
from flows.host import command_env, workers_per_command

STDERR_TAIL = 8                      # lines of a failed command's stderr quoted in the error
# Lines TensorFlow prints on every import, before its logging is set up (so TF_CPP_MIN_LOG_LEVEL cannot
# silence them): known, harmless, left out of the stage logs and of quoted errors.
KNOWN_NOISE = re.compile(r"^WARNING: All log messages before absl::InitializeLog\(\) is called are written to "
                         r"STDERR$|port\.cc:\d+\] oneDNN custom operations are on\.")
FINISHED = ("ran", "restored", "skipped")


class StageFailed(Exception):
    """A stage's command exited non-zero, or DVC could not prepare or record the stage; says which and why."""


STOP = threading.Event()            # set on SIGINT/SIGTERM (flows/stopping.py): start nothing more
COMMANDS: dict[subprocess.Popen, str] = {}   # the stage commands running now (each in its own process
COMMANDS_LOCK = threading.Lock()             # group), and their stages
STOPPED: list[str] = []    # stages whose commands stop_commands() ended
RECORDED: list[str] = []   # stages this process ran and recorded in dvc.lock


def stop_commands() -> None:
    """Stop every running stage command (SIGTERM to its process group: the stage and its workers)."""
    STOP.set()
    with COMMANDS_LOCK:
        for proc, stage in COMMANDS.items():
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            STOPPED.append(stage)


def commands_running() -> bool:
    with COMMANDS_LOCK:
        return bool(COMMANDS)


# --------------------------------------------------------------------------------------------------------
# The Prefect task: one stage's command(s), in a subprocess


@task(name="dvc-stage", cache_policy=NO_CACHE)
def run_stage_command(stage: str, commands: list[list[str]], cwd: str, env: dict[str, str],
                      timeout_s: float | None = None) -> str | State:
    """Run the stage's command(s) in ``cwd`` with ``env`` added to this worker's environment; stream the
    output to the task's log. Returns the last line of stdout, or a Failed state carrying a StageFailed that
    quotes stderr's tail, or names the timeout when a command ran longer than ``timeout_s`` (it is then
    killed): an expected failure is its message in the log, not a Python traceback."""
    try:
        return stage_commands(stage, commands, cwd, env, timeout_s)
    except StageFailed as exc:
        return Failed(message=str(exc), data=exc)


def stage_commands(stage: str, commands: list[list[str]], cwd: str, env: dict[str, str],
                   timeout_s: float | None) -> str:
    logger = get_run_logger()
    full_env = {**os.environ, **env}
    last = ""
    for argv in commands:
        logger.info("> %s", argv[-1])
        with COMMANDS_LOCK:
            if STOP.is_set():
                raise StageFailed(f"stage '{stage}' was not started: the flow is stopping")
            proc = subprocess.Popen(argv, cwd=cwd, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, errors="replace", close_fds=True, start_new_session=True)
            COMMANDS[proc] = stage
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
        with COMMANDS_LOCK:
            COMMANDS.pop(proc, None)
        if STOP.is_set() and code != 0:
            raise StageFailed(f"stage '{stage}' was stopped")
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


def depths(order: list[str], upstream: dict[str, list[str]]) -> dict[str, int]:
    """Each stage's depth in the plan: 1 without upstream stages, else one more than its deepest upstream."""
    depth: dict[str, int] = {}
    for name in order:
        depth[name] = 1 + max((depth[up] for up in upstream[name]), default=0)
    return depth


def deepest_first(order: list[str], upstream: dict[str, list[str]], estimate=lambda stage: None) -> list[str]:
    """``order`` (upstream stages first) re-sorted so that deeper stages come first: when several stages are
    ready, an evaluation goes before the next training, and a long run finishes whole branches as it goes
    instead of leaving every evaluation to the end. Among stages of one depth the longest expected
    (``estimate``, recorded seed times) goes first, so that no long training starts last beside idle
    slots; other ties keep their order."""
    depth = depths(order, upstream)
    return sorted(order, key=lambda name: (-depth[name], -(estimate(name) or 0.0)))


class Scheduler:
    """Runs the planned stages: each ready stage is prepared (DVC), its command submitted to the task
    runner when it must run, and recorded (DVC) when the command finishes; at most ``concurrency``
    commands at once. All DVC calls happen in the calling thread (the flow's), one at a time.

    Cores follow the work: the commands submitted together share the ``cores`` with those still running
    (``CH11_WORKERS``, at most ``max_workers``), so one changed training among unchanged stages gets every
    core, whatever the plan's width."""

    def __init__(self, book: DvcAdapter, order: list[str], upstream: dict[str, list[str]], runner,
                 concurrency: int, cores: int, gpus: list[str], keep_going: bool, logger,
                 stage_timeout_s: float | None = None, estimate=lambda stage: None, max_workers: int | None = None):
        self.book, self.order, self.upstream, self.runner = book, order, upstream, runner
        self.cores, self.gpus, self.keep_going, self.logger = cores, gpus, keep_going, logger
        self.stage_timeout_s, self.estimate, self.concurrency = stage_timeout_s, estimate, concurrency
        self.max_workers = max_workers or cores
        self.workers: dict[str, int] = {}
        self.began: dict[str, float] = {}
        self.took: dict[str, float] = {}
        self.state = dict.fromkeys(order, "pending")
        self.dispatch_order = deepest_first(order, upstream, estimate)
        self.free_slots = list(range(concurrency))
        self.running: dict[str, tuple[Any, int]] = {}
        self.finished: queue.Queue[str] = queue.Queue()
        self.errors: dict[str, str] = {}
        self.started = time.monotonic()
        self.done = 0

    def run(self) -> dict[str, list[str]]:
        while True:
            if (not self.errors or self.keep_going) and not STOP.is_set():
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
        """Prepare every ready stage (as many as there are free slots will run), then submit those that
        must run, together: they and the running commands share the cores."""
        ready = self._ready()
        if ready:
            share = workers_per_command(self.cores, len(self.running) + len(ready))
            for name, work in ready:
                self._submit(name, *work, workers=min(share, self.max_workers))

    def _ready(self) -> list[tuple[str, Any]]:
        ready: list[tuple[str, Any]] = []
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
                if len(ready) == len(self.free_slots):
                    return ready
                try:
                    action, work = self.book.prepare(name)
                except Exception as exc:  # noqa: BLE001 - DVC's own error, reported as the stage's
                    self._fail(name, f"stage '{name}': DVC could not prepare it: {exc}")
                    if not self.keep_going:
                        return ready
                    progress = True
                    continue
                progress = True
                if action == "run":
                    self.state[name] = "ready"
                    ready.append((name, work))
                    continue
                self.state[name] = action
                self.logger.info("%s: %s", name, "unchanged, skipped" if action == "skipped"
                                 else "outputs checked out of the DVC cache")
        return ready

    def _submit(self, name: str, commands: list[list[str]], cwd: str, env: dict[str, str], workers: int) -> None:
        slot = self.free_slots.pop(0)
        self.workers[name] = workers
        env = {**env, **command_env(slot, workers, self.gpus)}
        job = run_stage_command.with_options(name=name, task_run_name=name)
        future = self.runner.submit(job, {"stage": name, "commands": commands, "cwd": cwd, "env": env,
                                          "timeout_s": self.stage_timeout_s})
        self.state[name] = "running"
        self.began[name] = time.monotonic()
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
            self.took[name] = time.monotonic() - self.began[name]
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
                RECORDED.append(name)
                self.done += 1
                self.logger.info("%s: done and recorded in dvc.lock; %s", name, self.progress())

    def progress(self) -> str:
        """'k of N run, m min so far, ETA ~e min'. N counts the stages still to look at as if each must run
        (until DVC says they are unchanged); the ETA adds up each one's expected time - ``estimate(stage)``,
        its seeds one after another, else the mean of the commands seen so far that had no estimate - less
        what a running one has done (its time so far x its workers), over the trainings that run at once
        (the cores, or ``concurrency`` when more)."""
        now = time.monotonic()
        seen = [took for name, took in self.took.items() if self.estimate(name) is None]
        fallback = sum(seen) / len(seen) if seen else 0.0

        def expected(name: str) -> float:
            found = self.estimate(name)
            return fallback if found is None else found

        todo = [name for name, state in self.state.items() if state in ("pending", "running")]
        left = sum(max(0.0, expected(name) - (now - self.began.get(name, now)) * self.workers.get(name, 1))
                   for name in todo)
        elapsed = now - self.started
        eta = left / max(self.concurrency, self.cores) / 60
        return (f"{self.done} of {self.done + len(todo)} run, {elapsed / 60:.0f} min so far, "
                f"ETA ~{eta:.{1 if eta < 10 else 0}f} min")

    def _fail(self, name: str, message: str) -> None:
        self.state[name] = "failed"
        self.errors[name] = message
        self.logger.error("%s", message)
