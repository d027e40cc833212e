"""The flow's adapter to DVC: plan stages as `dvc repro` would, prepare one before its command, record it
after - the calls `dvc repro` makes, in its order, on one ``Repo``, one caller at a time.

DVC has no public API for running a stage's command elsewhere, so this module calls DVC internals
(``dvc.repo.reproduce``, ``dvc.stage.run``, ``Repo`` locking); tests/test_dvc_adapter.py checks that
contract against the pinned DVC version on a tiny project (plan, prepare, run, record, restore, skip).
DVC allows one writer per repository: every call here takes ``DVC_LOCK`` and DVC's repository lock.
"""
from __future__ import annotations

import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any

DVC_LOCK = threading.Lock()          # every DVC call of every flow run in this process, one at a time


class DvcAdapter:
    """Every DVC call a flow run makes, on one ``Repo`` opened by :meth:`plan` (the stage objects loaded
    then are the ones prepared and recorded, as in `dvc repro`). Each call takes ``DVC_LOCK`` and DVC's
    repository lock, and works from the project root; ``close()`` releases the Repo."""

    LOCK_TRIES = 10  # DVC waits 3 s per try: someone else's `dvc status` may hold the lock a while

    def __init__(self, root: Path, allow_missing: bool = False):
        self.root = str(root)
        self.allow_missing = allow_missing   # as `dvc repro --allow-missing`: absent but unchanged outputs
        self._repo = None
        self.stages: dict[str, Any] = {}
        self.upstream: dict[str, list[str]] = {}

    def close(self) -> None:
        with DVC_LOCK:
            if self._repo is not None:
                self._repo.close()
                self._repo = None

    @contextmanager
    def repo(self):
        from dvc.lock import LockError
        from dvc.repo import Repo

        with DVC_LOCK:
            # DVC resolves targets and stage addresses against the working directory (its CLI runs in
            # the project): work from the project root while DVC_LOCK is held. The commands never
            # depend on it (they get an explicit cwd), and no other DVC call can run meanwhile.
            previous = os.getcwd()
            os.chdir(self.root)
            try:
                if self._repo is None:
                    self._repo = Repo(self.root)
                repo = self._repo
                for attempt in range(self.LOCK_TRIES):
                    try:
                        repo.lock.lock()
                        break
                    except LockError:
                        if attempt == self.LOCK_TRIES - 1:
                            raise
                        time.sleep(1.0)
                # What dvc.repo.lock_repo does once it holds the lock (its depth counter keeps DVC's own
                # @locked methods from locking again)
                repo._lock_depth += 1
                try:
                    repo._reset()
                    with repo.scm_context(quiet=True):
                        yield repo
                finally:
                    repo._reset()
                    repo._lock_depth -= 1
                    repo.lock.unlock()
            finally:
                os.chdir(previous)

    def plan(self, targets: list[str] | None) -> tuple[list[str], dict[str, list[str]]]:
        """The stages to look at, in `dvc repro`'s order, and each one's upstream stages among them.
        Targets are resolved by DVC itself (``dvc repro --glob``): stage names, foreach groups (``train``)
        and globs (``train@e04_*``)."""
        from dvc.repo.reproduce import get_active_graph, plan_repro

        with self.repo() as repo:
            graph = get_active_graph(repo.index.graph)
            chosen = list(graph)
            if targets:
                wanted = {stage.addressing for stage in collect_targets(repo, targets)}
                chosen = [stage for stage in graph if stage.addressing in wanted]
            order = plan_repro(graph, chosen)
            names = {stage.addressing for stage in order}
            upstream = {stage.addressing: sorted(dep.addressing for dep in graph.successors(stage)
                                                 if dep.addressing in names) for stage in order}
        self.stages = {stage.addressing: stage for stage in order}
        self.upstream = upstream
        return [stage.addressing for stage in order], upstream

    def prepare(self, name: str) -> tuple[str, Any]:
        """What `dvc repro` does for stage ``name`` before its command: ("skipped", None) when unchanged;
        ("restored", None) when its outputs came out of the cache; else ("run", (commands, cwd, env))
        with the outputs removed and the deps saved, ready for the command."""
        from dvc.repo.reproduce import _reproduce_stage
        from dvc.stage.cache import RunCacheNotFoundError
        from dvc.stage.run import _enforce_cmd_list, _make_cmd, get_executable

        with self.repo() as repo:
            stage = self.stages[name]
            # With allow_missing, a dependency that is an upstream stage's absent output counts as
            # changed only when that stage's recorded output differs (DVC's own rule).
            missing = {"allow_missing": self.allow_missing,
                       "upstream": [self.stages[up] for up in self.upstream.get(name, [])]}
            if stage.frozen or not stage.cmd or stage.is_import:
                # Nothing to run in parallel (data sources, imports, frozen stages): let DVC do it all.
                return ("restored" if _reproduce_stage(stage, **missing) else "skipped"), None
            if not stage.changed(**missing):
                return "skipped", None
            stage.remove_outs(ignore_remove=False, force=False)
            try:
                repo.stage_cache.restore(stage)  # dvc.lock's own entry, or the run cache
            except RunCacheNotFoundError:
                stage.save_deps()
                executable = get_executable()
                commands = [_make_cmd(executable, cmd) for cmd in _enforce_cmd_list(stage.cmd)]
                env = {"DVC_ROOT": repo.root_dir, "DVC_STAGE": stage.addressing}
                return "run", (commands, stage.wdir, env)
            self._save(stage)
            stage.dump(update_pipeline=False)
            return "restored", None

    def outlook(self, names: list[str]) -> dict[str, str]:
        """What :meth:`prepare` should find for each planned stage of ``names``, looked at before anything
        runs (each upstream stage taken to write what dvc.lock records): 'run' (command, params or deps
        changed, or outputs neither present nor cached), 'cached' (outputs to check out of the DVC cache)
        or 'unchanged'. For the flow's cost line; changes nothing."""
        found = {}
        with self.repo():
            for name in names:
                stage = self.stages[name]
                upstream = [self.stages[up] for up in self.upstream.get(name, [])]
                if stage.changed_stage() or stage.changed_deps(allow_missing=True, upstream=upstream):
                    found[name] = "run"
                    continue
                status = {state if out.use_cache else "not in cache"   # uncached: nothing to check out
                          for out in stage.outs for state in out.status().values()}
                if not status or (self.allow_missing and status <= {"not in cache", "deleted"}):
                    found[name] = "unchanged"
                else:
                    found[name] = "run" if status & {"not in cache", "new"} else "cached"
        return found

    def record(self, names: list[str]) -> dict[str, str]:
        """What `dvc repro` does after a stage's command - save deps and outs, commit the outs to the
        cache, write the stage's dvc.lock entry - for several finished stages at once (one read and
        write of each lock file for all of them). Returns {name: error} for those that could not be."""
        errors: dict[str, str] = {}
        with self.repo():
            saved = []
            for name in names:
                stage = self.stages[name]
                try:
                    self._save(stage)
                except Exception as exc:  # noqa: BLE001 - e.g. a declared output the command did not write
                    errors[name] = f"stage '{name}' ran but DVC could not record it: {exc}"
                else:
                    saved.append(stage)
            by_file: dict[str, list] = {}
            for stage in saved:
                by_file.setdefault(stage.dvcfile.path, []).append(stage)
            for stages in by_file.values():
                stages[0].dvcfile.dump_stages(stages, update_pipeline=False)
        return errors

    @staticmethod
    def _save(stage) -> None:
        # Stage.run's tail, as in dvc/stage/__init__.py (the dump follows, as in dvc/repo/reproduce.py)
        no_cache_outs = any(not out.use_cache for out in stage.outs if not (out.is_metric or out.is_plot))
        stage.save(run_cache=not no_cache_outs)
        stage.commit()


def collect_targets(repo, targets: list[str]) -> list:
    """The stages DVC resolves ``targets`` to, as `dvc repro --glob` does; a clear error naming the groups
    when a target matches nothing."""
    found, unmatched = [], []
    for target in targets:
        hits = repo.stage.collect(target, glob=True)
        found += hits
        if not hits:
            unmatched.append(target)
    if unmatched:
        groups = sorted({stage.name.split("@", 1)[0] for stage in repo.index.stages})
        raise ValueError(f"no stage matches target(s) {', '.join(map(repr, unmatched))}. Targets are stage "
                         f"names (e.g. train@baseline), groups ({', '.join(groups)}) or globs "
                         "(e.g. 'train@e04_*').")
    return found
