"""This project's Prefect artifacts: a table of every evaluated run's metrics and links to the reports."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from prefect.artifacts import create_markdown_artifact, create_table_artifact

METRICS_ARTIFACT = "ch11-run-metrics"
REPORTS_ARTIFACT = "ch11-reports"


def metric_rows(root: Path) -> list[dict[str, Any]]:
    """One row per (run, seed) of every metrics/<dataset>/eval/<run>.json: dataset, run, seed and its
    scalar metrics."""
    rows = []
    for path in sorted(root.glob("metrics/*/eval/*.json")):
        try:
            per_seed = json.loads(path.read_text(encoding="utf-8"))["per_seed"]
        except (OSError, ValueError, KeyError):
            continue
        for seed, data in per_seed.items():
            row: dict[str, Any] = {"dataset": path.parent.parent.name, "run": path.stem, "seed": int(seed)}
            row.update({key: value for key, value in data.items() if not isinstance(value, (dict, list))})
            rows.append(row)
    first = ["dataset", "run", "seed", "test_accuracy", "test_loss", "best_val_accuracy"]
    columns = list(dict.fromkeys([*(k for k in first if any(k in row for row in rows)),
                                  *(key for row in rows for key in row)]))
    return [{key: row.get(key) for key in columns} for row in rows]


def reports_markdown(root: Path) -> str:
    def link(path: Path) -> str:
        return f"[{path.relative_to(root).as_posix()}]({path.resolve().as_uri()})"

    results = sorted(root.glob("reports/*/results.md"))
    figures = sorted(path for path in root.glob("reports/**/*")
                     if path.suffix.lower() in (".png", ".svg", ".pdf")
                     and path.relative_to(root).parts[1] != "validation")
    docs = sorted(root.glob("reports/validation/*/**/index.html"))
    lines = ["# Chapter 11: reports", ""]
    lines += [f"- {link(path)}" for path in results] or ["No results.md yet: run the `report` stages."]
    if figures:
        lines += ["", "## Figures", ""] + [f"- {link(path)}" for path in figures]
    if docs:
        lines += ["", "## Data validation (Great Expectations Data Docs)", ""] + [f"- {link(path)}" for path in docs]
    return "\n".join(lines) + "\n"


def publish_artifacts(root: Path) -> None:
    rows = metric_rows(root)
    create_table_artifact(rows, key=METRICS_ARTIFACT,
                          description=f"Test metrics of every evaluated run ({len(rows)} rows), "
                                      "from metrics/*/eval/*.json")
    create_markdown_artifact(reports_markdown(root), key=REPORTS_ARTIFACT,
                             description="Reports and figures written by the pipeline")
