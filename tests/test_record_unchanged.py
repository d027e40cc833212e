"""flows/record_unchanged.py on a tiny DVC project: a code-only change recorded without re-running (outputs
absent, as on a clone without the cache), outputs kept as dvc.lock had them; changed params and changed
outputs are refused."""
from __future__ import annotations

from flows.record_unchanged import record_unchanged
from tests.helpers import dvc, dvc_lock, git

DVC_YAML = """\
stages:
  make:
    cmd: python make.py
    deps: [make.py]
    params: [size]
    outs: [out.txt]
"""


def test_code_only_change_is_recorded_and_params_changes_are_refused(tmp_path):
    git(tmp_path, "init", "-q")
    dvc(tmp_path, "init", "-q")
    (tmp_path / "dvc.yaml").write_text(DVC_YAML)
    (tmp_path / "params.yaml").write_text("size: 3\n")
    (tmp_path / "make.py").write_text("import yaml\nopen('out.txt', 'w').write('x' * yaml.safe_load(open('params.yaml'))['size'])\n")
    dvc(tmp_path, "repro")
    recorded_out = dvc_lock(tmp_path)["make"]["outs"]
    (tmp_path / "out.txt").unlink()                                    # a clone without the cache
    (tmp_path / "make.py").write_text((tmp_path / "make.py").read_text() + "# a comment: outputs unchanged\n")
    assert "Running stage 'make'" in dvc(tmp_path, "repro", "--allow-missing", "--dry").stdout

    recorded, refused = record_unchanged(tmp_path, ["make"])
    assert (recorded, refused) == (["make"], {})
    assert dvc_lock(tmp_path)["make"]["outs"] == recorded_out                       # the recorded output kept
    assert "Running stage" not in dvc(tmp_path, "repro", "--allow-missing", "--dry").stdout

    (tmp_path / "params.yaml").write_text("size: 4\n")                  # a hyperparameter: must retrain
    recorded, refused = record_unchanged(tmp_path, ["make"])
    assert recorded == [] and "params size changed since it ran: retrain it" in refused["make"]
    assert record_unchanged(tmp_path, ["make"], accept_params=True)[0] == ["make"]

    (tmp_path / "out.txt").write_text("something else")                # an output that differs from dvc.lock
    recorded, refused = record_unchanged(tmp_path, ["make"])
    assert recorded == [] and "out.txt differ from dvc.lock" in refused["make"]
