"""Record stages whose code or deps list changed but whose outputs did not, without re-running them.

Usage: python -m flows.record_unchanged [--accept-params] <target> [...]   (stage names, groups or globs)

`dvc commit` does this when the outputs are in the workspace; a fresh clone has no DVC cache, so a
stage's cached outputs (models/) are absent and `dvc commit` refuses. This writes, for each target stage
already in dvc.lock, its current deps and params (what `dvc commit` would) and keeps the outputs that
dvc.lock records; an output present in the workspace must match its record, else the stage is refused. A
stage whose params changed is refused too (a changed hyperparameter changes outputs: retrain it), unless
``--accept-params``: for a params change known to leave outputs as they were (a new default equal to the
old behaviour, a key moved), checked on a sample as below.

Only for changes that leave outputs byte-identical (a dependency listed that was imported all along, a
refactor), and only after a sample of the affected stages has been re-run and reproduced the recorded
output hashes (docs/extending.md, section 3).
"""
from __future__ import annotations

import sys
from pathlib import Path

from ch11.paths import PROJECT_ROOT
from ch11.errors import PipelineError, run_main
from flows.dvc_adapter import DvcAdapter, collect_targets



def record_unchanged(root: Path, targets: list[str], accept_params: bool = False) -> tuple[list[str], dict[str, str]]:
    """(stages recorded, {stage: why refused})."""
    from dvc.dependency.param import ParamsDependency

    recorded, refused = [], {}
    book = DvcAdapter(root)
    try:
        with book.repo() as repo:
            for stage in collect_targets(repo, targets):
                name = stage.addressing
                if not stage.cmd or not stage.outs or not all(out.hash_info for out in stage.outs):
                    refused[name] = "not in dvc.lock yet: run it (`dvc repro`)"
                    continue
                stale = [str(out) for out in stage.outs
                         if out.exists and set(out.status().values()) - {"not in cache"}]
                if stale:
                    refused[name] = f"output(s) {', '.join(stale)} differ from dvc.lock: run the stage"
                    continue
                changed_params = [key for dep in stage.deps if isinstance(dep, ParamsDependency)
                                  for key in (dep.status().get(str(dep)) or {})]
                if changed_params and not accept_params:
                    refused[name] = (f"params {', '.join(changed_params)} changed since it ran: retrain it "
                                     "(or --accept-params if the change cannot alter its outputs)")
                    continue
                for dep in stage.deps:
                    if isinstance(dep, ParamsDependency) or dep.exists:
                        dep.save()
                    elif not dep.hash_info:
                        refused[name] = f"dependency {dep} is missing and was never recorded"
                        break
                else:
                    recorded.append(stage)
            if recorded:  # one write of dvc.lock for all of them
                recorded[0].dvcfile.dump_stages(recorded, update_pipeline=False)
    finally:
        book.close()
    return [stage.addressing for stage in recorded], refused


def main(argv: list[str]) -> None:
    accept_params = "--accept-params" in argv
    targets = [a for a in argv if a != "--accept-params"]
    if not targets:
        raise PipelineError("usage: python -m flows.record_unchanged [--accept-params] <target> [...] (stage "
                            "names, groups or globs such as 'train@e04_*'); see the module docstring first.")
    recorded, refused = record_unchanged(PROJECT_ROOT, targets, accept_params)
    print(f"recorded {len(recorded)} stage(s) with their outputs unchanged")
    for name, why in refused.items():
        print(f"refused {name}: {why}", file=sys.stderr)
    if refused:
        raise SystemExit(1)


if __name__ == "__main__":
    run_main(main)
