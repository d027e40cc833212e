"""Benchmark: seconds per training epoch of one run, plain ``model.fit`` on TensorFlow vs our loop on each
backend, every variant in its own process, in one sitting (compare the ratios, not the absolute times).

Usage: python bench/train_speed.py [--run e13_production] [--epochs 3]   (needs data/validated/fashion_mnist.npz)

  plain-tf      what the write-up ran: TensorFlow, model.fit(numpy arrays, batch_size, shuffle=True),
                steps_per_execution=1, TensorFlow's default threads
  plain-tf-1t   the same with one thread (the numerics our loop uses)
  ours-<b>      ch11.training.engine.fit on backend <b>: data order from (seed, epoch), steps_per_execution
                from params, per-epoch inference-mode accuracy on 5,000 training images, a checkpoint per
                epoch, one thread
  ours-<b>-<m>  the same in an instruction-set-stable mode m (see ISA_MODES): kernels that do not depend
                on the host's vector instructions beyond AVX2
The first epoch (tracing/compilation) is not counted: each variant trains 1 epoch, then ``--epochs`` more
timed. Returns the per-epoch seconds and a hash of the trained weights (equal hashes: the mode computes
the same numbers as the default on this host) as JSON lines, then the ratios.
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
ISA_MODES = {  # variant -> environment: oneDNN's kernels dispatch on the host's instruction set
    "ours-tensorflow-onednn-off": {"TF_ENABLE_ONEDNN_OPTS": "0"},
    "ours-tensorflow-onednn-avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2"},
    "ours-jax-avx2": {"XLA_FLAGS_EXTRA": "--xla_cpu_max_isa=AVX2"},
}
VARIANTS = ("plain-tf", "plain-tf-1t", "ours-tensorflow", "ours-jax", *ISA_MODES)


def child(variant: str, run: str, epochs: int) -> dict:
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from ch11.training.seed import compiled_model, prepared

    os.environ["CH11_THREADS"] = str(os.cpu_count()) if variant == "plain-tf" else "1"
    config, x, y = prepared(run, "jax" if variant.startswith("ours-jax") else "tensorflow")
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + os.environ.get("XLA_FLAGS_EXTRA", "")).strip()
    import hashlib

    import keras

    from ch11.training import backend, engine

    backend.seed_everything(1, mixed_precision=False)
    if variant.startswith("plain"):
        config = config.model_copy(update={"steps_per_execution": 1})
    model = compiled_model(config, x["train"])
    data = {"train": (x["train"], y["train"]), "valid": (x["valid"], y["valid"])}
    with tempfile.TemporaryDirectory() as tmp:
        def train(first: int, last: int) -> float:
            start = time.perf_counter()
            if variant.startswith("plain"):
                model.fit(x["train"], y["train"], batch_size=config.batch_size, epochs=last, initial_epoch=first,
                          validation_data=data["valid"], shuffle=True, verbose=0)
            else:
                engine.fit(model, config, data, 1, Path(tmp) / "state", epochs=last)
            return time.perf_counter() - start

        train(0, 1)  # tracing / compilation
        seconds = train(1, 1 + epochs) / epochs
    weights = hashlib.sha256(b"".join(w.tobytes() for w in model.get_weights())).hexdigest()[:12]
    return {"variant": variant, "backend": " ".join([keras.backend.backend(), *backend.versions().values()]),
            "device": " ".join(backend.devices()), "epoch_s": round(seconds, 3), "weights_sha": weights}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="e13_production")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.run, args.epochs)))
        return
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    results = {}
    for variant in args.variants:
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--run", args.run,
                              "--epochs", str(args.epochs)], env={**env, **ISA_MODES.get(variant, {})},
                             check=True, capture_output=True, text=True)
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        print(json.dumps(results[variant]), flush=True)
    plain = results.get("plain-tf", {}).get("epoch_s")
    for variant in [v for v in results if v != "plain-tf" and plain]:
        print(f"{args.run}: {variant} is {plain / results[variant]['epoch_s']:.2f}x plain model.fit on TensorFlow "
              f"({results[variant]['epoch_s']:.2f} vs {plain:.2f} s/epoch)")
    for variant in [v for v in ISA_MODES if v in results]:
        default = results.get("ours-jax" if "jax" in variant else "ours-tensorflow")
        if default is None:
            continue
        same = "the same weights as" if results[variant]["weights_sha"] == default["weights_sha"] else "other weights than"
        print(f"{variant}: {default['epoch_s'] / results[variant]['epoch_s']:.2f}x the speed of {default['variant']}, "
              f"{same} it on this host")


if __name__ == "__main__":
    main()
