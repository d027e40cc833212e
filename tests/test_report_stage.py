"""The report stage as a stage: its convergence rule, the other hosts stated, no TensorFlow, one clear error for a
missing input, an atomic write, and figures that do not depend on the process's matplotlib settings."""
from __future__ import annotations

import json
import sys

import pandas as pd

from tests.helpers import PROJECT_ROOT, digest, digests, run as run_child
from tests.report_project import PNG_MAGIC, SPECS, make_project, run_stage


def test_the_convergence_flag_uses_the_early_stopping_criterion():
    from ch11.report.findings import RunData

    def run(losses: list[list[float]], patience: int | None) -> RunData:
        histories = {s: pd.DataFrame({"val_loss": loss, "learning_rate": 0.01}) for s, loss in enumerate(losses, 1)}
        evals = {s: {} for s in histories}
        return RunData("r", list(histories), evals, histories, {}, {}, 100, patience)

    falling, turned = list(range(100, 0, -1)), list(range(60, 0, -1)) + list(range(1, 41))
    assert run([falling, falling, turned], 15).converged() == (1, 3)       # best at the cap: never fired
    assert run([turned, turned, falling], 15).converged() == (2, 3)
    assert run([falling[-30:]], None).converged() == (0, 1)                # fixed budgets: patience 15


def test_other_hosts_are_stated_as_the_scope_of_reproducibility(tmp_path):
    root = make_project(tmp_path, {"baseline": SPECS["baseline"], "e05_bn_after": SPECS["e05_bn_after"]})
    check = {"hosts": "host B vs host A", "source": "a test", "seeds": [1, 2], "identical": ["baseline"],
             "moved": ["e05_bn_after"], "moved_by": "±0.2 pts"}
    (root / "metrics" / "host_checks.json").write_text(json.dumps({"fashion_mnist": [check]}))
    assert run_stage(root, "stages.report", "fashion_mnist").returncode == 0
    text = (root / "reports" / "fashion_mnist" / "results.md").read_text()
    assert "Across CPUs no run is bit-identical for certain" in text
    assert "host B vs host A (a test; seeds 1, 2): `baseline` bit-identical; `e05_bn_after` moved: ±0.2 pts." in text
    assert "†" not in text   # no per-row marks implying that unmarked rows are host-proof
    (root / "metrics" / "host_checks.json").write_text(json.dumps({"fashion_mnist": [{"hosts": "x"}]}))
    done = run_stage(root, "stages.report", "fashion_mnist")
    assert done.returncode == 1 and "lacks identical, moved, moved_by, seeds, source" in done.stderr


def test_report_stage_does_not_import_tensorflow():
    code = "import sys, stages.report; assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules"
    done = run_child([sys.executable, "-c", code], PROJECT_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr


def test_missing_eval_file_is_one_clear_error(tmp_path):
    root = make_project(tmp_path, {"baseline": SPECS["baseline"]})
    assert run_stage(root, "stages.aggregate", "fashion_mnist").returncode == 0
    (root / "metrics" / "fashion_mnist" / "eval" / "baseline.json").unlink()
    done = run_stage(root, "stages.report", "fashion_mnist")
    assert done.returncode == 1
    assert "baseline.json not found" in done.stderr and "Traceback" not in done.stderr
    assert not (root / "reports" / "fashion_mnist").exists()


def test_a_write_failing_midway_keeps_the_old_report_and_says_why(tmp_path):
    root = make_project(tmp_path, {"baseline": SPECS["baseline"], "e05_bn_after": SPECS["e05_bn_after"]})
    assert run_stage(root, "stages.aggregate", "fashion_mnist").returncode == 0
    assert run_stage(root, "stages.report", "fashion_mnist").returncode == 0
    reports = root / "reports"

    def files():
        return digests([p for p in reports.rglob("*") if p.is_file()], reports)

    before = files()
    done = run_stage(root, "stages.report", "fashion_mnist", max_file_bytes=20_000)  # figures are larger
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert "cannot write reports/fashion_mnist" in done.stderr and "Nothing was written" in done.stderr
    assert files() == before  # the previous report whole, no temporary left beside it
    assert run_stage(root, "stages.report", "fashion_mnist").returncode == 0
    assert files() == before


def test_figures_are_deterministic_and_leave_matplotlib_settings_alone(tmp_path):
    import matplotlib.pyplot as plt
    from ch11.report import figures
    panels = [{"xlabel": "test accuracy (%)", "bars": [{"label": "a", "values": [85.0, 85.5, 86.0], "claimed": 85.2},
                                                       {"label": "b", "values": [84.0, 84.2, 84.1], "claimed": None}]}]
    settings = dict(plt.rcParams)
    first = figures.variant_bars(tmp_path / "one.png", "title", panels)
    assert dict(plt.rcParams) == settings   # the report's style is its own, not the process's
    with plt.rc_context({"axes.grid": False, "font.size": 20}):   # nor does the process's change the figures
        second = figures.variant_bars(tmp_path / "two.png", "title", panels)
    assert digest(first) == digest(second)
    assert first.read_bytes()[:8] == PNG_MAGIC
    assert figures.variant_bars(tmp_path / "none.png", "title", [{"xlabel": "x", "bars": []}]) is None
