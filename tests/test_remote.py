"""A shared DVC remote end to end, as the README shows it: one machine reproduces and `dvc push`es to a folder
remote; a second machine's git clone `dvc pull`s and `dvc repro` then runs nothing (real DVC, real data, two
tiny runs, so the copy has an effect, in a temporary copy of the project)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from ch11.sandbox import project_copy
from tests.fixtures import needs_fashion_mnist
from tests.helpers import digests, dvc, dvc_lock, git

pytestmark = [pytest.mark.slow, needs_fashion_mnist]


def lock_outputs(root: Path) -> dict[str, str]:
    """Digests of every file of every output dvc.lock records (DVC-cached data and models, git-tracked results)."""
    outs = [root / out["path"] for stage in dvc_lock(root).values() for out in stage.get("outs", [])]
    return digests(sorted(f for out in outs for f in ([out] if out.is_file() else out.rglob("*")) if f.is_file()),
                   root)


def test_a_second_clone_pulls_from_the_remote_and_reproduces_nothing(tmp_path):
    root = project_copy(tmp_path / "first", runs=["baseline", "e04_elu"])   # one effect: its metrics folder is not empty
    dvc(root, "repro")
    remote = tmp_path / "ch11-dvc-storage"
    dvc(root, "remote", "add", "-d", "shared", str(remote))          # the README's commands, in its order
    git(root, "add", "-A")
    git(root, "commit", "-qm", "results and the shared remote")
    dvc(root, "push")
    original = lock_outputs(root)
    assert any(path.startswith("models/baseline/") for path in original) and "data/validated/fashion_mnist.npz" \
        in original

    clone = tmp_path / "second"
    git(tmp_path, "clone", "-q", str(root), str(clone))
    assert not (clone / "models/baseline").exists() and not (clone / ".dvc/cache").exists()  # git's files only
    dvc(clone, "pull")
    assert lock_outputs(clone) == original
    assert json.loads(dvc(clone, "status", "--json").stdout) == {}
    assert "Running stage" not in dvc(clone, "repro", "--dry").stdout
    assert "Running stage" not in dvc(clone, "repro").stdout
