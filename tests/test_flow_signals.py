"""SIGINT or SIGTERM to the flow, or Ctrl-C to its whole process group (a terminal's): every stage command,
the local Prefect server and the flow end within seconds, with one line saying so and a non-zero exit;
dvc.lock stays valid and the interrupted training is left to resume."""
from __future__ import annotations

import json
import os
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


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "Ctrl-C"])
def test_the_flow_stops_within_seconds_and_says_so(tmp_path, how):
    root = project_copy(tmp_path / "project", runs=["baseline"], seeds=[1, 2], limits=LIMITS)
    env = child_env(PREFECT_HOME=str(tmp_path / "prefect"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                    KERAS_HOME=str(tmp_path / "keras"))
    env.pop("PREFECT_API_URL", None)
    log = tmp_path / "flow.log"
    with log.open("w") as out:   # its own session, as a terminal's foreground job; stage commands get theirs
        proc = subprocess.Popen([sys.executable, "-m", "flows.pipeline", "--targets", "train@baseline",
                                 "--project-dir", str(root)], cwd=PROJECT_ROOT, env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not list(root.glob(".checkpoints/*/state/state.json")):
        assert proc.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    training = [pid for pid in in_group(proc.pid) if pid != proc.pid]   # the local server
    sent = time.monotonic()
    if how == "Ctrl-C":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        proc.send_signal(getattr(signal, how))
    try:
        code = proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"the flow was still running 60 s after {how}:\n{log.read_text()[-3000:]}")
    took = time.monotonic() - sent
    text = log.read_text()
    assert took < STOP_WITHIN_S, f"{how}: the flow took {took:.1f} s to stop"
    assert code == 128 + (signal.SIGTERM if how == "SIGTERM" else signal.SIGINT), text[-3000:]
    name = "SIGTERM" if how == "SIGTERM" else "SIGINT"
    assert f"error: interrupted by {name}: the running stage commands were stopped" in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    time.sleep(2)
    assert not any(group_alive(pid) for pid in training), "the local Prefect server outlived the flow"
    assert not [p for p in Path("/proc").glob("[0-9]*") if cwd(p) == root], "a stage command outlived the flow"
    lock = yaml.safe_load((root / "dvc.lock").read_text())["stages"]   # valid YAML, training not recorded
    assert "validate@fashion_mnist" in lock and "train@baseline" not in lock
    states = [json.loads(p.read_text())["epochs_done"] for p in root.glob(".checkpoints/*/state/state.json")]
    assert states and all(0 < n < LIMITS["max_epochs"] for n in states), "nothing left to resume"
