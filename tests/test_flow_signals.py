"""SIGINT or SIGTERM to the flow, or to its whole process group (a terminal's Ctrl-C, coreutils `timeout`,
systemd): every stage command, the local Prefect server and the flow end within seconds, with one line last
on stderr saying what finished, no traceback and a non-zero exit; dvc.lock stays valid and a re-run resumes
the interrupted training."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from ch11.sandbox import project_copy
from tests.fixtures import needs_fashion_mnist
from tests.helpers import PROJECT_ROOT, child_env

pytestmark = [pytest.mark.slow, needs_fashion_mnist]
LIMITS = {"max_epochs": 30, "max_train_samples": 3000, "max_eval_samples": 500}
STOP_WITHIN_S = 15


def group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return any(Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z" for pid in in_group(pgid))


def cwd(proc: Path) -> Path | None:
    try:
        return Path(os.readlink(proc / "cwd"))
    except OSError:
        return None


def in_group(pgid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            found.append(int(stat.parent.name))
    return found


def start_flow(root: Path, tmp_path: Path, name: str) -> tuple[subprocess.Popen, Path]:
    """The flow on ``root``'s train@baseline in its own session (a terminal's foreground job; stage commands
    get theirs), stdout and stderr to files; returns once a training has checkpointed an epoch."""
    env = child_env(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                    KERAS_HOME=str(tmp_path / "keras"))
    env.pop("PREFECT_API_URL", None)
    out, err = tmp_path / f"{name}.out", tmp_path / f"{name}.err"
    with out.open("w") as stdout, err.open("w") as stderr:
        proc = subprocess.Popen([sys.executable, "-m", "flows.pipeline", "--targets", "train@baseline",
                                 "--project-dir", str(root)], cwd=PROJECT_ROOT, env=env, stdout=stdout,
                                stderr=stderr, start_new_session=True)
    before = {p: p.stat().st_mtime for p in root.glob(".checkpoints/*/state/state.json")}
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not [p for p in root.glob(".checkpoints/*/state/state.json")
                                               if before.get(p) != p.stat().st_mtime]:
        assert proc.poll() is None, err.read_text()[-3000:]
        time.sleep(0.2)
    return proc, err


def stop(proc: subprocess.Popen, err: Path, root: Path, how: str) -> str:
    """Send ``how``; check that the flow, its local server and every stage command end within
    STOP_WITHIN_S, with the one line last on stderr, no traceback and dvc.lock valid; returns stderr."""
    server = [pid for pid in in_group(proc.pid) if pid != proc.pid]   # the local Prefect server
    sent = time.monotonic()
    if how == "SIGINT" or how == "SIGTERM":
        proc.send_signal(getattr(signal, how))
    else:   # the whole process group: a terminal's Ctrl-C, coreutils timeout, systemd
        os.killpg(proc.pid, signal.SIGINT if how == "Ctrl-C" else signal.SIGTERM)
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the flow was still running 60 s after {how}:\n{err.read_text()[-3000:]}")
    took = time.monotonic() - sent
    text = err.read_text()
    name = "SIGINT" if how in ("SIGINT", "Ctrl-C") else "SIGTERM"
    assert took < STOP_WITHIN_S, f"{how}: the flow took {took:.1f} s to stop"
    assert code == 128 + getattr(signal, name), text[-3000:]
    assert text.strip().splitlines()[-1].startswith(f"error: interrupted by {name}: stopped train@baseline; "), \
        text[-3000:]
    assert "a re-run resumes" in text.strip().splitlines()[-1]
    assert "Traceback" not in text + (err.with_suffix(".out")).read_text(), text[-3000:]
    print(f"{how}: stopped in {took:.1f} s")
    time.sleep(2)
    assert not any(group_alive(pid) for pid in server), "the local Prefect server outlived the flow"
    assert not [p for p in Path("/proc").glob("[0-9]*") if cwd(p) == root], "a stage command outlived the flow"
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]   # valid YAML, training not recorded
    assert "validate@fashion_mnist" in lock and "train@baseline" not in lock
    return text


def project(tmp_path: Path) -> Path:
    return project_copy(tmp_path / "project", runs=["baseline"], seeds=[1, 2], limits=LIMITS)


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "Ctrl-C", "group SIGTERM"])
def test_the_flow_stops_within_seconds_and_says_so(tmp_path, how):
    root = project(tmp_path)
    stop(*start_flow(root, tmp_path, "flow"), root, how)
    states = [json.loads(p.read_text())["epochs_done"] for p in root.glob(".checkpoints/*/state/state.json")]
    assert states and all(0 < n < LIMITS["max_epochs"] for n in states), "nothing left to resume"


def test_after_sigterm_to_the_whole_group_a_rerun_resumes(tmp_path):
    """As coreutils `timeout` or systemd stop it (SIGTERM to the group, its local server included), twice."""
    root = project(tmp_path)
    stop(*start_flow(root, tmp_path, "first"), root, "group SIGTERM")
    proc, err = start_flow(root, tmp_path, "rerun")   # returns once the rerun has checkpointed one more epoch
    stop(proc, err, root, "group SIGTERM")
    assert re.search(r"train baseline seed \d+: resuming from its last finished epoch", err.read_text())
