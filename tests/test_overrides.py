"""`dvc exp run -S` on any key a run reads, its own or its template's: DVC's own override machinery
(apply_overrides, the code path of `-S`) rewrites params.yaml, and `dvc status` then names exactly the stages
of the runs that read the key, and the run's configuration has the new value (issue 28: an edit to a key
inherited through a YAML merge used to vanish)."""
from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest
import yaml

from ch11 import params
from tests.helpers import PROJECT_ROOT, dvc, git, program, readme_override, run

pytestmark = pytest.mark.slow

# One key of a run of every template (and of each run group), the two examples included; a template's
# own key reaches exactly the runs naming it.
CASES = [
    (readme_override(), ["train@e04_elu"]),                                          # none (README)
    ("++runs.e08_momentum.early_stopping.patience=10", ["train@e08_momentum"]),    # early_stopped
    ("++runs.e07_b_scratch.optimizer.learning_rate=0.02", ["train@e07_b_scratch"]),  # transfer_task
    ("++transfer_runs.e07_b_transfer.early_stopping.patience=20", ["train_transfer@e07_b_transfer"]),
    ("++runs.e13_production.schedule.patience=6", ["train@e13_production"]),       # production
    ("++runs.x08_selu.early_stopping.patience=12", ["train@x08_selu"]),            # deep
    ("++runs.x08_onecycle.batch_size=64", ["train@x08_onecycle"]),                 # deep_onecycle
    ("++runs.e08_adam_30.optimizer.beta_1=0.8", ["train@e08_adam_30"]),            # none
    ("templates.deep.epochs=41", ["train@x08_baseline", "train@x08_batch_norm", "train@x08_selu",
                                  "train@x08_alpha_dropout"]),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """What `dvc status` reads of the project: dvc.yaml, dvc.lock, params.yaml and the code (no data, models)."""
    root = tmp_path_factory.mktemp("project")
    for rel in ("dvc.yaml", "dvc.lock", "params.yaml", ".dvc/config", "ch11", "stages"):
        copier = shutil.copytree if (PROJECT_ROOT / rel).is_dir() else shutil.copy2
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        copier(PROJECT_ROOT / rel, root / rel)
    git(root, "init", "-q")
    return root


def params_changed(root: Path) -> set[str]:
    """The stages whose params dependencies differ from dvc.lock."""
    status = json.loads(dvc(root, "status", "--json", check=False, timeout=300).stdout or "{}")
    return {stage for stage, changes in status.items()
            for change in changes if isinstance(change, dict)
            for deps in [change.get("changed deps", {})] if "params.yaml" in deps}


def test_dvc_lock_records_the_params_as_they_are(project):
    assert params_changed(project) == set()


@pytest.mark.parametrize("override, trains", CASES, ids=[c[0] for c in CASES])
def test_an_override_changes_exactly_the_runs_that_read_it(project, override, trains):
    from dvc.utils.hydra import apply_overrides

    (project / "params.yaml").write_text((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))
    apply_overrides(str(project / "params.yaml"), [override])
    changed = params_changed(project)
    assert {s for s in changed if s.startswith("train")} == set(trains)
    assert {s.replace("train", "evaluate", 1) for s in trains} <= changed
    path, value = override.removeprefix("++").split("=")
    group, *keys = path.split(".")
    run = trains[0].split("@")[1]
    config = params.load(project / "params.yaml").run(run).model_dump()
    if group == "templates":
        keys = keys[1:]
    for key in keys[1:] if group != "templates" else keys:
        config = config[key]
    assert config == yaml.safe_load(value), "the edit reaches the run's configuration"




def test_a_cifar_run_override_reaches_dvc(project):
    """cifar_runs (opt-in, not in dvc.lock): the params DVC's own index tracks per train stage change for
    exactly the edited CIFAR-10 run."""
    from dvc.utils.hydra import apply_overrides

    def tracked() -> dict[str, dict]:   # a fresh process: DVC caches what it has read
        return json.loads(run(program("tracked_params"), project, check=True).stdout)

    raw = yaml.safe_load((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))
    raw["datasets"], raw["cifar_runs"] = ["fashion_mnist", "cifar10"], copy.deepcopy(raw["templates"]["cifar10_runs"])
    try:
        (project / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
        before = tracked()
        apply_overrides(str(project / "params.yaml"), ["++cifar_runs.cx08_selu.early_stopping.patience=25"])
        after = tracked()
        assert params.load(project / "params.yaml").run("cx08_selu").early_stopping.patience == 25
    finally:
        (project / "params.yaml").write_text((PROJECT_ROOT / "params.yaml").read_text(encoding="utf-8"))
    assert "train_cifar@cx08_selu" in before
    assert {s for s in after if after[s] != before[s]} == {"train_cifar@cx08_selu"}
