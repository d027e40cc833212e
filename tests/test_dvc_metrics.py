"""Metrics shaped for DVC's tables (ch11/report/dvc_metrics.py): small files sharing a few short keys, what the real
`dvc metrics show/diff` and `dvc plots diff` make of them, and the project's own `dvc metrics show` size."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from ch11.report.dvc_metrics import effect_metrics, run_metrics, write_files
from ch11.errors import PipelineError
from ch11.report.stats import aggregate
from tests.helpers import PROJECT_ROOT, dvc, git
from tests.report_project import make_project, run_stage

ROW = {"id": "e04_elu-vs-baseline", "diff": -0.165, "ci_low": -0.4838, "ci_high": 0.1538, "p_adj": 0.0123456,
       "reading": "unresolved", "family": "exp04"}


def test_a_runs_headline_is_accuracy_in_points_seeds_diverged_and_epochs():
    per_seed = [{"diverged": False, "test_accuracy": a, "epochs": e} for a, e in ((0.88, 30), (0.89, 28))]
    assert run_metrics(aggregate(per_seed + [{"diverged": True, "epochs": 3}])) == {
        "acc": 88.5, "sd": 0.71, "seeds": 3, "diverged": 1, "epochs": 20.3}
    # every seed diverged: no accuracy at all (DVC shows '-'), never a 0
    assert run_metrics(aggregate([{"diverged": True, "epochs": 2}])) == {"seeds": 1, "diverged": 1, "epochs": 2.0}


def test_effect_rows_become_one_small_file_each_rounded_to_what_moves():
    diverged = {**ROW, "id": "e01_poor_init-vs-baseline", "diff": None, "ci_low": None, "ci_high": None,
                "p_adj": None, "reading": "diverges", "family": "exp01"}
    assert effect_metrics([ROW, diverged]) == {
        "e04_elu-vs-baseline": {"diff": -0.17, "ci_low": -0.48, "ci_high": 0.15, "p_adj": 0.012,
                                "reading": "unresolved", "family": "exp04"},
        "e01_poor_init-vs-baseline": {"reading": "diverges", "family": "exp01"}}


def test_a_comparison_shown_in_several_rows_is_one_file():
    assert effect_metrics([ROW, {**ROW, "label": "the same comparison in another experiment"}]) == effect_metrics([ROW])


def test_an_id_that_is_no_safe_file_name_is_one_clear_error():
    with pytest.raises(PipelineError, match="'e04 elu / baseline' is not a safe file name"):
        effect_metrics([{**ROW, "id": "e04 elu / baseline"}])


def test_aggregate_writes_one_headline_per_run_and_no_stale_one(tmp_path):
    root = make_project(tmp_path)
    stale = root / "metrics/fashion_mnist/runs/removed_run.json"
    stale.parent.mkdir(parents=True)
    stale.write_text("{}")
    assert run_stage(root, "stages.aggregate", "fashion_mnist").returncode == 0
    runs = root / "metrics/fashion_mnist/runs"
    summary = json.loads((root / "metrics/fashion_mnist/summary.json").read_text())
    assert sorted(p.stem for p in runs.iterdir()) == sorted(summary)
    poor = json.loads((runs / "e01_poor_init.json").read_text())  # 2 of 5 seeds diverged (report_project)
    assert poor == run_metrics(summary["e01_poor_init"]) and poor["diverged"] == 2 and poor["seeds"] == 5
    assert json.loads((runs / "baseline.json").read_text())["acc"] == 87.0


@pytest.fixture
def tiny_repo(tmp_path) -> Path:
    """A git + DVC repo with the project's metrics layout (runs/, effects/) and its forest plot entry."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    dvc(root, "init", "-q")
    plots = [p for p in yaml.safe_load((PROJECT_ROOT / "dvc.yaml").read_text())["plots"]
             if any(isinstance(v, dict) and v.get("template") == "forest" for v in p.values())]
    assert len(plots) == 1, "dvc.yaml has one forest plot of the effects"
    shutil.copytree(PROJECT_ROOT / ".dvc/plots", root / ".dvc/plots")
    (root / "dvc.yaml").write_text(yaml.safe_dump(
        {"metrics": ["metrics/fashion_mnist/runs", "metrics/fashion_mnist/effects"], "plots": plots}))
    return root


def write_results(root: Path, elu_accuracy: float, rows: list[dict]) -> None:
    per_seed = {"baseline": [0.880, 0.884], "e04_elu": [elu_accuracy, elu_accuracy + 0.002]}
    write_files(root / "metrics/fashion_mnist/runs", {
        run: run_metrics(aggregate([{"diverged": False, "test_accuracy": a, "epochs": 30} for a in accs]))
        for run, accs in per_seed.items()})
    write_files(root / "metrics/fashion_mnist/effects", effect_metrics(rows))
    csv = root / "reports/fashion_mnist/effects.csv"
    csv.parent.mkdir(parents=True, exist_ok=True)
    csv.write_text("id,label,diff,ci_low,ci_high\n" + "".join(
        f"{r['id']},{r['id'].split('-')[0]},{r['diff']},{r['ci_low']},{r['ci_high']}\n" for r in rows))


def test_metrics_diff_shows_the_edited_runs_headline_and_the_effect_that_moved(tiny_repo, tmp_path):
    root = tiny_repo
    selu = {**ROW, "id": "selu-vs-baseline", "diff": 0.151, "ci_low": -0.365, "ci_high": 0.667, "family": "exp03"}
    write_results(root, 0.870, [ROW, selu])
    git(root, "add", "-A")
    git(root, "commit", "-qm", "results")
    shown = dvc(root, "metrics", "show").stdout.splitlines()
    assert len(shown) == 5 and shown[0].split() == ["Path", "acc", "ci_high", "ci_low", "diff", "diverged",
                                                   "epochs", "family", "p_adj", "reading", "sd", "seeds"]
    moved = {**ROW, "diff": 0.335, "ci_low": 0.02, "ci_high": 0.65, "p_adj": 0.04, "reading": "helps"}
    write_results(root, 0.875, [moved, selu])  # e04_elu edited and retrained: its effect moves, selu's not
    diff = json.loads(dvc(root, "metrics", "diff", "--json").stdout)
    assert {path: set(keys) for path, keys in diff.items() if keys} == {
        "metrics/fashion_mnist/runs/e04_elu.json": {"acc"},
        "metrics/fashion_mnist/effects/e04_elu-vs-baseline.json": {"diff", "ci_low", "ci_high", "p_adj", "reading"}}
    assert diff["metrics/fashion_mnist/runs/e04_elu.json"]["acc"] == {"old": 87.1, "new": 87.6, "diff": 0.5}

    rendered = json.loads(dvc(root, "plots", "diff", "main", "--json").stdout)["data"]
    (forest,) = [plot for name, plot in rendered.items() if name.startswith("Effects")]
    spec = forest[0]["content"]
    assert forest[0]["revisions"] == ["workspace", "main"]
    assert {(row["label"], row["rev"], float(row["diff"])) for row in spec["data"]["values"]} == {
        ("e04_elu", "workspace", 0.335), ("e04_elu", "main", -0.165), ("selu", "workspace", 0.151),
        ("selu", "main", 0.151)}
    drawn = json.dumps(spec["layer"])
    assert all(f'"field": "{field}"' in drawn for field in ("label", "rev", "diff", "ci_low", "ci_high"))
    dvc(root, "plots", "diff", "main", "-o", str(tmp_path / "page"))
    assert "ci_high" in (tmp_path / "page/index.html").read_text()


def test_the_projects_metrics_show_fits_a_terminal():
    """The committed metrics, as `dvc metrics show` prints them on a clone: <= 200 lines, none over 250 chars."""
    lines = dvc(PROJECT_ROOT, "metrics", "show").stdout.splitlines()
    assert len(lines) <= 200 and max(map(len, lines)) <= 250, (len(lines), max(map(len, lines)))
    assert any(line.startswith("metrics/fashion_mnist/runs/baseline.json ") for line in lines)
