"""Benchmark: how long a user waits for one edited run - a 10-seed, 30-epoch run (`e04_elu`, full data)
retrained through `dvc exp run -S ...` - with its seeds one after another (CH11_WORKERS=1) and with the
default workers (every core), in one sitting; their ratio, and whether the outputs are byte-identical.

Usage: python bench/edit_latency.py [--run e04_elu] [--seeds 10]

Each arm gets its own fresh project copy (ch11/sandbox.py) holding only that run, with the validated data
prepared first (`dvc repro validate@fashion_mnist`, not timed), then times
`dvc exp run -S '++runs.<run>.l2=0.0001' train@<run>`: the stage the edited run waits on. Also prints, per
arm, the stage's first time-left line against what it really took after that (the ETA's error), and the
highest peak memory a seed's process recorded.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from ch11.sandbox import project_copy  # noqa: E402

DVC = [sys.executable, "-m", "dvc"]


def digest(root: Path, run: str) -> str:
    files = sorted((root / "models" / run).iterdir()) + sorted((root / "metrics/fashion_mnist/train" / run).iterdir())
    return hashlib.sha256(b"".join(f.name.encode() + f.read_bytes() for f in files)).hexdigest()[:16]


def arm(base: Path, run: str, seeds: int, workers: str | None) -> dict:
    root = project_copy(base / (workers or "default"), runs=[run], seeds=list(range(1, seeds + 1)),
                        limits={"max_epochs": None, "max_train_samples": None, "max_eval_samples": None})
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("CH11_WORKERS", None)
    if workers:
        env["CH11_WORKERS"] = workers
    subprocess.run(DVC + ["repro", "validate@fashion_mnist"], cwd=root, env=env, check=True, capture_output=True)
    start = time.perf_counter()
    proc = subprocess.Popen(DVC + ["exp", "run", "-S", f"++runs.{run}.l2=0.0001", f"train@{run}"], cwd=root, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first_eta = None
    for line in proc.stdout:
        match = re.search(r"seed\(s\) done, ~(\d+) (min|s) left", line)
        if match and first_eta is None:
            first_eta = (time.perf_counter(), float(match[1]) * (60 if match[2] == "min" else 1))
    assert proc.wait() == 0, f"dvc exp run failed in {root}"
    end = time.perf_counter()
    timing = json.loads((root / "metrics/fashion_mnist/timing" / f"{run}.json").read_text()).values()
    found = {"wall_s": end - start, "digest": digest(root, run),
             "peak_mb": max(seed.get("peak_rss_mb", 0) for seed in timing)}
    if first_eta:
        found["eta_error"] = first_eta[1] / (end - first_eta[0]) - 1
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="e04_elu")
    parser.add_argument("--seeds", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        serial = arm(Path(tmp), args.run, args.seeds, "1")
        parallel = arm(Path(tmp), args.run, args.seeds, None)
    cores = len(os.sched_getaffinity(0))
    for name, found in (("1 worker", serial), (f"default ({cores} cores)", parallel)):
        eta = f", ETA after the first seed off by {found['eta_error']:+.0%}" if "eta_error" in found else ""
        print(f"{name:>20}: {found['wall_s']:7.1f} s, peak memory of a worker {found['peak_mb']} MiB{eta}")
    print(f"{'ratio':>20}: {parallel['wall_s'] / serial['wall_s']:.2f} (default / 1 worker); outputs "
          f"{'byte-identical' if parallel['digest'] == serial['digest'] else 'DIFFER'}")


if __name__ == "__main__":
    main()
