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
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
import yaml

from ch11.sandbox import SMOKE_LIMITS, project_copy
from tests.fixtures import FASHION_MNIST_DIR, needs_fashion_mnist
from tests.helpers import BIN, FLOW_CONCURRENCY as CONCURRENCY, FLOW_RUNS as RUNS, FLOW_TARGETS as TARGETS, dvc, \
    dvc_lock as lock

VOLATILE_KEYS = {"train_time_s"}  # wall-clock times (metrics/<dataset>/timing/ only)
DATA_DOCS = "reports/validation/"

pytestmark = [pytest.mark.slow, needs_fashion_mnist]


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


def test_after_the_flow_dvc_has_nothing_to_do(twins, pipeline):
    root = twins["flow"]
    status = json.loads(dvc(root, "status", "-q", "--json", *TARGETS).stdout or "{}")
    assert status == {}, status
    repro = dvc(root, "repro", *TARGETS)
    assert "Running stage" not in repro.stdout, repro.stdout
    again = pipeline(targets=TARGETS, concurrency=CONCURRENCY, project_dir=str(root))
    assert again["ran"] == [] and again["restored"] == [] and len(again["skipped"]) == len(lock(root))


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
    for row in rows:   # each row is what its evaluate stage wrote, for the one seed the copy trains
        per_seed = json.loads((twins["flow"] / f"metrics/fashion_mnist/eval/{row['run']}.json").read_text())["per_seed"]
        assert row["seed"] == 1 and row["test_accuracy"] == per_seed["1"]["test_accuracy"], row
    assert "# Chapter 11" in by_key["ch11-reports"].data


# ------------------------------------------------------------------------------------------------------
# (b) a failing stage


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
    params["runs"]["baseline"]["l2"] = 0.0
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
    assert after["train@baseline"]["params"]["params.yaml"]["runs.baseline"]["l2"] == 0.0
    assert after["train@baseline"] != before["train@baseline"]
    assert dvc(root, "status", "-q", "--json", "train@baseline").stdout.strip() in ("", "{}")
    # nothing new started after the failure: evaluate@baseline keeps its old entry
    assert after["evaluate@baseline"] == before["evaluate@baseline"]



# ------------------------------------------------------------------------------------------------------
# (d) the Dask task runner on an existing cluster


def test_flow_on_an_existing_dask_cluster(twins, pipeline):
    from distributed import LocalCluster

    root = twins["repro"]  # built by `dvc repro`; its snapshot is already taken
    # The raw data gone: download@ (all outputs cached) is checked out of the cache without running,
    # as `dvc repro` does, and validate@ stays unchanged. A dep of aggregate@ alone edited (stats.py would
    # re-run every evaluate@ too): its command runs, on the Dask worker (merely deleting summary.json would not
    # do: the run cache restores it).
    shutil.rmtree(root / "data" / "raw" / "fashion_mnist")
    with (root / "ch11" / "report" / "dvc_metrics.py").open("a") as module:
        module.write("\n# edited by test_flows\n")
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster:
        summary = pipeline(targets=TARGETS, concurrency=2, dask_address=cluster.scheduler_address,
                           project_dir=str(root))
    assert summary["restored"] == ["download@fashion_mnist"]
    assert summary["ran"] == ["aggregate@fashion_mnist"]
    assert sorted(p.name for p in (root / "data" / "raw" / "fashion_mnist").iterdir()) == \
        sorted(p.name for p in FASHION_MNIST_DIR.glob("*.gz"))
    assert json.loads(dvc(root, "status", "-q", "--json", *TARGETS).stdout or "{}") == {}
