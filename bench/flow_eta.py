"""Benchmark: how right the flow's ETA is. A fresh project copy holds RUNS (full data, 5 seeds, as
recorded) and their recorded seed times (metrics/fashion_mnist/timing/), with the validated data prepared
first (not timed); then `python -m flows.pipeline --targets train@<run> ...` trains them, and the ETA the
flow logs when the first training is recorded is compared with the time the flow really took after it.

Usage: python bench/flow_eta.py [--runs e08_momentum e08_rmsprop ...] [--concurrency N]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from ch11.sandbox import project_copy  # noqa: E402

RUNS = ["e08_momentum", "e08_rmsprop", "x08_onecycle", "x08_onecycle_constant"]   # 5 seeds, ~165 s each
ETA = re.compile(r"train@\S+: done and recorded in dvc\.lock; .* ETA ~([\d.]+) min")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=RUNS)
    parser.add_argument("--concurrency", type=int)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = project_copy(Path(tmp) / "project", runs=args.runs, seeds=[1, 2, 3, 4, 5],
                            limits={"max_epochs": None, "max_train_samples": None, "max_eval_samples": None})
        timing = root / "metrics/fashion_mnist/timing"
        timing.mkdir(parents=True)
        for run in args.runs:
            shutil.copy(REPO / "metrics/fashion_mnist/timing" / f"{run}.json", timing)
        env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        subprocess.run([sys.executable, "-m", "dvc", "repro", "validate@fashion_mnist"], cwd=root, env=env,
                       check=True, capture_output=True)
        command = [sys.executable, "-m", "flows.pipeline", "--project-dir", str(root),
                   "--targets", *[f"train@{run}" for run in args.runs]]
        if args.concurrency:
            command += ["--concurrency", str(args.concurrency)]
        start = time.perf_counter()
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
        first = None
        for line in proc.stdout:
            if first is None and (match := ETA.search(line)):
                first = (time.perf_counter(), float(match[1]) * 60)
        assert proc.wait() == 0, "the flow failed"
        end = time.perf_counter()
    assert first, "no ETA line after a training"
    real = end - first[0]
    print(f"flow: {end - start:.0f} s in all; after the first training: ETA {first[1]:.0f} s, really "
          f"{real:.0f} s, error {first[1] / real - 1:+.0%}")


if __name__ == "__main__":
    main()
