"""The flow's faults, under real Prefect runs: a hanging stage, a failing one quoted without import noise, a
flaky download retried by the stage alone, and the whole flow SIGKILLed mid-run then rerun."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ch11.sandbox import SMOKE_LIMITS, project_copy
from tests.fixtures import needs_fashion_mnist, write_cifar_archive
from tests.helpers import FLOW_CONCURRENCY as CONCURRENCY, FLOW_RUNS as RUNS, FLOW_TARGETS as TARGETS, \
    PROJECT_ROOT as REPO, child_env, digest, digests, dvc, dvc_lock as lock, program, run as run_child
from tests.programs.noisy_failure import REASON

pytestmark = [pytest.mark.slow, needs_fashion_mnist]


def test_a_hanging_stage_is_killed_at_its_timeout_with_a_clear_message(prefect, tmp_path):
    from prefect import flow

    from flows.scheduler import StageFailed, run_stage_command

    @flow
    def one_stage():
        return run_stage_command("sleepy", [program("stuck")], str(tmp_path), child_env(), timeout_s=2)

    started = time.monotonic()
    with pytest.raises(StageFailed, match=r"stage 'sleepy' timed out: .* ran longer than 2 s \(--stage-timeout\)"):
        one_stage()
    assert time.monotonic() - started < 60


def test_a_failing_stage_is_quoted_without_tensorflows_import_notices(prefect, tmp_path):
    from prefect import flow

    from flows.scheduler import StageFailed, run_stage_command

    @flow
    def one_stage():   # the child prints TensorFlow's two import notices before its reason
        return run_stage_command("noisy", [program("noisy_failure")], str(tmp_path), child_env())

    with pytest.raises(StageFailed) as failed:
        one_stage()
    assert str(failed.value).endswith(f"exited with code 3:\n  {REASON}")


# ------------------------------------------------------------------------------------------------------
# (c) a flaky download: one retry layer


def test_a_flaky_download_is_retried_by_the_stage_alone(tmp_path, pipeline, serve):
    """One retry layer: the download stage's own back-off (params.yaml), never multiplied by Prefect's."""
    archive = write_cifar_archive(tmp_path / "archive", per_batch=20)  # 5 x 20 train, 20 test images
    data = archive.read_bytes()
    root = project_copy(tmp_path / "project", runs=RUNS, seeds=[1], limits=SMOKE_LIMITS)

    def attempt(fail: int, retries: int):
        server = serve({f"/cifar/{archive.name}": data}, fail=fail)
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["download"].update(local_dirs=[], retries=retries, backoff_s=0.01, timeout_s=10)
        params["download"]["cifar10"].update(urls=[f"{server.url}/cifar/"], mirrors=[],
                                             files={archive.name: {"sha256": hashlib.sha256(data).hexdigest(),
                                                                   "hash_of": "file"}})
        params["validate"]["cifar10"].update(rows={"train": 100, "test": 20}, validation_size=20)
        params["datasets"] = ["fashion_mnist", "cifar10"]   # opt-in: the archive is available here
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        state = pipeline(targets=["validate@cifar10"], concurrency=CONCURRENCY, project_dir=str(root),
                         return_state=True)
        return state, server.requests

    state, requests = attempt(fail=1, retries=0)
    assert state.is_failed() and len(requests) == 1  # no retry configured: tried once, not by Prefect again
    state, requests = attempt(fail=2, retries=2)
    assert state.is_completed(), state.message
    assert state.result()["ran"] == ["download@cifar10", "validate@cifar10"]
    assert requests == [f"/cifar/{archive.name}"] * 3  # 503, 503, then 200: the stage's own back-off
    assert digest(root / "data" / "raw" / "cifar10" / archive.name) == digest(archive)
    assert {"download@cifar10", "validate@cifar10"} <= set(lock(root))

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (FlowRunFilter, FlowRunFilterId, TaskRunFilter,
                                                TaskRunFilterName)

    with get_client(sync_client=True) as client:
        runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id])),
            task_run_filter=TaskRunFilter(name=TaskRunFilterName(any_=["download@cifar10"])))
    assert [run.run_count for run in runs] == [1]


# ------------------------------------------------------------------------------------------------------
# (f) fault drill: the whole flow killed with SIGKILL mid-run, then rerun


def flow_cli(root: Path) -> list[str]:
    return [sys.executable, "-m", "flows.pipeline", "--targets", *TARGETS, "--concurrency", "2",
            "--project-dir", str(root)]


def results(root: Path) -> dict[str, str]:
    files = sorted((root / "models").rglob("*.npz")) + sorted((root / "metrics/fashion_mnist").rglob("*.json"))
    return digests([p for p in files if "/timing/" not in p.as_posix()], root)


def test_a_flow_killed_mid_run_resumes_to_the_uninterrupted_result(tmp_path, env):
    limits = {**SMOKE_LIMITS, "max_epochs": 4, "max_train_samples": 3000}
    clean = project_copy(tmp_path / "clean", runs=RUNS, seeds=[1], limits=limits)
    killed = project_copy(tmp_path / "killed", runs=RUNS, seeds=[1], limits=limits)
    run_child(flow_cli(clean), REPO, check=True, timeout=900)

    proc = subprocess.Popen(flow_cli(killed), cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not list(killed.glob(".checkpoints/*/state/state.json")):
        time.sleep(0.1)
    os.killpg(proc.pid, 9)  # the flow and every stage command it started, at once
    proc.wait()
    finished = set(lock(killed)) if (killed / "dvc.lock").exists() else set()
    assert not {f"train@{run}" for run in RUNS} <= finished, "the kill must land while training runs"

    rerun = run_child(flow_cli(killed), REPO, check=True, timeout=900)
    summary = json.loads(rerun.stdout[rerun.stdout.index("{"):])
    assert not finished & set(summary["ran"]), "a stage that had finished before the kill ran again"
    assert json.loads(dvc(killed, "status", "-q", "--json", *TARGETS).stdout or "{}") == {}
    assert results(killed) == results(clean)
    assert not list(killed.rglob("*.tmp"))  # no half-written output left behind
