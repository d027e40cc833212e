"""Wall time of the Prefect flow (stage commands in parallel) vs serial `dvc repro`, on the same stale runs.

Two fresh project copies (ch11.sandbox.project_copy), each with the same RUNS, seed 1, the full data and
``--epochs`` epochs (limits.max_epochs). Both are first brought up to date to validate@fashion_mnist,
untimed, so that only the runs are stale. Then, one after the other:

* serial: ``dvc repro evaluate@<run> ...`` in copy A (one command at a time, CH11_THREADS unset = 1);
* flow: ``ch11_pipeline(targets=<the same>, concurrency=N)`` in copy B, in this process, after a
  warm-up flow has started Prefect's ephemeral API server (its start-up is printed separately).

Prints both times and the ratio, and asserts that every run's metrics are identical (wall-clock fields
aside) and its test-set predictions bit-identical.

    .venv/bin/python -m bench.flow_vs_repro                       # 4 runs, 2 epochs, concurrency 2
    .venv/bin/python -m bench.flow_vs_repro --runs baseline e04_elu --epochs 1 --keep /tmp/bench
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from ch11.sandbox import project_copy  # noqa: E402

BIN = Path(sys.executable).parent
RUNS = ["baseline", "e04_elu", "selu", "e04_gelu"]
VOLATILE_KEYS = {"train_time_s"}  # wall-clock time, different on every run


def dvc(root: Path, *args: str) -> None:
    result = subprocess.run([str(BIN / "dvc"), *args], cwd=root, capture_output=True, text=True)
    if result.returncode:
        raise SystemExit(f"dvc {' '.join(args)} failed in {root}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")


def outcome(root: Path, runs: list[str]) -> dict:
    """Each run's eval metrics (wall times left out) and the md5 of its test-set predictions."""
    found = {}
    for run in runs:
        metrics = json.loads((root / "metrics" / "fashion_mnist" / "eval" / f"{run}.json").read_text())
        predictions = (root / "models" / run / "seed-1.npz").read_bytes()
        found[run] = {"metrics": {k: v for k, v in metrics.items() if k not in VOLATILE_KEYS},
                      "predictions_md5": hashlib.md5(predictions).hexdigest()}
    return found


class Phase:
    """Wall time, and CPU seconds of the commands run meanwhile (children, reaped): cores used on average.
    Far fewer cores used than there are, with the load average up, means someone else had the CPUs."""

    def __enter__(self):
        self.load = os.getloadavg()[0]
        self.cpu = self._children_cpu()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.wall = time.perf_counter() - self.start
        self.cores = (self._children_cpu() - self.cpu) / self.wall
        self.load_after = os.getloadavg()[0]

    @staticmethod
    def _children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def __str__(self) -> str:
        return (f"{self.wall:7.1f} s   (its commands used {self.cores:.2f} cores on average; "
                f"load average {self.load:.1f} -> {self.load_after:.1f})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.flow_vs_repro", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", nargs="+", default=RUNS, help=f"runs to train (default: {' '.join(RUNS)})")
    parser.add_argument("--epochs", type=int, default=2, help="limits.max_epochs (default 2)")
    parser.add_argument("--concurrency", type=int, default=2, help="the flow's concurrency (default 2)")
    parser.add_argument("--keep", type=Path, help="build the copies here and keep them (default: a temp dir)")
    args = parser.parse_args(argv)

    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"  # `python`/`dvc` of this venv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.pop("CH11_THREADS", None)
    base = args.keep or Path(tempfile.mkdtemp(prefix="ch11-bench-"))
    limits = {"max_epochs": args.epochs, "max_train_samples": None, "max_eval_samples": None}
    targets = [f"evaluate@{run}" for run in args.runs]
    try:
        roots = {name: project_copy(base / name, runs=args.runs, seeds=[1], limits=limits)
                 for name in ("repro", "flow")}
        print(f"copies in {base}; preparing both up to validate@fashion_mnist (untimed)", flush=True)
        prep = [subprocess.Popen([str(BIN / "dvc"), "repro", "validate@fashion_mnist"], cwd=root,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                for root in roots.values()]
        for proc in prep:
            if proc.wait():
                raise SystemExit(f"preparation failed:\n{proc.stderr.read()[-3000:]}")

        print(f"serial: dvc repro {' '.join(targets)}", flush=True)
        with Phase() as serial:
            dvc(roots["repro"], "repro", *targets)
        print(f"serial dvc repro: {serial}", flush=True)

        from prefect import flow

        from flows.pipeline import ch11_pipeline

        @flow(name="bench-warm-up")
        def warm_up() -> None:
            pass

        start = time.perf_counter()
        warm_up()
        startup = time.perf_counter() - start
        print(f"flow, concurrency {args.concurrency} (Prefect server started in {startup:.1f} s)", flush=True)
        with Phase() as parallel:
            summary = ch11_pipeline(targets=targets, concurrency=args.concurrency, project_dir=str(roots["flow"]))
        assert sorted(summary["ran"]) == sorted([*targets, *(f"train@{run}" for run in args.runs)]), summary

        same = outcome(roots["repro"], args.runs) == outcome(roots["flow"], args.runs)
        print(f"\n{len(args.runs)} runs x {args.epochs} epochs, full data, {os.cpu_count()} CPUs")
        print(f"serial dvc repro         : {serial}")
        print(f"flow (concurrency {args.concurrency})    : {parallel}")
        print(f"Prefect server start-up  : {startup:7.1f} s   (once per process, not counted above)")
        print(f"speed-up                 : {serial.wall / parallel.wall:7.2f}x   "
              f"({serial.wall / (parallel.wall + startup):.2f}x counting the start-up; goal >= 1.6x on 2 "
              "otherwise idle cores)")
        print(f"metrics and predictions identical: {same}")
        assert same, "the flow's metrics differ from dvc repro's"
        return 0
    finally:
        if args.keep is None:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
