"""Parsers for the raw dataset files: Fashion-MNIST IDX (gzip) and CIFAR-10 python pickles (tar.gz).

Both return ``{"x_train", "y_train", "x_test", "y_test"}`` as uint8 arrays, images NHW(C).
Any malformed input is a PipelineError naming the file and what is wrong with it.
"""
from __future__ import annotations

import gzip
import pickle
import tarfile
import zlib
from pathlib import Path

import numpy as np

from ch11.errors import PipelineError

FASHION_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
CIFAR_ARCHIVE = "cifar-10-python.tar.gz"
CIFAR_TRAIN_BATCHES = [f"cifar-10-batches-py/data_batch_{i}" for i in range(1, 6)]
CIFAR_TEST_BATCH = "cifar-10-batches-py/test_batch"
IDX_MAGIC = {2049: 1, 2051: 3}  # labels: 1 dimension, images: 3 dimensions (uint8 data, type 0x08)


def gunzip(path: Path) -> bytes:
    """The decompressed bytes of a gzip file, or a clear error if it is empty, corrupt or truncated."""
    data = path.read_bytes()
    if not data:
        raise PipelineError(f"{path} is empty (0 bytes); delete it and rerun so it is fetched again.")
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise PipelineError(f"{path} is not a valid gzip file ({exc}); it is corrupt or truncated. "
                            "Delete it and rerun so it is fetched again.") from exc


def parse_idx(raw: bytes, name: str) -> np.ndarray:
    """Decode one IDX file (big-endian header: magic, dimension sizes, then uint8 data)."""
    if len(raw) < 8:
        raise PipelineError(f"{name}: {len(raw)} bytes is too short for an IDX header; the file is truncated.")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in IDX_MAGIC:
        raise PipelineError(f"{name}: wrong magic number {magic:#010x}; expected 0x00000801 (labels) or "
                            "0x00000803 (images). This is not an IDX file of uint8 data.")
    ndim = IDX_MAGIC[magic]
    header = 4 + 4 * ndim
    shape = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(raw) != expected:
        raise PipelineError(f"{name}: header announces shape {shape} ({expected} bytes) but the file has "
                            f"{len(raw)} bytes; it is truncated or corrupt.")
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(shape)


def load_fashion_mnist(folder: Path) -> dict[str, np.ndarray]:
    return {key: parse_idx(gunzip(folder / name), name) for key, name in FASHION_FILES.items()}


# What a CIFAR-10 batch pickle may reference: numpy's array reconstruction (numpy 1 and 2 module names,
# protocol 2 and 5) and the codec call that protocol 2 uses for bytes. Anything else is refused unrun.
DATA_GLOBALS = {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
                ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
                ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}


class DataUnpickler(pickle.Unpickler):
    """Parses a pickle of plain containers, bytes and numpy arrays; never calls anything else in it."""

    def find_class(self, module: str, name: str):
        if (module, name) in DATA_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it references {module}.{name}, which a data file has no reason to call; "
                                     "refused without running it")


def _cifar_batch(tar: tarfile.TarFile, member: str, archive: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        handle = tar.extractfile(member)
        batch = DataUnpickler(handle, encoding="bytes").load()
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        labels = np.asarray(batch[b"labels"], dtype=np.uint8)
    except KeyError as exc:
        raise PipelineError(f"{archive}: member or key {exc} missing; expected the official "
                            "cifar-10-python.tar.gz layout (cifar-10-batches-py/data_batch_1..5, "
                            "test_batch, each a pickle with b'data' and b'labels').") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as exc:
        raise PipelineError(f"{archive}: {member} is not a valid CIFAR-10 pickle ({exc}).") from exc
    if data.ndim != 2 or data.shape[1] != 3072 or len(labels) != len(data):
        raise PipelineError(f"{archive}: {member} holds data of shape {data.shape} and {len(labels)} "
                            "labels; expected (N, 3072) and N labels.")
    return data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def load_cifar10(folder: Path) -> dict[str, np.ndarray]:
    archive = folder / CIFAR_ARCHIVE
    try:
        with tarfile.open(archive, "r:gz") as tar:
            train = [_cifar_batch(tar, m, archive) for m in CIFAR_TRAIN_BATCHES]
            x_test, y_test = _cifar_batch(tar, CIFAR_TEST_BATCH, archive)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise PipelineError(f"{archive} cannot be read as a tar.gz archive ({exc}); it is corrupt or "
                            "truncated. Delete it and rerun so it is fetched again.") from exc
    return {"x_train": np.concatenate([x for x, _ in train]), "y_train": np.concatenate([y for _, y in train]),
            "x_test": x_test, "y_test": y_test}


LOADERS = {"fashion_mnist": load_fashion_mnist, "cifar10": load_cifar10}
