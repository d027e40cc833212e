"""The raw-file parsers on generated files in the real formats: IDX (gzip) and the CIFAR-10 python archive."""
from __future__ import annotations

import gzip
import io
import pickle
import tarfile

import numpy as np
import pytest

from ch11.data.datasets import (CIFAR_TEST_BATCH, CIFAR_TRAIN_BATCHES, FASHION_FILES, gunzip, load_cifar10,
                           load_fashion_mnist, parse_idx)
from ch11.errors import PipelineError
from tests.fixtures import idx_bytes, write_cifar_archive, write_idx_gz


@pytest.fixture
def fashion(tmp_path):
    """A Fashion-MNIST folder of 30 train and 10 test generated images; returns (folder, arrays)."""
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (30, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, 30, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, 10, dtype=np.uint8)}
    for key, name in FASHION_FILES.items():
        write_idx_gz(tmp_path / name, arrays[key])
    return tmp_path, arrays


def test_fashion_mnist_idx_files_round_trip(fashion):
    folder, arrays = fashion
    loaded = load_fashion_mnist(folder)
    assert loaded.keys() == arrays.keys()
    for key, expected in arrays.items():
        assert loaded[key].dtype == np.uint8
        np.testing.assert_array_equal(loaded[key], expected)


def test_idx_header_is_big_endian_and_gives_the_shape():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = idx_bytes(images)
    assert raw[:16] == bytes.fromhex("00000803" "00000002" "00000003" "00000004")
    np.testing.assert_array_equal(parse_idx(raw, "x"), images)


def test_cifar_archive_gives_nhwc_uint8_in_the_right_pixel_order(tmp_path):
    archive = write_cifar_archive(tmp_path, per_batch=20, seed=0)
    data = load_cifar10(tmp_path)
    assert data["x_train"].shape == (100, 32, 32, 3) and data["x_test"].shape == (20, 32, 32, 3)
    assert data["y_train"].shape == (100,) and data["y_test"].shape == (20,)
    assert all(a.dtype == np.uint8 for a in data.values())
    with tarfile.open(archive) as tar:
        batches = [pickle.load(tar.extractfile(member), encoding="bytes")
                   for member in [*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH]]
    # Each row is 1024 red, then 1024 green, then 1024 blue values, each plane row-major over 32x32.
    rows = np.concatenate([b[b"data"] for b in batches[:5]])
    for i, r, c, ch in [(0, 0, 0, 0), (0, 0, 1, 1), (7, 5, 31, 2), (99, 31, 0, 1)]:
        assert data["x_train"][i, r, c, ch] == rows[i, ch * 1024 + r * 32 + c]
    np.testing.assert_array_equal(data["x_test"][3, :, :, 0], batches[5][b"data"][3, :1024].reshape(32, 32))
    np.testing.assert_array_equal(data["y_train"], np.concatenate([b[b"labels"] for b in batches[:5]]))
    np.testing.assert_array_equal(data["y_test"], batches[5][b"labels"])


def test_empty_file_is_a_clear_error(tmp_path):
    path = tmp_path / "empty.gz"
    path.write_bytes(b"")
    with pytest.raises(PipelineError, match=r"empty\.gz is empty \(0 bytes\).*[Dd]elete it"):
        gunzip(path)


@pytest.mark.parametrize("damage", ["corrupt", "truncated", "not gzip"])
def test_damaged_gzip_is_a_clear_error(tmp_path, damage):
    good = gzip.compress(np.random.default_rng(1).integers(0, 256, 5000, dtype=np.uint8).tobytes())
    bad = {"corrupt": good[:20] + bytes(b ^ 0xFF for b in good[20:60]) + good[60:],
           "truncated": good[: len(good) // 2],
           "not gzip": b"<html>404 Not Found</html>"}[damage]
    path = tmp_path / "file.gz"
    path.write_bytes(bad)
    with pytest.raises(PipelineError, match=r"file\.gz is not a valid gzip file .*corrupt or truncated"):
        gunzip(path)


def test_truncated_idx_payload_is_a_clear_error():
    raw = idx_bytes(np.zeros((3, 28, 28), dtype=np.uint8))
    with pytest.raises(PipelineError, match=r"x: header announces shape \(3, 28, 28\).*truncated"):
        parse_idx(raw[:-100], "x")
    with pytest.raises(PipelineError, match=r"too short for an IDX header"):
        parse_idx(raw[:6], "x")


def test_wrong_magic_number_is_a_clear_error():
    raw = idx_bytes(np.zeros(5, dtype=np.uint8))
    with pytest.raises(PipelineError, match=r"labels: wrong magic number 0x00000802.*not an IDX file"):
        parse_idx(b"\x00\x00\x08\x02" + raw[4:], "labels")


@pytest.mark.parametrize("keep, message", [
    (100, r"cifar-10-python\.tar\.gz cannot be read as a tar\.gz archive .*corrupt or truncated"),
    # Cut inside the first member: reported via that member (the gzip stream's own EOF message).
    (5000, r"cifar-10-python\.tar\.gz: cifar-10-batches-py/data_batch_1 .*Compressed file ended"),
])
def test_truncated_cifar_archive_is_a_clear_error(tmp_path, keep, message):
    archive = write_cifar_archive(tmp_path)
    archive.write_bytes(archive.read_bytes()[:keep])
    with pytest.raises(PipelineError, match=message):
        load_cifar10(tmp_path)


def test_cifar_archive_without_the_expected_members_is_a_clear_error(tmp_path):
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz"):
        pass
    with pytest.raises(PipelineError, match=r"missing; expected the official cifar-10-python\.tar\.gz"):
        load_cifar10(tmp_path)


class RunsACommand:
    """A pickle that, unpickled with the standard loader, would call os.system."""

    def __reduce__(self):
        import os
        return os.system, ("touch pwned",)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_a_pickle_that_calls_a_function_is_refused_unrun(tmp_path, monkeypatch, protocol):
    monkeypatch.chdir(tmp_path)
    archive = write_cifar_archive(tmp_path)
    hostile = pickle.dumps({b"data": RunsACommand(), b"labels": [0]}, protocol=protocol)
    with tarfile.open(archive, "w:gz") as tar:  # the same layout, one batch replaced
        for member in [*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH]:
            info = tarfile.TarInfo(member)
            info.size = len(hostile)
            tar.addfile(info, io.BytesIO(hostile))
    with pytest.raises(PipelineError) as caught:
        load_cifar10(tmp_path)
    message = str(caught.value)
    assert "references posix.system" in message and "refused without running it" in message
    assert "\n" not in message and not (tmp_path / "pwned").exists()


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_numpy_batches_of_either_protocol_still_load(tmp_path, protocol):
    rng = np.random.default_rng(0)
    batch = pickle.dumps({b"data": rng.integers(0, 256, (10, 3072), dtype=np.uint8), b"labels": list(range(10))},
                         protocol=protocol)
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for member in [*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH]:
            info = tarfile.TarInfo(member)
            info.size = len(batch)
            tar.addfile(info, io.BytesIO(batch))
    assert load_cifar10(tmp_path)["x_train"].shape == (50, 32, 32, 3)
