"""Contract of flows/dvc_adapter.py with the pinned DVC: the internals it calls exist and behave as
`dvc repro` does, on a tiny project (shell commands, no training): plan, prepare, run, record, skip,
restore from the cache - after which DVC itself finds nothing to do."""
from __future__ import annotations

import inspect
import json
from pathlib import Path

import pytest

from flows.dvc_adapter import DvcAdapter
from tests.helpers import dvc, git, run as run_child

DVC_YAML = """\
stages:
  source:
    cmd: python -c "open('a.txt', 'w').write('a')"
    outs: [a.txt]
  copy:
    foreach: [x, y]
    do:
      cmd: python -c "open('${item}.txt', 'w').write(open('a.txt').read() + '${item}')"
      deps:
        - a.txt
      outs:
        - ${item}.txt
"""


def test_the_dvc_internals_called_exist_with_the_expected_parameters():
    from dvc.repo import Repo
    from dvc.repo.reproduce import _reproduce_stage, get_active_graph, plan_repro
    from dvc.stage import Stage
    from dvc.stage.run import _enforce_cmd_list, _make_cmd, get_executable

    def params(fn) -> list[str]:
        return list(inspect.signature(fn).parameters)

    assert params(get_active_graph)[:1] == ["graph"] and params(plan_repro)[:2] == ["graph", "stages"]
    assert params(_reproduce_stage)[:1] == ["stage"] and params(_make_cmd)[:2] == ["executable", "cmd"]
    assert params(_enforce_cmd_list) == ["cmd"] and params(get_executable) == []
    assert callable(Repo._reset) and hasattr(Repo, "scm_context")  # instance state: the tests below
    for method in ("changed", "changed_stage", "changed_deps", "remove_outs", "save_deps", "save", "commit", "dump"):
        assert callable(getattr(Stage, method)), method


@pytest.fixture
def adapter(tmp_path, request) -> DvcAdapter:
    git(tmp_path, "init", "-q")
    dvc(tmp_path, "init", "-q")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    found = DvcAdapter(tmp_path)
    request.addfinalizer(found.close)
    return found


def run(adapter: DvcAdapter, name: str) -> None:
    action, work = adapter.prepare(name)
    assert action == "run", (name, action)
    commands, cwd, env = work
    assert env["DVC_STAGE"] == name
    for argv in commands:
        run_child(argv, cwd, check=True)


def test_plan_prepare_run_record_then_dvc_has_nothing_to_do(adapter):
    root = Path(adapter.root)
    order, upstream = adapter.plan(["copy@*"])  # DVC's glob: both copies and their upstream
    assert order[0] == "source" and set(order) == {"source", "copy@x", "copy@y"}
    assert upstream == {"source": [], "copy@x": ["source"], "copy@y": ["source"]}
    assert adapter.plan(["copy"])[0] == order  # a foreach group
    with pytest.raises(ValueError, match=r"no stage matches target\(s\) 'cpy@\*'.*groups \(copy, source\)"):
        adapter.plan(["cpy@*"])
    for name in order:
        run(adapter, name)
    assert adapter.record(order) == {}
    assert (root / "y.txt").read_text() == "ay"
    assert json.loads(dvc(root, "status", "--json").stdout) == {}  # recorded exactly as `dvc repro` would

    adapter.plan(None)
    assert [adapter.prepare(name)[0] for name in order] == ["skipped"] * 3
    (root / "x.txt").unlink()
    adapter.plan(None)
    assert adapter.prepare("copy@x") == ("restored", None)  # from DVC's cache, no command run
    assert (root / "x.txt").read_text() == "ax"


def test_a_declared_output_the_command_did_not_write_is_an_error_not_a_record(adapter):
    adapter.plan(["source"])
    action, _ = adapter.prepare("source")  # the command is not run: a.txt is never written
    assert action == "run"
    errors = adapter.record(["source"])
    assert "stage 'source' ran but DVC could not record it" in errors["source"]
    assert not (Path(adapter.root) / "dvc.lock").exists()
