"""Seeds trained in parallel worker processes give exactly the serial loop's outputs, and a parallel stage
killed with SIGKILL (the stage itself, or one of its workers) resumes to those same outputs."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ch11.sandbox import project_copy
from tests.fixtures import needs_fashion_mnist
from tests.helpers import child_env, epochs_done, module, run_outputs

pytestmark = [pytest.mark.slow, needs_fashion_mnist]
RUN = "e13_production"   # dropout (RNG state), BN, momentum, ReduceLROnPlateau, EarlyStopping
SEEDS = [1, 2, 3]
LIMITS = {"max_epochs": 6, "max_train_samples": 2000, "max_eval_samples": 500}


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    root = project_copy(tmp_path_factory.mktemp("parallel"), runs=[RUN], seeds=SEEDS, limits=LIMITS)
    module(root, "stages.download", "fashion_mnist", check=True)
    module(root, "stages.validate", "fashion_mnist", check=True)
    return root


def train(root: Path, workers: int) -> str:
    done = module(root, "stages.train", RUN, env=child_env(CH11_WORKERS=str(workers)), check=True)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def serial(project) -> dict[str, str]:
    out = train(project, 1)
    assert f"{len(SEEDS)} seed(s) on 1 worker(s)" in out
    return run_outputs(project, RUN)


def test_parallel_workers_reproduce_the_serial_loop_byte_for_byte(project, serial):
    out = train(project, 2)
    assert f"{len(SEEDS)} seed(s) on 2 worker(s)" in out, out
    assert f"seed 1: epoch 1/{LIMITS['max_epochs']}, val acc" in out   # progress from inside a worker
    assert f"1 of {len(SEEDS)} seed(s) done" in out
    assert run_outputs(project, RUN) == serial


def children(pid: int) -> list[int]:
    tasks = Path(f"/proc/{pid}/task")
    return [int(c) for task in tasks.iterdir() for c in (task / "children").read_text().split()]


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def start_and_kill(root: Path, victim: str) -> subprocess.CompletedProcess:
    """Start a 2-worker stage, SIGKILL the stage (``victim='stage'``) or one worker once some epoch is
    checkpointed; return how it ended."""
    with (root / f"killed-{victim}.log").open("w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "stages.train", RUN], cwd=root, stdout=log,
                                stderr=subprocess.STDOUT, env=child_env(CH11_WORKERS="2"))
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any(epochs_done(root)) and proc.poll() is None:
        time.sleep(0.05)
    workers = children(proc.pid)
    assert proc.poll() is None and len(workers) >= 2, "the kill must land while the workers train"
    os.kill(proc.pid if victim == "stage" else workers[-1], signal.SIGKILL)
    code = proc.wait(timeout=120)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(w) for w in workers):
        time.sleep(0.1)
    assert not any(alive(w) for w in workers), "a worker outlived its stage"
    return subprocess.CompletedProcess(proc.args, code, (root / f"killed-{victim}.log").read_text(), "")


@pytest.mark.parametrize("victim", ["stage", "worker"])
def test_a_killed_parallel_stage_resumes_to_the_serial_outputs(project, serial, victim):
    for path in (project / "models" / RUN, project / "metrics" / "fashion_mnist" / "train" / RUN):
        for file in path.iterdir():
            file.unlink()
    ended = start_and_kill(project, victim)
    assert ended.returncode != 0
    if victim == "worker":   # the stage says what happened in one line, no traceback
        assert "error: a worker training run" in ended.stdout and "Traceback" not in ended.stdout, ended.stdout
    assert any(0 < n < LIMITS["max_epochs"] for n in epochs_done(project)), "nothing was left to resume"
    out = train(project, 2)
    assert "resuming from its last finished epoch" in out
    assert run_outputs(project, RUN) == serial
