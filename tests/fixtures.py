"""Small datasets in the exact real file formats, generated for tests (CIFAR-10 cannot be fetched here)."""
from __future__ import annotations

import gzip
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest

from ch11.data.datasets import CIFAR_ARCHIVE, CIFAR_TEST_BATCH, CIFAR_TRAIN_BATCHES
from ch11.data.sources import DEBIAN_FASHION_MNIST
from tests.helpers import PROJECT_ROOT


def balanced_labels(n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` labels, every class 0-9 equally often (n a multiple of 10), shuffled."""
    return rng.permutation(np.arange(n) % 10).astype(np.uint8)


def cifar_batch_bytes(n: int, rng: np.random.Generator) -> bytes:
    """One pickled batch as in the official archive: b'data' (n, 3072) uint8 rows, b'labels' list."""
    data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    return pickle.dumps({b"batch_label": b"generated", b"labels": balanced_labels(n, rng).tolist(),
                         b"data": data, b"filenames": [b"img%d.png" % i for i in range(n)]})


def write_cifar_archive(folder: Path, per_batch: int = 20, seed: int = 0) -> Path:
    """Write ``cifar-10-python.tar.gz`` with 5 train batches and a test batch of ``per_batch`` images."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / CIFAR_ARCHIVE
    with tarfile.open(path, "w:gz") as tar:
        for member in [*CIFAR_TRAIN_BATCHES, CIFAR_TEST_BATCH]:
            payload = cifar_batch_bytes(per_batch, rng)
            info = tarfile.TarInfo(member)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return path


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode a uint8 array in IDX format (magic 0x0801 for 1-D labels, 0x0803 for 3-D images)."""
    magic = {1: 0x0801, 3: 0x0803}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_gz(path: Path, array: np.ndarray) -> Path:
    """Write ``array`` as a gzip-compressed IDX file, as Fashion-MNIST ships them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(idx_bytes(array)))
    return path


FASHION_MNIST_DIR = DEBIAN_FASHION_MNIST  # Debian's dataset-fashion-mnist (see .ci/run)
# The one data-missing skip: a test (or module, via pytestmark) that needs the real Fashion-MNIST files
needs_fashion_mnist = pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason=(
    f"Fashion-MNIST is not installed in {FASHION_MNIST_DIR}: apt-get install dataset-fashion-mnist "
    "(make setup does, where it can)"))


def fashion_project(root: Path, params_text: str | None = None) -> Path:
    """A project folder for running stages as subprocesses: params.yaml and data/raw/fashion_mnist/."""
    root.mkdir(parents=True, exist_ok=True)
    text = params_text if params_text is not None else (PROJECT_ROOT / "params.yaml").read_text()
    (root / "params.yaml").write_text(text)
    raw = root / "data" / "raw" / "fashion_mnist"
    raw.mkdir(parents=True)
    for source in sorted(FASHION_MNIST_DIR.glob("*.gz")):
        (raw / source.name).symlink_to(source)
    return root
