"""Benchmark: the seeds of one run sharing a GPU. Trains ``--run`` on the JAX backend with its seeds one
after another (CH11_WORKERS=1) and with ``--workers`` worker processes at once, in one sitting; prints the
wall times, their ratio, whether the outputs are byte-identical, and what ``nvidia-smi`` saw meanwhile
(processes on the GPU at once, their memory together).

Usage: python bench/gpu_workers.py [--run e04_elu] [--seeds 8] [--epochs 3] [--workers 8] [--out FILE]

Each arm runs `python -m stages.train <run>` in its own scratch copy of the code and params.yaml (the
validated data built from data/raw/fashion_mnist/ when data/validated/ lacks it); nothing here is touched.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def scratch(base: Path, run: str, seeds: int, epochs: int) -> Path:
    """A copy of the code and params.yaml on the JAX backend, ``seeds`` seeds, ``epochs`` epochs."""
    for folder in ("ch11", "stages"):
        shutil.copytree(ROOT / folder, base / folder, ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["defaults"]["backend"] = "jax"
    params["limits"].update(max_epochs=epochs, max_seeds=seeds)
    (base / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    (base / "data" / "validated").mkdir(parents=True)
    (base / "data" / "validated" / "fashion_mnist.npz").symlink_to(validated_data(params))
    return base


def validated_data(params: dict) -> Path:
    """data/validated/fashion_mnist.npz, split from the raw files as the validate stage does (without GX)."""
    target = ROOT / "data" / "validated" / "fashion_mnist.npz"
    if not target.exists():
        from ch11 import atomic
        from ch11.data.datasets import LOADERS
        from ch11.data.splits import split_arrays

        arrays = LOADERS["fashion_mnist"](ROOT / "data" / "raw" / "fashion_mnist")
        atomic.write_npz(target, split_arrays(arrays, params["validate"]["fashion_mnist"]["validation_size"]))
    return target


def gpu_sampler(seen: dict, stop: threading.Event) -> None:
    """Every 0.5 s: the compute processes on the GPUs and their memory (MiB), the highest of each kept."""
    while not stop.wait(0.5):
        try:
            rows = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory",
                                   "--format=csv,noheader,nounits"], capture_output=True, text=True,
                                  timeout=10).stdout.strip().splitlines()
        except (OSError, subprocess.TimeoutExpired):
            return
        used = [int(r.split(",")[1]) for r in rows if r.strip()]
        seen["processes"] = max(seen.get("processes", 0), len(used))
        seen["memory_mb"] = max(seen.get("memory_mb", 0), sum(used))


def digests(root: Path, run: str) -> dict[str, str]:
    """File name -> a short hash of its bytes, for every model, prediction, history and info file."""
    files = [*(root / "models" / run).iterdir(), *(root / "metrics/fashion_mnist/train" / run).iterdir()]
    return {f.name: hashlib.sha256(f.read_bytes()).hexdigest()[:12] for f in sorted(files)}


def arm(base: Path, args, workers: int) -> dict:
    root = scratch(base / f"arm-{len(list(base.iterdir()))}", args.run, args.seeds, args.epochs)
    seen, stop = {}, threading.Event()
    sampler = threading.Thread(target=gpu_sampler, args=(seen, stop), daemon=True)
    sampler.start()
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "stages.train", args.run], cwd=root, capture_output=True, text=True,
                          env={**os.environ, "CH11_WORKERS": str(workers),
                               "PYTHONPATH": os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")])})
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    if done.returncode:
        sys.exit(f"train {args.run} with {workers} worker(s) failed:\n{done.stdout[-3000:]}\n{done.stderr[-6000:]}")
    info = json.loads(next((root / "metrics/fashion_mnist/train" / args.run).glob("info-*.json")).read_text())
    return {"workers": workers, "wall_s": round(wall, 1), "files": digests(root, args.run),
            "device": f"{info.get('device')} {info.get('device_model')}", "gpu_processes_max": seen.get("processes"),
            "gpu_memory_mb_max": seen.get("memory_mb")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="e04_elu")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gpu-workers-") as tmp:
        serial, shared = arm(Path(tmp), args, 1), arm(Path(tmp), args, args.workers)
    differing = sorted(name for name in serial["files"] if serial["files"][name] != shared["files"].get(name))
    result = {"run": args.run, "seeds": args.seeds, "epochs": args.epochs,
              "arms": [{k: x for k, x in a.items() if k != "files"} for a in (serial, shared)],
              "ratio": round(shared["wall_s"] / serial["wall_s"], 2), "identical": not differing,
              "differing_files": differing}
    print(json.dumps(result, indent=1))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
