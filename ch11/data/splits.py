"""The validated splits (cut from the raw arrays by the validate stage) and the arrays one run sees: those
splits filtered to the run's classes and limits (numpy only)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ch11 import paths
from ch11.errors import PipelineError
from ch11.params import RunConfig

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Split:
    x: np.ndarray  # uint8 images
    y: np.ndarray  # int labels, renumbered 0..k-1 when the run selects classes


def split_arrays(arrays: dict[str, np.ndarray], validation_size: int) -> dict[str, np.ndarray]:
    """Train/valid/test as uint8: the first ``validation_size`` training images become the validation set."""
    x, y = arrays["x_train"], arrays["y_train"]
    out = {"x_train": x[validation_size:], "y_train": y[validation_size:],
           "x_valid": x[:validation_size], "y_valid": y[:validation_size],
           "x_test": arrays["x_test"], "y_test": arrays["y_test"]}
    return {key: np.ascontiguousarray(value, dtype=np.uint8) for key, value in out.items()}


def load_validated(dataset: str) -> dict[str, np.ndarray]:
    path = paths.validated(dataset)
    if not path.exists():
        raise PipelineError(f"{path} not found: the validated {dataset} arrays are missing. "
                            f"Run `dvc repro validate@{dataset}` first (it needs the raw files).")
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def run_splits(dataset: str, config: RunConfig) -> dict[str, Split]:
    """train/valid/test for one run: class subset (relabelled in the given order), then limits."""
    arrays = load_validated(dataset)
    splits = {}
    for name in SPLITS:
        x, y = arrays[f"x_{name}"], arrays[f"y_{name}"].astype(np.int64)
        if config.classes is not None:
            keep = np.isin(y, config.classes)
            lookup = np.full(10, -1, dtype=np.int64)
            lookup[config.classes] = np.arange(len(config.classes))
            x, y = x[keep], lookup[y[keep]]
        limit = config.train_limit if name == "train" else config.eval_limit
        if limit is not None:
            x, y = x[:limit], y[:limit]
        splits[name] = Split(x, y)
    return splits


def n_classes(config: RunConfig) -> int:
    return 10 if config.classes is None else len(config.classes)


def features(x: np.ndarray, config: RunConfig, train_x: np.ndarray) -> np.ndarray:
    """Flattened float32 inputs: pixels in [0, 1], or standardised per pixel with training statistics."""
    flat = x.reshape(len(x), -1).astype(np.float32) / 255.0
    if config.input_scaling == "standardize":
        ref = train_x.reshape(len(train_x), -1).astype(np.float32) / 255.0
        flat = (flat - ref.mean(axis=0)) / (ref.std(axis=0) + 1e-7)
    return flat
