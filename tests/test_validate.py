"""The GX suite on the real Fashion-MNIST arrays: it passes as is and names each injected defect."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ch11 import params as params_mod
from ch11.data.datasets import load_fashion_mnist
from ch11.data.expectations import image_table, validate_arrays
from ch11.params import SplitRows
from tests.fixtures import (FASHION_MNIST_DIR, PROJECT_ROOT, fashion_project, needs_fashion_mnist,
                            write_cifar_archive)
from tests.helpers import digests, module


@pytest.fixture(scope="module")
def real():
    """The real arrays, loaded once; tests copy only the array they damage (each marked needs_fashion_mnist)."""
    return load_fashion_mnist(FASHION_MNIST_DIR)


@pytest.fixture(scope="module")
def spec():
    return params_mod.load(PROJECT_ROOT / "params.yaml").validate_.fashion_mnist


def damaged(arrays: dict, key: str, value: np.ndarray) -> dict:
    return {**arrays, key: value}


def failed(outcome, expectation: str, column: str | None = None, condition: str | None = None):
    """The one failure of ``expectation`` on ``column`` (and split condition); it must also be in the message."""
    matches = [f for f in outcome.failures if f.expectation == expectation and f.column == column
               and (condition is None or f.condition == condition)]
    assert not outcome.success
    assert len(matches) == 1, [f.describe() for f in outcome.failures]
    assert matches[0].describe() in outcome.message()
    return matches[0]


@needs_fashion_mnist
def test_real_fashion_mnist_passes(real, spec):
    outcome = validate_arrays(real, spec, name="fashion_mnist")
    assert outcome.success, outcome.message()
    assert outcome.failures == []
    assert outcome.evaluated >= 15
    assert outcome.rows == {"train": 60000, "test": 10000}


@needs_fashion_mnist
def test_label_out_of_range(real, spec):
    y = real["y_test"].copy()
    y[123] = 10
    failure = failed(validate_arrays(damaged(real, "y_test", y), spec), "expect_column_values_to_be_in_set",
                     "label")
    assert "1 of 70000 rows unexpected" in failure.observed and "[10]" in failure.observed


@needs_fashion_mnist
def test_pixel_above_255(real, spec):
    x = real["x_test"].astype(np.uint16)
    x[5, 14, 14] = 300
    outcome = validate_arrays(damaged(real, "x_test", x), spec)
    assert "[300]" in failed(outcome, "expect_column_values_to_be_between", "pixel_max").observed
    assert "'uint16'" in failed(outcome, "expect_column_values_to_be_in_set", "dtype").observed


@needs_fashion_mnist
def test_nan_pixel(real, spec):
    x = real["x_test"].astype(np.float32)
    x[7, 3, 4] = np.nan
    arrays = damaged(real, "x_test", x)
    outcome = validate_arrays(arrays, spec)
    assert "1 of 70000 rows unexpected, e.g. [1]" in failed(
        outcome, "expect_column_values_to_be_between", "n_nan").observed
    # the image's other statistics skip the NaN (GX would silently skip a NaN statistic), so only the
    # NaN and the dtype are reported
    row = image_table(arrays).iloc[60000 + 7]
    assert row["n_nan"] == 1 and row["pixel_max"] == real["x_test"][7].max() and not np.isnan(row["std"])
    assert {(f.expectation, f.column) for f in outcome.failures} == {
        ("expect_column_values_to_be_between", "n_nan"), ("expect_column_values_to_be_in_set", "dtype")}


@needs_fashion_mnist
def test_missing_class(real, spec):
    keep = real["y_test"] != 3
    arrays = {**real, "x_test": real["x_test"][keep], "y_test": real["y_test"][keep]}
    outcome = validate_arrays(arrays, spec)
    missing = failed(outcome, "expect_column_distinct_values_to_contain_set", "label", "split == 'test'")
    assert missing.observed == "1 missing: [3]"
    # the 9 remaining classes now hold 1/9 each, above the 0.11 allowed
    assert "0.111111" in failed(outcome, "expect_column_values_to_be_between", "class_share").observed


@needs_fashion_mnist
def test_wrong_row_count(real, spec):
    arrays = {**real, "x_train": real["x_train"][10:], "y_train": real["y_train"][10:]}
    outcome = validate_arrays(arrays, spec)
    failure = failed(outcome, "expect_table_row_count_to_equal", None, "split == 'train'")
    assert (failure.observed, failure.expected) == ("59990", "60000")
    assert len(outcome.failures) == 1


@needs_fashion_mnist
def test_blank_image_breaks_mean_and_std_bounds(real, spec):
    x = real["x_train"].copy()
    x[42] = 0
    outcome = validate_arrays(damaged(real, "x_train", x), spec)
    assert "[0]" in failed(outcome, "expect_column_values_to_be_between", "mean").observed
    assert "[0]" in failed(outcome, "expect_column_values_to_be_between", "std").observed


def test_cifar_shaped_arrays(tmp_path):
    """The same suite on NHWC colour images (generated in the real archive format)."""
    from ch11.data.datasets import load_cifar10
    arrays = load_cifar10(write_cifar_archive(tmp_path, per_batch=20).parent)
    spec = params_mod.load(PROJECT_ROOT / "params.yaml").validate_.cifar10
    small = spec.model_copy(update={"rows": SplitRows(train=100, test=20)})
    assert validate_arrays(arrays, small).success
    wrong_shape = {**arrays, "x_test": arrays["x_test"][:, :, :, :1]}
    failure = failed(validate_arrays(wrong_shape, small), "expect_column_values_to_be_in_set", "shape")
    assert "'32x32x1'" in failure.observed and "'32x32x3'" in failure.expected


def run_stage(project, dataset="fashion_mnist"):
    return module(project, "stages.validate", dataset, timeout=300)


@needs_fashion_mnist
def test_stage_writes_splits_metrics_and_docs(tmp_path, real):
    project = fashion_project(tmp_path / "project")
    proc = run_stage(project)
    assert proc.returncode == 0, proc.stderr
    with np.load(project / "data/validated/fashion_mnist.npz") as npz:
        assert sorted(npz.files) == ["x_test", "x_train", "x_valid", "y_test", "y_train", "y_valid"]
        assert {k: npz[k].shape[0] for k in npz.files} == {
            "x_train": 55000, "y_train": 55000, "x_valid": 5000, "y_valid": 5000,
            "x_test": 10000, "y_test": 10000}
        assert all(npz[k].dtype == np.uint8 for k in npz.files)
        assert npz["x_train"].shape[1:] == (28, 28)
        np.testing.assert_array_equal(npz["x_valid"], real["x_train"][:5000])  # the first 5,000
        np.testing.assert_array_equal(npz["y_train"], real["y_train"][5000:])
        np.testing.assert_array_equal(npz["x_test"], real["x_test"])
    metrics = json.loads((project / "metrics/validation/fashion_mnist.json").read_text())
    assert metrics == {"success": True, "expectations": {"evaluated": metrics["expectations"]["evaluated"],
                                                         "failed": 0},
                       "raw_rows": {"train": 60000, "test": 10000},
                       "rows": {"train": 55000, "valid": 5000, "test": 10000}}
    docs = project / "reports/validation/fashion_mnist"
    index = (docs / "index.html").read_text()
    pages = [p.relative_to(docs).as_posix() for p in (docs / "validations").rglob("*.html")]
    assert len(pages) == 1 and pages[0] in index  # the index links the one validation result
    page_text = " ".join(re.sub(r"<[^>]+>", " ", (docs / pages[0]).read_text()).split())
    assert "Must have exactly 60000 rows" in page_text and "Must have exactly 10000 rows" in page_text
    assert "expectations/fashion_mnist.html" in index and (docs / "expectations/fashion_mnist.html").is_file()
    html = index + "".join(p.read_text() for p in docs.rglob("*.html"))
    static = [p.relative_to(docs).as_posix() for p in (docs / "static").rglob("*") if p.is_file()]
    assert static and all(path in html for path in static)  # unreferenced assets were pruned
    assert not list(project.rglob("*.tmp"))  # no leftover atomic-write temporaries

    # a rerun replaces the outputs byte for byte: the npz and the
    # metrics (DVC sees no change downstream) and the Data Docs, paths and pages (git stays clean)
    def outputs():
        files = [project / "data/validated/fashion_mnist.npz", project / "metrics/validation/fashion_mnist.json",
                 *sorted(p for p in docs.rglob("*") if p.is_file())]
        return digests(files, project)

    before = outputs()
    rerun = run_stage(project)
    assert rerun.returncode == 0, rerun.stderr
    assert outputs() == before


@needs_fashion_mnist
def test_failing_stage_names_the_expectation_and_writes_nothing(tmp_path):
    text = (PROJECT_ROOT / "params.yaml").read_text()
    assert "rows: {train: 60000, test: 10000}" in text
    project = fashion_project(tmp_path / "project", text.replace("rows: {train: 60000, test: 10000}",
                                                                 "rows: {train: 60000, test: 9999}", 1))
    proc = run_stage(project)
    assert proc.returncode == 1
    assert "expect_table_row_count_to_equal(where split == 'test'): observed 10000; expected 9999" \
        in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (project / "data/validated").exists()
    assert not (project / "metrics").exists()
    assert not (project / "reports").exists()
