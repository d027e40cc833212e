"""Benchmark: wall time of a no-op `dvc status` here and at an older revision (its own worktree, its own
dvc.yaml/dvc.lock), in one sitting, and their ratio.

Usage: python bench/noop_dvc.py [--base 001b748] [--repeat 3]

The older revision is checked out with `git worktree` into a temporary folder; its outputs are absent there,
so DVC parses the same files (dvc.yaml, params.yaml, dvc.lock) and hashes what exists. Here, run it with
the study recorded (after `make repro`) for the number docs/performance.md states. Prints the best of --repeat runs.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DVC = [sys.executable, "-m", "dvc"]


def best_time(cwd: Path, args: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(DVC + args, cwd=cwd, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
    return min(times)


def lock_lines(cwd: Path) -> int:
    path = cwd / "dvc.lock"
    return len(path.read_text().splitlines()) if path.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default="001b748", help="older revision to compare with")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        subprocess.run(["git", "worktree", "add", "--detach", str(old), args.base], cwd=ROOT, check=True,
                       capture_output=True)
        try:
            subprocess.run(DVC + ["config", "--local", "core.analytics", "false"], cwd=old, capture_output=True)
            now = best_time(ROOT, ["status", "-q"], args.repeat)
            then = best_time(old, ["status", "-q"], args.repeat)
            old_lines = lock_lines(old)
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=ROOT, capture_output=True)
    print(f"no-op dvc status: {now:.1f} s here ({lock_lines(ROOT)}-line dvc.lock) vs {then:.1f} s at {args.base} "
          f"({old_lines}-line dvc.lock): "
          f"{then / now:.1f}x faster")


if __name__ == "__main__":
    main()
