"""Metrics shaped for DVC's tables: `dvc metrics show` draws one row per metrics file and one column per key
(the union over all files), so every metrics file is small and shares a few short keys: one file per run
(aggregate@) and one per effect (report@). Per-seed detail and the full summary stay in plain outputs.
Numbers are rounded to what the study resolves, so `dvc metrics diff` lists only what moved.
The two folders' paths live here, not in ch11/paths.py, which every stage depends on."""
from __future__ import annotations

import re
from pathlib import Path

from ch11 import atomic, paths
from ch11.errors import PipelineError

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def runs_dir(dataset: str) -> Path:
    """metrics/<dataset>/runs/: <run>.json, each run's headline (the DVC metrics of aggregate@<dataset>)."""
    return paths.METRICS / dataset / "runs"


def effects_dir(dataset: str) -> Path:
    """metrics/<dataset>/effects/: <effect id>.json, one effect each (the DVC metrics of report@<dataset>)."""
    return paths.METRICS / dataset / "effects"


def write_files(folder: Path, files: dict[str, dict]) -> None:
    """Replace ``folder`` at once by one ``<name>.json`` per entry of ``files`` (no stale file survives)."""
    with atomic.atomic_path(folder, is_dir=True) as tmp:
        for name, content in files.items():
            atomic.write_json(tmp / f"{name}.json", content)


def points(fraction: float | None) -> float | None:
    """A fraction as percentage points, 2 decimals (None stays None)."""
    return None if fraction is None else round(100 * fraction, 2)


def run_metrics(summary: dict) -> dict:
    """A run's headline from its aggregate summary (ch11.report.stats.aggregate): test accuracy mean and sd in
    points, seeds, diverged seeds, mean epochs trained. Keys without a value (every seed diverged, one seed's
    sd) are left out: DVC shows them as '-'."""
    accuracy = summary.get("test_accuracy", {})
    epochs = summary.get("epochs", {}).get("mean")
    headline = {"acc": points(accuracy.get("mean")), "sd": points(accuracy.get("std")), "seeds": summary["seeds"],
                "diverged": summary["diverged_seeds"], "epochs": None if epochs is None else round(epochs, 1)}
    return {key: value for key, value in headline.items() if value is not None}


def significant(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else float(f"{value:.{digits}g}")


def effect_metrics(rows: list[dict]) -> dict[str, dict]:
    """Effect id -> its metrics file's content: diff and CI in points (2 decimals; the row's ``ci_decimals`` where a
    bound would round onto an edge of its word), adjusted p (2 significant digits), reading, family; a missing
    number (a diverged run) is left out. ``rows``: findings' effect rows; a comparison shown in several rows has
    one id and the same numbers in each, so one file."""
    files = {}
    for row in rows:
        if not SAFE_ID.fullmatch(row["id"]):   # a run or metric name of params.yaml or claims.yaml
            raise PipelineError(f"effect id {row['id']!r} is not a safe file name: ids name "
                                "metrics/<dataset>/effects/<id>.json, so they may use only letters, digits and _.-; "
                                "rename the run or metric in params.yaml or ch11/report/claims.yaml.")
        decimals = row.get("ci_decimals", 2)
        numbers = {key: None if row[key] is None else round(row[key], decimals)
                   for key in ("diff", "ci_low", "ci_high")}
        metrics = {**numbers, "p_adj": significant(row["p_adj"]), "reading": row["reading"], "family": row["family"]}
        files[row["id"]] = {key: value for key, value in metrics.items() if value is not None}
    return files
