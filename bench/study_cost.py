"""Benchmark: the cost of the full Fashion-MNIST study on this machine, per backend, projected from a timed
sample of its stages.

Usage: python bench/study_cost.py [--backends tensorflow jax] [--epochs 3] [--cores N]
                                  (needs data/validated/fashion_mnist.npz)

For each backend and each sample run (a plain MLP, an adaptive optimizer, BN + dropout, the 20-layer net)
one process does what a train stage does for one seed: start Python, import Keras, load the data, build,
probe, train 1 epoch (tracing/compilation) and ``--epochs`` more (timed: the steady-state epoch), predict,
save. ``fixed`` = that process's wall time minus its steady-state epochs: the per-seed overhead. Every run
of params.yaml is then mapped to the sample it resembles and costed as
    seeds x (fixed + epochs x epoch_s x train_samples / 55,000)
with ``epochs`` the committed mean (early stopping) where metrics/fashion_mnist/eval/<run>.json exists,
else the budget. The projection divides by the cores (one training per core, as the flow runs them)
and is printed with its parts.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ("baseline", "e08_adam", "e13_production", "x08_baseline")
FULL_TRAIN = 55000


def sample_of(config) -> str:
    if len(config.widths) > 10:
        return "x08_baseline"
    if config.batch_norm != "none" or config.dropout > 0:
        return "e13_production"
    if config.optimizer.name != "sgd":
        return "e08_adam"
    return "baseline"


def child(run: str, backend_name: str, epochs: int) -> dict:
    start = time.perf_counter()
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from ch11.training.seed import compiled_model, prepared

    config, x, y = prepared(run, backend_name)
    from ch11.training import backend, probes, engine

    backend.seed_everything(1, mixed_precision=False)
    model = compiled_model(config, x["train"])
    probes.probe(model, x["train"], y["train"])
    data = {"train": (x["train"], y["train"]), "valid": (x["valid"], y["valid"])}
    with tempfile.TemporaryDirectory() as tmp:
        engine.fit(model, config, data, 1, Path(tmp) / "state", epochs=1)
        timed = time.perf_counter()
        engine.fit(model, config, data, 1, Path(tmp) / "state", epochs=1 + epochs)
        epoch_s = (time.perf_counter() - timed) / epochs
        probes.probe(model, x["train"], y["train"])
        engine.predict(model, x["test"])
        engine.save_model(model, Path(tmp) / "model.keras")
    return {"run": run, "backend": backend_name, "epoch_s": epoch_s,
            "in_process_s": time.perf_counter() - start}


def measure(run: str, backend_name: str, epochs: int) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CH11_THREADS": "1"}
    start = time.perf_counter()
    out = subprocess.run([sys.executable, __file__, "--child", run, "--backend", backend_name,
                          "--epochs", str(epochs)], env=env, check=True, capture_output=True, text=True)
    wall = time.perf_counter() - start
    found = json.loads(out.stdout.strip().splitlines()[-1])
    found["fixed_s"] = wall - epochs * found["epoch_s"]
    return found


def expected_epochs(run: str, budget: int) -> float:
    path = ROOT / "metrics" / "fashion_mnist" / "eval" / f"{run}.json"
    if path.exists():
        mean = json.loads(path.read_text()).get("mean", {}).get("epochs")
        if mean:
            return float(mean)
    return float(budget)


def project(samples: dict[str, dict], cores: int) -> tuple[float, list[str]]:
    sys.path.insert(0, str(ROOT))
    from ch11 import params as params_mod

    params = params_mod.load(ROOT / "params.yaml")
    total, lines = 0.0, []
    for run in params.run_names():
        if params.dataset_of(run) != "fashion_mnist":
            continue
        config = params.run(run)
        s = samples[sample_of(config)]
        n_train = config.train_limit or (FULL_TRAIN if config.classes is None else FULL_TRAIN * len(config.classes) / 10)
        epochs = expected_epochs(run, config.epochs)
        seeds = len(params.seeds_of(run))
        cost = seeds * (s["fixed_s"] + epochs * s["epoch_s"] * n_train / FULL_TRAIN)
        total += cost
        lines.append(f"  {run:24s} {seeds} seeds x {epochs:5.1f} epochs ~ {sample_of(config):15s} {cost / 60:6.1f} min")
    return total / cores, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--backend", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.backend, args.epochs)))
        return
    for backend_name in args.backends:
        samples = {run: measure(run, backend_name, args.epochs) for run in SAMPLES}
        for s in samples.values():
            print(f"{backend_name:10s} {s['run']:15s} {s['epoch_s']:6.2f} s/epoch, fixed {s['fixed_s']:5.1f} s "
                  "per seed (process, imports, data, compile, probes, predict, save)", flush=True)
        wall, lines = project(samples, args.cores)
        print("\n".join(lines))
        print(f"{backend_name}: projected full Fashion-MNIST study {wall / 60:.0f} min on {args.cores} core(s), "
              "one training per core", flush=True)


if __name__ == "__main__":
    main()
