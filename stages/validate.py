"""DVC stage ``validate``: ``python -m stages.validate <dataset>`` gates data/raw/<dataset>/ with the GX suite.

On success it writes, each atomically: data/validated/<dataset>.npz (uint8 x/y train, valid, test; the
validation split is the first ``validate.<dataset>.validation_size`` training images), the metrics JSON
(stable: no timestamps) and the GX Data Docs under reports/validation/<dataset>/. If any expectation
fails it exits 1 naming each failed expectation and what it observed, and writes nothing.
"""
from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from ch11 import atomic, params as params_mod, paths
from ch11.data.datasets import LOADERS
from ch11.data.splits import split_arrays
from ch11.errors import PipelineError, run_main


def metrics(outcome, splits: dict[str, np.ndarray]) -> dict:
    return {"success": outcome.success,
            "expectations": {"evaluated": outcome.evaluated, "failed": len(outcome.failures)},
            "raw_rows": dict(outcome.rows),
            "rows": {name: int(len(splits[f"y_{name}"])) for name in ("train", "valid", "test")}}


def validate(dataset: str) -> None:
    start = time.perf_counter()
    params = params_mod.load()
    spec = getattr(params.validate_, dataset)
    raw = paths.raw_dir(dataset)
    if not raw.is_dir():
        raise PipelineError(f"{raw}/ not found: the raw {dataset} files are missing. Run "
                            f"`dvc repro download@{dataset}` first (from the project root).")
    try:
        arrays = LOADERS[dataset](raw)
    except FileNotFoundError as exc:
        raise PipelineError(f"{exc.filename} not found: the raw {dataset} files are missing. Run "
                            f"`dvc repro download@{dataset}` first.") from exc

    from ch11.data.expectations import validate_arrays  # great_expectations is slow to import

    with tempfile.TemporaryDirectory(prefix=f"gx-docs-{dataset}-") as docs:
        outcome = validate_arrays(arrays, spec, name=dataset, docs_dir=Path(docs))
        if not outcome.success:
            raise PipelineError(outcome.message())
        splits = split_arrays(arrays, spec.validation_size)
        atomic.write_npz(paths.validated(dataset), splits)  # uncompressed, byte-reproducible
        atomic.write_json(paths.validation_metrics(dataset), metrics(outcome, splits))
        with atomic.atomic_path(paths.validation_report(dataset), is_dir=True) as tmp:
            shutil.copytree(docs, tmp, dirs_exist_ok=True)
    print(f"{outcome.message()} Wrote {paths.validated(dataset)} "
          f"(train {len(splits['y_train'])}, valid {len(splits['y_valid'])}, test {len(splits['y_test'])}), "
          f"{paths.validation_metrics(dataset)} and {paths.validation_report(dataset)}/index.html "
          f"in {time.perf_counter() - start:.1f} s.")


def main(argv: list[str]) -> None:
    if len(argv) != 1 or argv[0] not in params_mod.DATASETS:
        raise PipelineError("usage: python -m stages.validate <dataset>, with <dataset> one of: "
                            f"{', '.join(params_mod.DATASETS)}.")
    validate(argv[0])


if __name__ == "__main__":
    run_main(main)
