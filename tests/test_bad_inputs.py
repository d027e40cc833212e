"""Every bad input the pipeline knows, in one table: each case runs the real stage as a user would and
asserts one clear `error:` paragraph (no traceback), the key facts in it, and that no output was written.

The count of cases is printed at the end of the module (`pytest -s` shows it).
"""
from __future__ import annotations

import gzip
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
import yaml

from tests.fixtures import PROJECT_ROOT, fashion_project, idx_bytes, needs_fashion_mnist
from tests.helpers import child_env, module

pytestmark = [pytest.mark.slow, needs_fashion_mnist]


@dataclass
class Case:
    name: str
    command: list[str]
    expect: list[str]                       # substrings of the error paragraph
    setup: Callable[[Path], None] = lambda root: None
    params: Callable[[dict], None] = lambda p: None
    absent: list[str] = field(default_factory=list)   # outputs that must not exist afterwards


def set_in(path: str, value) -> Callable[[dict], None]:
    def edit(params: dict) -> None:
        *parents, last = path.split(".")
        node = params
        for key in parents:
            node = node[key]
        node[last] = value
    return edit


def replace_raw(name: str, data: bytes) -> Callable[[Path], None]:
    def setup(root: Path) -> None:
        target = root / "data/raw/fashion_mnist" / name
        target.unlink()
        target.write_bytes(data)
    return setup


def validated_data(root: Path) -> None:
    run(root, ["stages.validate", "fashion_mnist"], check=True)


def blocked_metrics_dir(root: Path) -> None:
    validated_data(root)
    (root / "metrics").mkdir(exist_ok=True)
    (root / "metrics/fashion_mnist").write_text("a file where a folder must go")


TRAIN = ["stages.train"]
VALIDATE = ["stages.validate", "fashion_mnist"]
CASES = [
    Case("params: typo'd key", VALIDATE, ["defaults.epochz", "unknown key"], params=set_in("defaults.epochz", 3)),
    Case("params: string for a number", VALIDATE, ["runs.selu.optimizer.learning_rate", "'fast'"],
         params=set_in("runs.selu.optimizer", {"learning_rate": "fast"})),
    Case("params: negative value", VALIDATE, ["download.retries", "-1"], params=set_in("download.retries", -1)),
    Case("params: unknown optimizer", VALIDATE, ["runs.e04_elu.optimizer.name", "'sgdd'", "'nadam'"],
         params=set_in("runs.e04_elu.optimizer", {"name": "sgdd"})),
    Case("params: unknown activation", VALIDATE, ["runs.e04_elu.activation", "'relu6'", "'selu'"],
         params=set_in("runs.e04_elu.activation", "relu6")),
    Case("params: unknown schedule", VALIDATE, ["runs.e04_elu.schedule.name", "'cosine'", "'onecycle'"],
         params=set_in("runs.e04_elu.schedule", {"name": "cosine"})),
    Case("params: Adam with momentum", [*TRAIN, "e08_adam"], ["runs.e08_adam.optimizer.momentum = 0.9",
                                                              "optimizer 'adam' ignores 'momentum'"],
         params=set_in("runs.e08_adam.optimizer.momentum", 0.9),
         absent=["models/e08_adam", "metrics/fashion_mnist/train/e08_adam"]),
    Case("params: SGD with rho", [*TRAIN, "e08_momentum"], ["runs.e08_momentum.optimizer.rho", "optimizer 'sgd'"],
         params=set_in("runs.e08_momentum.optimizer.rho", 0.9), absent=["models/e08_momentum"]),
    Case("params: a key the schedule ignores", [*TRAIN, "e09_power"],
         ["runs.e09_power.schedule.patience = 5", "schedule 'power' ignores 'patience'"],
         params=set_in("runs.e09_power.schedule.patience", 5), absent=["models/e09_power"]),
    Case("params: transfer from a run that does not exist", VALIDATE, ["transfer.base", "'nosuch'"],
         params=set_in("transfer_runs.e07_b_transfer.transfer.base", "nosuch")),
    Case("train: run that does not exist", [*TRAIN, "nosuch"], ["no run named 'nosuch'"]),
    Case("train: validated dataset missing", [*TRAIN, "baseline"],
         ["data/validated/fashion_mnist.npz not found", "dvc repro validate@fashion_mnist"],
         absent=["models/baseline"]),
    Case("train: transfer base model not trained", [*TRAIN, "e07_b_transfer"],
         ["models/e07_model_a/seed-1.keras not found", "train@e07_model_a"], setup=validated_data,
         absent=["models/e07_b_transfer"]),
    Case("train: output folder not writable", [*TRAIN, "baseline"], ["cannot write", "metrics/fashion_mnist"],
         setup=blocked_metrics_dir, params=lambda p: (set_in("limits", {"max_epochs": 1, "max_train_samples": 500,
                                                                        "max_eval_samples": 200})(p),
                                                      set_in("defaults.seeds", [1])(p)),
         absent=["models/baseline", "metrics/fashion_mnist/timing"]),
    Case("validate: empty gzip", VALIDATE, ["t10k-labels-idx1-ubyte.gz is empty"],
         setup=replace_raw("t10k-labels-idx1-ubyte.gz", b""), absent=["data/validated"]),
    Case("validate: corrupt gzip", VALIDATE, ["not a valid gzip file"],
         setup=replace_raw("t10k-labels-idx1-ubyte.gz", b"this is not gzip"), absent=["data/validated"]),
    Case("validate: truncated gzip", VALIDATE, ["corrupt or truncated"],
         setup=replace_raw("t10k-labels-idx1-ubyte.gz",
                           gzip.compress(idx_bytes(__import__("numpy").zeros(10000, "uint8")))[:-20]),
         absent=["data/validated"]),
    Case("validate: wrong magic number", VALIDATE, ["wrong magic number"],
         setup=replace_raw("t10k-labels-idx1-ubyte.gz", gzip.compress(b"\x00\x00\x09\x99" + bytes(10004))),
         absent=["data/validated"]),
    Case("validate: a failed expectation", VALIDATE, ["expect_table_row_count_to_equal", "9999"],
         params=set_in("validate.fashion_mnist.rows.test", 9999),
         absent=["data/validated", "metrics/validation", "reports/validation"]),
    Case("download: checksum mismatch", ["stages.download", "fashion_mnist"],
         ["t10k-labels-idx1-ubyte.gz", "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"],
         params=set_in("download.local_dirs", ["tampered"]),
         setup=lambda root: (root / "tampered").mkdir() or (root / "tampered/t10k-labels-idx1-ubyte.gz").write_bytes(
             gzip.compress(idx_bytes(__import__("numpy").ones(10000, "uint8")))),
         absent=["data/raw/fashion_mnist/t10k-labels-idx1-ubyte.gz.part"]),
    Case("download: offline, no local copy", ["stages.download", "cifar10"],
         ["no usable copy of cifar-10-python.tar.gz", ".keras/datasets/cifar-10-python.tar.gz (not found)",
          "http://127.0.0.1:9/cifar-10-python.tar.gz", "Connection refused", "CH11_DATA_DIRS"],
         params=lambda p: (set_in("download.cifar10.urls", ["http://127.0.0.1:9/"])(p),
                           set_in("download.retries", 0)(p)),
         absent=["data/raw/cifar10"]),
]


def run(root: Path, command: list[str], check: bool = False) -> subprocess.CompletedProcess:
    return module(root, *command, check=check, timeout=300,
                  env=child_env(HOME=str(root), KERAS_HOME=str(root / ".keras")))


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input_gives_one_clear_error_and_writes_nothing(case, tmp_path):
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    case.params(params)
    root = fashion_project(tmp_path / "project", yaml.safe_dump(params, sort_keys=False))
    case.setup(root)
    result = run(root, case.command)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    for fragment in case.expect:
        assert fragment in errors[0], f"{fragment!r} missing from: {errors[0]}"
    for rel in case.absent:
        assert not (root / rel).exists(), f"{rel} was written despite the error"


def test_a_diverging_training_is_reported_not_crashed(tmp_path):
    """A learning rate that blows up: the stage finishes, and the metrics mark the run as diverged."""
    params = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text())
    params["runs"]["baseline"] = {"template": "none", "optimizer": {"learning_rate": 1.0e6}}
    params["defaults"]["seeds"] = [1]
    params["limits"] = {"max_epochs": 2, "max_train_samples": 500, "max_eval_samples": 200}
    root = fashion_project(tmp_path / "project", yaml.safe_dump(params, sort_keys=False))
    validated_data(root)
    train = run(root, [*TRAIN, "baseline"], check=True)
    assert "DIVERGED" in train.stdout
    evaluate = run(root, ["stages.evaluate", "baseline"], check=True)
    assert "1 of 1 diverged" in evaluate.stdout
    metrics = yaml.safe_load((root / "metrics/fashion_mnist/eval/baseline.json").read_text())
    assert metrics["diverged"] == 1 and metrics["per_seed"]["1"]["diverged"] is True
    assert "test_accuracy" not in metrics["per_seed"]["1"] and metrics["mean"] == {}
