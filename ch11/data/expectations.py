"""The Great Expectations (GX Core 1.x) suite that gates the raw arrays before any training sees them.

The arrays become one pandas row per image (``image_table``): its split, label, pixel min/max, NaN count,
mean, standard deviation, shape, dtype and the share of its class within its split, all computed with
vectorised numpy. ``validate_arrays`` runs the suite from ``build_suite`` over that table through the GX
1.x flow: an ephemeral context, a pandas data source with a dataframe asset and a whole-dataframe batch
definition, a ValidationDefinition inside a Checkpoint run with ``batch_parameters={"dataframe": df}``,
and optionally Data Docs built into a folder. Only this module imports great_expectations (slow to
import); analytics are switched off so it runs offline.

Class balance: each class's share of its split must lie within ``class_share_tolerance`` *relative* to
the uniform share 1/10, i.e. ``|share - 0.1| <= 0.1 * tolerance`` (0.09..0.11 for 10 %). A class with no
images has no rows to carry a share, so presence is its own expectation (distinct labels per split).
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

os.environ["GX_ANALYTICS_ENABLED"] = "False"  # before the import: no network, no usage statistics

import great_expectations as gx  # noqa: E402
import great_expectations.expectations as gxe  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from great_expectations.core.run_identifier import RunIdentifier  # noqa: E402
from great_expectations.data_context.types.base import (  # noqa: E402
    DataContextConfig,
    InMemoryStoreBackendDefaults,
    ProgressBarsConfig,
)
from great_expectations.expectations.row_conditions import Column  # noqa: E402

from ch11.data.data_docs import DOCS_RUN_TIME, prune_docs  # noqa: E402
from ch11.errors import PipelineError  # noqa: E402
from ch11.params import DatasetValidation  # noqa: E402

SPLITS = ("train", "test")
N_CLASSES = 10
PIXEL_RANGE = (0, 255)
DOCS_SITE = "local_site"
CHUNK = 4096  # images per chunk for the per-image statistics (bounds float64 temporaries)
COLUMNS = ["split", "label", "class_share", "pixel_min", "pixel_max", "n_nan", "mean", "std", "shape",
           "dtype"]
EXAMPLES = 5  # unexpected values quoted per failed expectation


def shape_text(shape) -> str:
    """``[28, 28]`` -> ``"28x28"``: the form the table's ``shape`` column uses."""
    return "x".join(str(int(d)) for d in shape)


def _image_stats(x: np.ndarray) -> dict[str, np.ndarray]:
    """Per-image min, max, NaN count, mean and std over all pixels (and channels), chunk by chunk."""
    n = len(x)
    flat = x.reshape(n, -1) if n else x.reshape(0, 0)
    out = {k: np.empty(n, np.float64) for k in ("pixel_min", "pixel_max", "mean", "std")}
    out["n_nan"] = np.zeros(n, np.int64)
    floating = np.issubdtype(flat.dtype, np.floating)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN image: its stats are NaN
        for start in range(0, n, CHUNK):
            part = flat[start:start + CHUNK]
            rows = slice(start, start + len(part))
            if floating:  # NaN-aware, so one NaN does not hide the other statistics of its image
                out["n_nan"][rows] = np.isnan(part).sum(axis=1)
                out["pixel_min"][rows] = np.nanmin(part, axis=1)
                out["pixel_max"][rows] = np.nanmax(part, axis=1)
                out["mean"][rows] = np.nanmean(part, axis=1)
                out["std"][rows] = np.nanstd(part, axis=1)
            else:
                out["pixel_min"][rows] = part.min(axis=1)
                out["pixel_max"][rows] = part.max(axis=1)
                as_float = part.astype(np.float64)
                out["mean"][rows] = as_float.mean(axis=1)
                out["std"][rows] = as_float.std(axis=1)
    return out


def _class_share(y: np.ndarray) -> np.ndarray:
    """For each label, the share of its split that carries the same label."""
    if len(y) == 0:
        return np.empty(0, np.float64)
    _, inverse, counts = np.unique(y, return_inverse=True, return_counts=True)
    return counts[inverse.reshape(-1)] / len(y)


def image_table(arrays: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per image of ``x_train`` and ``x_test`` (the frame the suite validates)."""
    parts = []
    for split in SPLITS:
        x, y = np.asarray(arrays[f"x_{split}"]), np.asarray(arrays[f"y_{split}"]).reshape(-1)
        if len(x) != len(y):
            raise PipelineError(f"{split} split: {len(x)} images but {len(y)} labels; the raw files do "
                                "not belong together. Delete data/raw and rerun the download stage.")
        n = len(x)
        stats = _image_stats(x)
        parts.append(pd.DataFrame({
            "split": pd.Series([split] * n, dtype=object),
            "label": y.astype(np.int64) if np.issubdtype(y.dtype, np.integer) else y,
            "class_share": _class_share(y),
            "pixel_min": stats["pixel_min"], "pixel_max": stats["pixel_max"], "n_nan": stats["n_nan"],
            "mean": stats["mean"], "std": stats["std"],
            "shape": pd.Series([shape_text(x.shape[1:])] * n, dtype=object),
            "dtype": pd.Series([str(x.dtype)] * n, dtype=object),
        }, columns=COLUMNS))
    return pd.concat(parts, ignore_index=True)


def class_share_bounds(tolerance: float) -> tuple[float, float]:
    """Allowed share of each class: 1/10 give or take ``tolerance`` of itself (relative)."""
    uniform = 1 / N_CLASSES
    return round(uniform * (1 - tolerance), 12), round(uniform * (1 + tolerance), 12)


def build_suite(spec: DatasetValidation, name: str) -> gx.ExpectationSuite:
    """The expectations every raw dataset must meet, with bounds from ``params.yaml: validate``."""
    suite = gx.ExpectationSuite(name=name)
    in_split = {split: Column("split") == split for split in SPLITS}
    share_lo, share_hi = class_share_bounds(spec.class_share_tolerance)
    classes = list(range(N_CLASSES))
    expectations = [
        gxe.ExpectTableColumnsToMatchSet(column_set=COLUMNS, exact_match=True),
        gxe.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        gxe.ExpectTableRowCountToEqual(value=spec.rows.train, row_condition=in_split["train"]),
        gxe.ExpectTableRowCountToEqual(value=spec.rows.test, row_condition=in_split["test"]),
        gxe.ExpectColumnValuesToBeInSet(column="shape", value_set=[shape_text(spec.image_shape)]),
        gxe.ExpectColumnValuesToBeInSet(column="dtype", value_set=["uint8"]),
        gxe.ExpectColumnValuesToBeBetween(column="n_nan", min_value=0, max_value=0),
        gxe.ExpectColumnValuesToBeBetween(column="pixel_min", min_value=PIXEL_RANGE[0],
                                          max_value=PIXEL_RANGE[1]),
        gxe.ExpectColumnValuesToBeBetween(column="pixel_max", min_value=PIXEL_RANGE[0],
                                          max_value=PIXEL_RANGE[1]),
        gxe.ExpectColumnValuesToNotBeNull(column="label"),
        gxe.ExpectColumnValuesToBeInSet(column="label", value_set=classes),
        gxe.ExpectColumnDistinctValuesToContainSet(column="label", value_set=classes,
                                                   row_condition=in_split["train"]),
        gxe.ExpectColumnDistinctValuesToContainSet(column="label", value_set=classes,
                                                   row_condition=in_split["test"]),
        gxe.ExpectColumnValuesToBeBetween(column="class_share", min_value=share_lo, max_value=share_hi),
        gxe.ExpectColumnValuesToBeBetween(column="mean", min_value=spec.image_mean[0],
                                          max_value=spec.image_mean[1]),
        gxe.ExpectColumnValuesToBeBetween(column="std", min_value=spec.image_std[0],
                                          max_value=spec.image_std[1]),
    ]
    for expectation in expectations:
        suite.add_expectation(expectation)
    return suite


@dataclass(frozen=True)
class Failure:
    """One failed expectation: its type, column (if any), split condition (if any) and what was seen."""
    expectation: str
    column: str | None
    condition: str | None
    observed: str
    expected: str

    def describe(self) -> str:
        where = ", ".join(p for p in (f"column={self.column}" if self.column else "",
                                      f"where {self.condition}" if self.condition else "") if p)
        return f"{self.expectation}({where}): observed {self.observed}; expected {self.expected}"


@dataclass(frozen=True)
class Outcome:
    """What one suite run found; ``message()`` is the single paragraph a failed stage prints."""
    name: str
    success: bool
    evaluated: int
    failures: list[Failure] = field(default_factory=list)
    rows: dict[str, int] = field(default_factory=dict)

    def message(self) -> str:
        if self.success:
            return f"{self.name}: all {self.evaluated} expectations passed."
        return (f"{self.name}: {len(self.failures)} of {self.evaluated} data expectations failed: "
                + "; ".join(f.describe() for f in self.failures)
                + ". Nothing was written. Fix or re-download the raw files, or, if the data is right, "
                  "the bounds in params.yaml (validate).")


def _fmt(value) -> str:
    if isinstance(value, (float, np.floating)):
        return "nan" if np.isnan(value) else f"{value:.6g}"
    if isinstance(value, (list, tuple, set)):
        return "[" + ", ".join(_fmt(v) for v in value) + "]"
    if isinstance(value, (np.integer,)):
        return str(int(value))
    return repr(value)


def _condition_text(condition) -> str | None:
    """``{'column': {'name': 'split'}, 'operator': '==', 'parameter': 'test'}`` -> ``split == 'test'``."""
    if not condition:
        return None
    if isinstance(condition, dict) and "column" in condition:
        return f"{condition['column']['name']} {condition['operator']} {condition['parameter']!r}"
    return str(condition)


def _expected_text(kind: str, kwargs: dict) -> str:
    if "value" in kwargs:
        return _fmt(kwargs["value"])
    if "value_set" in kwargs and "distinct_values_to_contain" in kind:
        return f"every one of {_fmt(sorted(kwargs['value_set']))} present"
    if "value_set" in kwargs:
        return f"values in {_fmt(sorted(kwargs['value_set']))}"
    if "column_set" in kwargs:
        return f"columns {_fmt(kwargs['column_set'])}"
    if "min_value" in kwargs or "max_value" in kwargs:
        return f"{_fmt(kwargs.get('min_value'))} <= value <= {_fmt(kwargs.get('max_value'))}"
    return "non-null values" if kwargs.get("column") else "(see Data Docs)"


def _observed_text(result: dict, exception: dict) -> str:
    # exception_info is either flat or keyed by the metric that raised (GX 1.x uses both shapes)
    infos = [exception, *(v for v in exception.values() if isinstance(v, dict))]
    errors = [i.get("exception_message") for i in infos if i.get("raised_exception")]
    if errors:
        return f"an error: {'; '.join(dict.fromkeys(str(e) for e in errors))}"
    if "unexpected_count" in result and result.get("unexpected_count"):
        examples = list(dict.fromkeys(_fmt(v) for v in result.get("partial_unexpected_list") or []))
        return (f"{result['unexpected_count']} of {result.get('element_count')} rows unexpected, e.g. "
                f"[{', '.join(examples[:EXAMPLES])}]")
    if result.get("missing_count"):  # distinct values lacking some of the set (SUMMARY has no observed_value)
        return f"{result['missing_count']} missing: {_fmt(result.get('partial_missing_list') or [])}"
    return _fmt(result.get("observed_value"))


def _failure(res) -> Failure:
    config = res.expectation_config
    kwargs = dict(config.kwargs)
    return Failure(expectation=config.type, column=kwargs.get("column"),
                   condition=_condition_text(kwargs.get("row_condition")),
                   observed=_observed_text(dict(res.result or {}), dict(res.exception_info or {})),
                   expected=_expected_text(config.type, kwargs))


def _context(docs_dir: Path | None):
    sites = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(),
                               analytics_enabled=False, data_docs_sites=sites,
                               progress_bars=ProgressBarsConfig(globally=False))
    return gx.get_context(project_config=config, mode="ephemeral")


def validate_arrays(arrays: dict[str, np.ndarray], spec: DatasetValidation, *, name: str = "dataset",
                    docs_dir: Path | None = None) -> Outcome:
    """Run the suite over ``arrays`` (x/y train/test); with ``docs_dir``, build Data Docs there too."""
    table = image_table(arrays)
    context = _context(docs_dir)
    asset = context.data_sources.add_pandas(name=f"{name}_arrays").add_dataframe_asset(name="images")
    batch_definition = asset.add_batch_definition_whole_dataframe(name="all_images")
    suite = context.suites.add(build_suite(spec, name))
    definition = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"{name}_images", data=batch_definition, suite=suite))
    actions = [gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=[DOCS_SITE])] if docs_dir else []
    checkpoint = context.checkpoints.add(gx.Checkpoint(
        name=f"validate_{name}", validation_definitions=[definition], actions=actions,
        result_format={"result_format": "SUMMARY", "partial_unexpected_count": 20}))
    # A fixed run time: the Data Docs' paths and pages are the same on every rerun of the same data, so
    # re-validating does not dirty git (the validation itself is what the page reports, not when it ran).
    run_id = RunIdentifier(run_name=name, run_time=DOCS_RUN_TIME)
    result = checkpoint.run(batch_parameters={"dataframe": table}, run_id=run_id)
    (suite_result,) = result.run_results.values()
    failures = [_failure(r) for r in suite_result.results if not r.success]
    if docs_dir is not None:
        prune_docs(docs_dir)
    counts = table["split"].value_counts()
    return Outcome(name=name, success=bool(result.success) and not failures,
                   evaluated=len(suite_result.results), failures=failures,
                   rows={split: int(counts.get(split, 0)) for split in SPLITS})
