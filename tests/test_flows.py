"""The Prefect flow ``ch11-pipeline`` against real DVC, in throw-away git + DVC copies of the project.

One Prefect test harness (temporary SQLite API server) serves the whole module. Stage commands run with
cwd = the copy and this interpreter's venv first on PATH, so `python` and `dvc` are the project's.
Two tiny runs, one seed, smoke limits. The flow's outputs are compared with `dvc repro`'s in a twin copy.

Training is deterministic except for fields that cannot be (wall times), Keras' model.keras, whose
config.json holds Python object ids (``shared_object_id``), and the Great Expectations Data Docs (run
timestamps): those are compared after normalising, and everything else - data, predictions, weights,
metrics values, every other dvc.lock hash - must be identical.
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from ch11.sandbox import SMOKE_LIMITS, project_copy
from tests.fixtures import FASHION_MNIST_DIR, write_cifar_archive
from tests.helpers import BIN, digest, digests, dvc, run as run_child

REPO = Path(__file__).resolve().parents[1]
RUNS = ["baseline", "e04_elu"]
TARGETS = ["aggregate@fashion_mnist"]          # download, validate, 2 x train, 2 x evaluate, aggregate
VOLATILE_KEYS = {"train_time_s"}  # wall-clock times (metrics/<dataset>/timing/ only)
DATA_DOCS = "reports/validation/"
CONCURRENCY = max(2, len(os.sched_getaffinity(0)))  # >= cores: one seed at a time per command

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(),
                                reason="Debian package dataset-fashion-mnist is not installed")]


# ------------------------------------------------------------------------------------------------------
# Fixtures


@pytest.fixture(scope="session")
def prefect():
    """The one Prefect test harness of the session (~15 s to start): a temporary API server on SQLite."""
    from prefect.testing.utilities import prefect_test_harness

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # offline: no telemetry attempts
        with prefect_test_harness(server_startup_timeout=180):
            yield


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """Environment for the flow and its commands: this venv first on PATH (`python`, `dvc`), quiet TF
    and GX, no real ~/.keras cache, no inherited CH11_/CUDA settings and no proxies (servers are local)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PATH", f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")
        mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
        mp.setenv("GX_ANALYTICS_ENABLED", "False")
        mp.setenv("KERAS_HOME", str(tmp_path_factory.mktemp("keras-home")))
        for name in ("CH11_DATA_DIRS", "CH11_THREADS", "CH11_WORKERS", "CUDA_VISIBLE_DEVICES", "http_proxy", "https_proxy",
                     "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            mp.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def pipeline(prefect, env):
    from flows.pipeline import ch11_pipeline

    return ch11_pipeline


def lock(root: Path) -> dict:
    return yaml.safe_load((root / "dvc.lock").read_text())["stages"]


@pytest.fixture(scope="module")
def twins(tmp_path_factory, pipeline):
    """Two fresh copies: `dvc repro` in one (in the background) while the flow runs in the other.
    Returns both roots, the flow's summary and flow-run id, and snapshots taken right after."""
    base = tmp_path_factory.mktemp("twins")
    repro_root = project_copy(base / "repro", runs=RUNS, seeds=[1], limits=SMOKE_LIMITS)
    flow_root = project_copy(base / "flow", runs=RUNS, seeds=[1], limits=SMOKE_LIMITS)
    repro = subprocess.Popen([str(BIN / "dvc"), "repro", *TARGETS], cwd=repro_root, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        state = pipeline(targets=TARGETS, concurrency=CONCURRENCY, project_dir=str(flow_root),
                         return_state=True)
    finally:
        out, _ = repro.communicate(timeout=900)
    assert repro.returncode == 0, out
    assert state.is_completed(), state.message
    return {"repro": repro_root, "flow": flow_root, "summary": state.result(),
            "flow_run_id": state.state_details.flow_run_id,
            "snapshot": {name: snapshot(root) for name, root in (("repro", repro_root), ("flow", flow_root))}}


# ------------------------------------------------------------------------------------------------------
# Comparing the two copies


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def strip_volatile(value):
    if isinstance(value, dict):
        return {k: strip_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS | {"shared_object_id"}}
    if isinstance(value, list):
        return [strip_volatile(v) for v in value]
    return value


def content(path: Path):
    """A file's content for comparison, wall times and Python object ids left out."""
    data = path.read_bytes()
    if path.suffix == ".json":
        return strip_volatile(json.loads(data))
    if path.suffix == ".csv":
        rows = list(csv.DictReader(io.StringIO(data.decode())))
        return [strip_volatile(row) for row in rows]
    if path.suffix == ".keras":
        with zipfile.ZipFile(path) as archive:
            return {name: strip_volatile(json.loads(archive.read(name))) if name.endswith(".json")
                    else md5(archive.read(name)) for name in sorted(archive.namelist())}
    return md5(data)


def tree(root: Path, rel: str):
    path = root / rel
    if rel.startswith(DATA_DOCS):  # Great Expectations Data Docs: run timestamps in names and HTML
        return (path / "index.html").is_file()
    if path.is_dir():
        return {p.relative_to(path).as_posix(): content(p) for p in sorted(path.rglob("*")) if p.is_file()}
    return content(path)


def snapshot(root: Path) -> dict:
    """dvc.lock plus the normalised content of every path it names (deps and outs)."""
    stages = lock(root)
    paths = {entry["path"] for stage in stages.values() for kind in ("deps", "outs")
             for entry in stage.get(kind, [])}
    return {"lock": stages, "files": {rel: tree(root, rel) for rel in sorted(paths)}}


def cache_object(root: Path, md5_value: str) -> Path:
    return root / ".dvc" / "cache" / "files" / "md5" / md5_value[:2] / md5_value[2:]


def uncached_outs(root: Path) -> set[str]:
    """Outputs not in .dvc/cache (the cache: false ones); checks that every other one is there, directories
    file by file, as `dvc repro` leaves them."""
    uncached = set()
    for stage in lock(root).values():
        for out in stage.get("outs", []):
            obj = cache_object(root, out["md5"])
            if not obj.exists():
                uncached.add(out["path"])
                continue
            if out["md5"].endswith(".dir"):
                for entry in json.loads(obj.read_text()):
                    assert cache_object(root, entry["md5"]).exists(), (out["path"], entry["relpath"])
    return uncached


# ------------------------------------------------------------------------------------------------------
# (a) the flow == dvc repro


@pytest.mark.slow
def test_flow_matches_dvc_repro(twins):
    flow_snap, repro_snap = twins["snapshot"]["flow"], twins["snapshot"]["repro"]
    summary = twins["summary"]
    assert set(summary["ran"]) == set(flow_snap["lock"]), summary
    assert not summary["failed"] and not summary["skipped"]
    assert set(flow_snap["lock"]) == set(repro_snap["lock"])

    # Every dvc.lock entry: same command, params, and deps/outs hashes - except paths whose bytes
    # hold wall times or object ids, whose normalised content must then be identical.
    volatile = []
    for name, stage in repro_snap["lock"].items():
        other = flow_snap["lock"][name]
        assert other["cmd"] == stage["cmd"], name
        assert other.get("params") == stage.get("params"), name
        for kind in ("deps", "outs"):
            mine = {e["path"]: e["md5"] for e in other.get(kind, [])}
            theirs = {e["path"]: e["md5"] for e in stage.get(kind, [])}
            assert mine.keys() == theirs.keys(), (name, kind)
            for path, value in theirs.items():
                if mine[path] != value:
                    volatile.append(path)
                    assert flow_snap["files"][path] == repro_snap["files"][path], (name, kind, path)
    # Only model dirs, time-bearing metrics and Data Docs may differ byte-wise; data and code never.
    for path in volatile:
        assert path.startswith(("models/", "metrics/fashion_mnist/", DATA_DOCS)), path
    for path in ("data/raw/fashion_mnist", "data/validated/fashion_mnist.npz"):
        assert path not in volatile
    for run in RUNS:  # predictions and weights are bit-identical
        model = flow_snap["files"][f"models/{run}"]
        assert model["seed-1.npz"] == repro_snap["files"][f"models/{run}"]["seed-1.npz"]
        assert model["seed-1.keras"]["model.weights.h5"] == \
            repro_snap["files"][f"models/{run}"]["seed-1.keras"]["model.weights.h5"]
        eval_path = f"metrics/fashion_mnist/eval/{run}.json"
        assert flow_snap["files"][eval_path] == repro_snap["files"][eval_path]
        assert (twins["flow"] / eval_path).exists()

    # Cached outputs are in the cache, and the same ones are left uncached, as with dvc repro
    assert uncached_outs(twins["flow"]) == uncached_outs(twins["repro"])


@pytest.mark.slow
def test_after_the_flow_dvc_has_nothing_to_do(twins, pipeline):
    root = twins["flow"]
    status = json.loads(dvc(root, "status", "-q", "--json", *TARGETS).stdout or "{}")
    assert status == {}, status
    repro = dvc(root, "repro", *TARGETS)
    assert "Running stage" not in repro.stdout, repro.stdout
    again = pipeline(targets=TARGETS, concurrency=CONCURRENCY, project_dir=str(root))
    assert again["ran"] == [] and again["restored"] == [] and len(again["skipped"]) == len(lock(root))


@pytest.mark.slow
def test_flow_publishes_metrics_and_report_artifacts(twins):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[twins["flow_run_id"]]),
            key=ArtifactFilterKey(any_=["ch11-run-metrics", "ch11-reports"])))
    by_key = {artifact.key: artifact for artifact in found}
    assert by_key.keys() == {"ch11-run-metrics", "ch11-reports"}
    table = by_key["ch11-run-metrics"].data
    rows = json.loads(table) if isinstance(table, str) else table
    assert sorted(row["run"] for row in rows) == sorted(RUNS)
    assert all(0.0 <= row["test_accuracy"] <= 1.0 and row["seed"] == 1 for row in rows)
    assert "# Chapter 11" in by_key["ch11-reports"].data


# ------------------------------------------------------------------------------------------------------
# (b) a failing stage


@pytest.mark.slow
def test_a_failing_stage_fails_the_flow_with_its_message_and_keeps_what_finished(twins, pipeline):
    root = twins["flow"]
    # A real stage command that fails (a run that params.yaml lacks), beside a stage that succeeds:
    # writing the baseline's l2 (unchanged value) into its entry makes train@baseline (and what follows) stale.
    spec = yaml.safe_load((root / "dvc.yaml").read_text())
    spec["stages"]["broken"] = {"cmd": "python -m stages.train e99_missing",
                                "deps": ["data/validated/fashion_mnist.npz", "stages/train.py"],
                                "outs": ["models/e99_missing"]}
    (root / "dvc.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    params = yaml.safe_load((root / "params.yaml").read_text())
    params["runs"]["baseline"] = {"l2": 0.0}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    before = lock(root)

    with pytest.raises(Exception) as failure:
        pipeline(targets=["evaluate@baseline", "broken"], concurrency=CONCURRENCY, project_dir=str(root))

    message = str(failure.value)
    assert "stage 'broken' failed" in message and "python -m stages.train e99_missing" in message
    assert "error: params.yaml has no run named 'e99_missing'" in message  # the stage's own stderr
    assert "evaluate@baseline" in message  # named as not run because of the failure
    after = lock(root)
    assert "broken" not in after
    # train@baseline was started with `broken` (same dispatch pass) and ends after it failed: it is
    # still recorded, with the new params
    assert after["train@baseline"]["params"]["params.yaml"]["runs.baseline"] == {"l2": 0.0}
    assert after["train@baseline"] != before["train@baseline"]
    assert dvc(root, "status", "-q", "--json", "train@baseline").stdout.strip() in ("", "{}")
    # nothing new started after the failure: evaluate@baseline keeps its old entry
    assert after["evaluate@baseline"] == before["evaluate@baseline"]


def test_a_hanging_stage_is_killed_at_its_timeout_with_a_clear_message(prefect, tmp_path):
    from prefect import flow

    from flows.scheduler import StageFailed, run_stage_command

    @flow
    def one_stage():
        return run_stage_command("sleepy", [[sys.executable, "-c", "import time; time.sleep(120)"]], str(tmp_path),
                                 {}, timeout_s=2)

    started = time.monotonic()
    with pytest.raises(StageFailed, match=r"stage 'sleepy' timed out: .* ran longer than 2 s \(--stage-timeout\)"):
        one_stage()
    assert time.monotonic() - started < 60


def test_a_failing_stage_is_quoted_without_tensorflows_import_notices(prefect, tmp_path):
    from prefect import flow

    from flows.scheduler import StageFailed, run_stage_command

    noise = ["WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
             "I0000 00:00:1795681438.041053   11102 port.cc:153] oneDNN custom operations are on. You may see "
             "slightly different numerical results due to floating-point round-off errors."]
    script = "import sys\n" + "".join(f"print({line!r}, file=sys.stderr)\n" for line in noise) + \
        "print('error: the real reason', file=sys.stderr)\nsys.exit(3)\n"

    @flow
    def one_stage():
        return run_stage_command("noisy", [[sys.executable, "-c", script]], str(tmp_path), {})

    with pytest.raises(StageFailed) as failed:
        one_stage()
    assert str(failed.value).endswith("exited with code 3:\n  error: the real reason")


# ------------------------------------------------------------------------------------------------------
# (c) a flaky download: one retry layer


class FlakyServer:
    """HTTP on 127.0.0.1: 503 for the first ``fail`` requests, then ``files`` (path -> bytes), else 404."""

    def __init__(self, files: dict[str, bytes], fail: int):
        self.files, self.fail, self.requests = files, fail, []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                body = server.files.get(self.path)
                if len(server.requests) <= server.fail or body is None:
                    self.send_error(503 if len(server.requests) <= server.fail else 404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_port}/cifar/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.slow
def test_a_flaky_download_is_retried_by_the_stage_alone(tmp_path, pipeline):
    """One retry layer: the download stage's own back-off (params.yaml), never multiplied by Prefect's."""
    archive = write_cifar_archive(tmp_path / "archive", per_batch=20)  # 5 x 20 train, 20 test images
    data = archive.read_bytes()
    root = project_copy(tmp_path / "project", runs=RUNS, seeds=[1], limits=SMOKE_LIMITS)

    def attempt(fail: int, retries: int):
        server = FlakyServer({f"/cifar/{archive.name}": data}, fail=fail)
        params = yaml.safe_load((root / "params.yaml").read_text())
        params["download"].update(local_dirs=[], retries=retries, backoff_s=0.01, timeout_s=10)
        params["download"]["cifar10"].update(urls=[server.url], mirrors=[],
                                             files={archive.name: {"sha256": hashlib.sha256(data).hexdigest(),
                                                                   "hash_of": "file"}})
        params["validate"]["cifar10"].update(rows={"train": 100, "test": 20}, validation_size=20)
        params["datasets"] = ["fashion_mnist", "cifar10"]   # opt-in: the archive is available here
        (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        try:
            state = pipeline(targets=["validate@cifar10"], concurrency=CONCURRENCY, project_dir=str(root),
                             return_state=True)
        finally:
            server.close()
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
# (d) the Dask task runner on an existing cluster


@pytest.mark.slow
def test_flow_on_an_existing_dask_cluster(twins, pipeline):
    from distributed import LocalCluster

    root = twins["repro"]  # built by `dvc repro`; its snapshot is already taken
    # The raw data gone: download@ (all outputs cached) is checked out of the cache without running,
    # as `dvc repro` does, and validate@ stays unchanged. A dep of aggregate@ edited: its command runs,
    # on the Dask worker (merely deleting summary.json would not do: the run cache restores it).
    shutil.rmtree(root / "data" / "raw" / "fashion_mnist")
    with (root / "ch11" / "stats.py").open("a") as stats:
        stats.write("\n# edited by test_flows\n")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        summary = pipeline(targets=TARGETS, concurrency=2, dask_address=cluster.scheduler_address,
                           project_dir=str(root))
    assert summary["restored"] == ["download@fashion_mnist"]
    assert summary["ran"] == ["aggregate@fashion_mnist"]
    assert sorted(p.name for p in (root / "data" / "raw" / "fashion_mnist").iterdir()) == \
        sorted(p.name for p in FASHION_MNIST_DIR.glob("*.gz"))
    assert json.loads(dvc(root, "status", "-q", "--json", *TARGETS).stdout or "{}") == {}


# ------------------------------------------------------------------------------------------------------
# Planning and hosts (no Prefect run)


def test_targets_select_stages_and_their_upstream_from_dvc(tmp_path, request):
    from flows.dvc_adapter import DvcAdapter
    from flows.scheduler import deepest_first, widest_level

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
    assert widest_level(order, upstream) == len(RUNS)   # the trainings (then the evaluations) side by side
    assert widest_level(*book.plan(["train@baseline"])) == 1   # one edited run: its seeds get every core
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


def test_the_deployment_defaults_to_the_workflows_cron(tmp_path):
    from flows import deploy

    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "scheduled.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    cron = triggers["schedule"][0]["cron"]
    assert len(cron.split()) == 5 and "workflow_dispatch" in triggers
    assert deploy.DEFAULT_CRON == cron
    assert [s.schedule.cron for s in deploy.build_deployment().schedules] == [cron]
    other = tmp_path / "scheduled.yml"   # the cron is read from the workflow, not written twice
    other.write_text((REPO / ".github" / "workflows" / "scheduled.yml").read_text().replace(cron, "15 4 * * 3"))
    assert deploy.workflow_cron(other) == "15 4 * * 3"
    steps = workflow["jobs"]["pipeline"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout") and steps[0]["with"]["fetch-depth"] == 0
    script = "\n".join(step.get("run", "") for step in steps)
    for needed in ("dataset-fashion-mnist", "make setup", "-m flows.pipeline", "dvc metrics diff",
                   "--md", "GITHUB_STEP_SUMMARY"):
        assert needed in script, needed

    deployment = deploy.build_deployment(cron, concurrency=2)
    assert deployment.name == "scheduled"
    assert deployment.parameters == {"concurrency": 2}
    assert deployment.entrypoint.endswith("flows/pipeline.py:ch11_pipeline")


# ------------------------------------------------------------------------------------------------------
# (f) fault drill: the whole flow killed with SIGKILL mid-run, then rerun


def flow_cli(root: Path) -> list[str]:
    return [sys.executable, "-m", "flows.pipeline", "--targets", *TARGETS, "--concurrency", "2",
            "--project-dir", str(root)]


def results(root: Path) -> dict[str, str]:
    files = sorted((root / "models").rglob("*.npz")) + sorted((root / "metrics/fashion_mnist").rglob("*.json"))
    return digests([p for p in files if "/timing/" not in p.as_posix()], root)


@pytest.mark.slow
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
