"""A throw-away copy of this project (git + DVC, code and config only) with a small profile: what the
tests and benchmarks run the real pipeline in."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from ch11.paths import PROJECT_ROOT
from ch11.params import RUN_GROUPS

SMOKE_LIMITS = {"max_epochs": 1, "max_train_samples": 1000, "max_eval_samples": 500}
OUTPUT_DIRS = ("data", "models", "metrics", "reports", ".checkpoints")


def with_seeds(params: dict, seeds: list[int]) -> dict:
    """``params`` with ``seeds`` for every run: ``defaults.seeds`` set, the lists of runs and templates dropped."""
    entries = [*params.get("templates", {}).values(), *params["templates"].get("cifar10_runs", {}).values()]
    for group in RUN_GROUPS:
        entries += params.get(group, {}).values()
    for entry in entries:
        if isinstance(entry, dict):
            entry.pop("seeds", None)
    return {**params, "defaults": {**params["defaults"], "seeds": list(seeds)}}


def project_copy(root: Path, runs: list[str] | None = None, seeds: list[int] = (1,),
                 limits: dict | None = None) -> Path:
    """A fresh git + DVC copy of this project at ``root`` (code and config only, no outputs or lock),
    with a small profile: ``limits`` caps (default SMOKE_LIMITS), ``seeds`` (for every run), and only the named
    ``runs`` kept (transfer and cifar runs too, when named). Commit included, so `dvc` commands work."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=PROJECT_ROOT, check=True,
                            capture_output=True, text=True).stdout.split()
    for rel in listed:
        src = PROJECT_ROOT / rel
        if rel.split("/")[0] in OUTPUT_DIRS or rel == "dvc.lock" or not src.is_file():
            continue
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, root / rel)
    (root / "metrics").mkdir(exist_ok=True)
    (root / "metrics" / "host_checks.json").write_text("{}\n")  # report@'s input: no second host in a copy
    params = with_seeds(yaml.safe_load((root / "params.yaml").read_text()), seeds)
    params["limits"] = dict(SMOKE_LIMITS if limits is None else limits)
    if runs is not None:
        for group in RUN_GROUPS:
            params[group] = {k: v for k, v in params.get(group, {}).items() if k in runs}
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(git + ["add", "-A"], cwd=root, check=True)
    subprocess.run(git + ["commit", "-qm", "test copy"], cwd=root, check=True)
    return root
