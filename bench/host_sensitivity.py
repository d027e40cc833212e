"""Check: do the report's verdicts survive a re-run on a host that picks other kernels?

oneDNN (TensorFlow's CPU kernels) dispatches on the CPU's vector instruction set, so another host can
compute slightly different floats, and small differences grow over training. This re-trains a sample of
runs in a copy of the project with the kernels of another host (default: ``ONEDNN_MAX_CPU_ISA=AVX2``,
what an AVX2-only CPU runs), regenerates the report there from the committed metrics of every other
run, and compares each verdict and each re-run seed's test accuracy with the committed ones.

Usage: python bench/host_sensitivity.py [--runs baseline e05_bn_after ...] [--env NAME=VALUE ...]
       [--jobs 2] [--save]
(needs data/validated/fashion_mnist.npz and committed metrics; minutes per run). Each changed verdict is
also checked against the alternatives the committed report stated for it (ch11/robustness.py). With
--save the findings go to metrics/host_checks.json, which report@<dataset> depends on: the alternatives
it states beside each verdict are simulated from the per-seed changes measured here.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from ch11.report_text import read_verdict_cell  # noqa: E402

DATASET = "fashion_mnist"
RUNS = ["e01_poor_init", "baseline", "selu", "e04_elu", "e05_bn_after", "e05_bn_before", "e06_clip_value",
        "e06_clip_norm", "e09_plateau"]   # runs behind verdicts of experiments 1-6, 9, 10, several near a threshold


def copy_project(dest: Path) -> Path:
    """Tracked files (committed metrics included) and the validated data; no models, no DVC cache."""
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    for rel in listed.split():
        if (ROOT / rel).is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, dest / rel)
    data = dest / "data" / "validated" / f"{DATASET}.npz"
    data.parent.mkdir(parents=True, exist_ok=True)
    data.symlink_to(ROOT / "data" / "validated" / f"{DATASET}.npz")
    return dest


def stage(root: Path, env: dict, *args: str) -> None:
    done = subprocess.run([sys.executable, "-m", *args], cwd=root, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed in {root}:\n{done.stderr[-2000:]}")


def verdicts(report: Path) -> dict[str, tuple[str, set[str]]]:
    """claim -> (verdict, the alternatives stated beside it), from every claim table of a results.md."""
    found, section = {}, ""
    for line in report.read_text().splitlines():
        if line.startswith("## "):
            section = line[3:].split(" — ")[0]
        cells = [c.strip() for c in line.strip("|").split("|")]
        if len(cells) == 7 and (verdict := read_verdict_cell(cells[4])):
            found[f"{section}: {cells[0]}"] = verdict
    return found


def accuracies(root: Path, run: str) -> dict[str, float | None]:
    per_seed = json.loads((root / "metrics" / DATASET / "eval" / f"{run}.json").read_text())["per_seed"]
    return {seed: m.get("test_accuracy") for seed, m in per_seed.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", nargs="+", default=RUNS)
    parser.add_argument("--env", nargs="+", default=["ONEDNN_MAX_CPU_ISA=AVX2"], metavar="NAME=VALUE")
    parser.add_argument("--jobs", type=int, default=2, help="trainings at once (one thread each)")
    parser.add_argument("--save", action="store_true", help="save the findings in metrics/host_checks.json")
    args = parser.parse_args()
    env = {**os.environ, "CH11_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "GX_ANALYTICS_ENABLED": "False",
           **dict(item.split("=", 1) for item in args.env)}
    with tempfile.TemporaryDirectory() as tmp:
        root = copy_project(Path(tmp))

        def rerun(run: str) -> None:
            stage(root, env, "stages.train", run)
            stage(root, env, "stages.evaluate", run)
            print(f"re-ran {run}", flush=True)

        with ThreadPoolExecutor(args.jobs) as pool:
            list(pool.map(rerun, args.runs))
        for name in ("aggregate", "report"):
            stage(root, env, f"stages.{name}", DATASET)
        before, after = verdicts(ROOT / "reports" / DATASET / "results.md"), verdicts(root / "reports" / DATASET
                                                                                          / "results.md")
        print(f"\nRe-trained with {' '.join(args.env)}: {', '.join(args.runs)}")
        equal = total = 0
        for run in args.runs:
            old, new = accuracies(ROOT, run), accuracies(root, run)
            same = sum(old[s] == new[s] for s in old)
            equal, total = equal + same, total + len(old)
            pairs = ", ".join(f"{'—' if old[s] is None else f'{100 * old[s]:.2f}'}→"
                              f"{'—' if new[s] is None else f'{100 * new[s]:.2f}'}" for s in old)
            print(f"  {run}: test accuracy per seed (committed→re-run) {pairs}; {same} of {len(old)} identical")
        rerun = {claim: after.get(claim, ("—", set()))[0] for claim in before}
        flipped = {claim: (old, rerun[claim], rerun[claim] in stated)   # stated: the alternatives the report gave
                   for claim, (old, stated) in before.items() if old != rerun[claim]}
        print(f"\n{equal} of {total} seeds' test accuracies bit-identical; {len(before)} verdicts, "
              f"{len(flipped)} changed" + (":" if flipped else "."))
        for claim, (old, new, stated) in flipped.items():
            print(f"  {claim}: {old} -> {new} ({'among' if stated else 'NOT among'} the alternatives the report stated)")
        if args.save:
            from ch11 import atomic, backend, paths

            record = {"env": args.env, "date": time.strftime("%Y-%m-%d"), "cpu": backend.cpu_description(),
                      "runs": {run: {"committed": accuracies(ROOT, run), "rerun": accuracies(root, run)}
                               for run in args.runs},
                      "verdicts": len(before), "changed": {claim: list(t) for claim, t in flipped.items()}}
            saved = json.loads((ROOT / paths.HOST_CHECKS).read_text()) if (ROOT / paths.HOST_CHECKS).exists() else {}
            atomic.write_json(ROOT / paths.HOST_CHECKS, {**saved, DATASET: record})


if __name__ == "__main__":
    main()
