"""What the flow plans and where it runs (no flow run): targets to stages, trainings per core, GPUs, and the
schedule one command serves."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ch11.sandbox import SMOKE_LIMITS, project_copy
from tests.fixtures import FASHION_MNIST_DIR, needs_fashion_mnist
from tests.helpers import FLOW_RUNS as RUNS, PROJECT_ROOT as REPO


# ------------------------------------------------------------------------------------------------------
# Planning and hosts (no Prefect run)


def test_targets_select_stages_and_their_upstream_from_dvc(tmp_path, request):
    from flows.dvc_adapter import DvcAdapter
    from flows.scheduler import deepest_first

    book = DvcAdapter(project_copy(tmp_path / "project", runs=RUNS, seeds=[1], limits=SMOKE_LIMITS))
    request.addfinalizer(book.close)
    order, upstream = book.plan(["train@*"])
    assert set(order) == {"download@fashion_mnist", "validate@fashion_mnist", "train@baseline",
                          "train@e04_elu"}
    for name, ups in upstream.items():  # `dvc repro` order: every stage after its upstream
        assert all(order.index(up) < order.index(name) for up in ups), (name, ups)
    assert upstream["train@e04_elu"] == ["validate@fashion_mnist"]
    order, upstream = book.plan(["evaluate"])  # a group name: every evaluate@ stage
    assert {"evaluate@baseline", "evaluate@e04_elu", "train@baseline"} <= set(order)
    dispatch = deepest_first(order, upstream)  # when both are ready, an evaluation goes before a training
    assert max(dispatch.index(f"evaluate@{run}") for run in RUNS) < min(
        dispatch.index(f"train@{run}") for run in RUNS), dispatch
    longest = {f"train@{RUNS[-1]}": 900.0, f"train@{RUNS[0]}": 60.0}.get   # recorded seed times
    dispatch = deepest_first(order, upstream, longest)   # of two trainings, the longer starts first
    assert dispatch.index(f"train@{RUNS[-1]}") < dispatch.index(f"train@{RUNS[0]}"), dispatch
    assert max(dispatch.index(f"evaluate@{run}") for run in RUNS) < dispatch.index(f"train@{RUNS[-1]}")
    assert not any(name.startswith(("aggregate", "report")) for name in order)  # nothing downstream
    assert len(book.plan(None)[0]) == len(book.plan(["*"])[0])
    with pytest.raises(ValueError, match=r"no stage matches target\(s\) 'trian@\*'.*groups \(aggregate, "):
        book.plan(["trian@*"])


def test_the_flow_and_its_workers_never_run_more_trainings_than_cores():
    """Commands at once x seeds per command <= cores (or = concurrency when more commands than cores)."""
    from flows.host import command_env, workers_per_command

    for cores in (1, 2, 3, 16):
        for concurrency in range(1, 2 * cores + 2):
            workers = workers_per_command(cores, concurrency)
            assert concurrency * workers <= max(cores, concurrency), (cores, concurrency)
            assert workers >= 1 and (concurrency > cores // 2 or workers > 1), "cores left idle"
            assert command_env(0, workers, [])["CH11_WORKERS"] == str(workers)


def test_gpus_from_nvidia_smi_or_cuda_visible_devices(tmp_path, monkeypatch):
    from flows.host import command_env, visible_gpus

    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n"
                    "echo 'GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0b1e)'\n"
                    "echo 'GPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-9f2c)'\n"
                    "echo '  MIG 3g.20gb     Device  0: (UUID: MIG-a1b2)'\n"
                    "echo '  MIG 3g.20gb     Device  1: (UUID: MIG-c3d4)'\n")
    fake.chmod(0o755)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert visible_gpus() == []  # no nvidia-smi: a CPU host
    monkeypatch.setenv("PATH", str(fake.parent))
    assert visible_gpus() == ["0", "MIG-a1b2", "MIG-c3d4"]  # a partitioned GPU counts by MIG instance
    for listed, expected in (("2,3", ["2", "3"]), ("", []), ("-1", []), ("1,-1,0", ["1"])):
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", listed)
        assert visible_gpus() == expected, listed
    assert command_env(0, 8, []) == {"CH11_WORKERS": "8", "CH11_THREADS": "1"}
    # 2 GPUs, several trainings per GPU: slots go round the GPUs, none pre-allocating GPU memory
    envs = [command_env(slot, 4, ["0", "1"]) for slot in range(4)]
    assert [e["CUDA_VISIBLE_DEVICES"] for e in envs] == ["0", "1", "0", "1"]
    assert all(e["XLA_PYTHON_CLIENT_PREALLOCATE"] == "false" and e["TF_FORCE_GPU_ALLOW_GROWTH"] == "true"
               for e in envs)


# ------------------------------------------------------------------------------------------------------
# (e) schedule: the GitHub workflow and the Prefect deployment


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@needs_fashion_mnist
def test_one_command_serves_a_schedule_that_fires(tmp_path, env):
    """`python -m flows.deploy` without PREFECT_API_URL starts a local server and serves the deployment;
    a scheduled run fires and does its work in the project."""
    import urllib.request

    root = project_copy(tmp_path / "project", runs=RUNS, seeds=[1], limits=SMOKE_LIMITS)
    port = free_port()
    child_env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    child_env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    proc = subprocess.Popen([sys.executable, "-m", "flows.deploy", "--interval", "5", "--port", str(port),
                             "--project-dir", str(root), "--targets", "download@fashion_mnist"],
                            cwd=REPO, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    api = f"http://127.0.0.1:{port}/api"
    states = []
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and "COMPLETED" not in states:
            time.sleep(2)
            request = urllib.request.Request(f"{api}/flow_runs/filter", data=b"{}", method="POST",
                                             headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    states = [run["state_type"] for run in json.loads(response.read())]
            except OSError:
                continue
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=60)
    assert "COMPLETED" in states, out[-3000:]
    assert sorted(p.name for p in (root / "data/raw/fashion_mnist").iterdir()) == \
        sorted(p.name for p in FASHION_MNIST_DIR.glob("*.gz"))
