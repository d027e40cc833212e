"""Benchmark: our training loop vs a plain ``model.fit`` of the same production model (experiment 13).

Usage: python bench/train_speed.py [--epochs 2] [--run e13_production]   (needs data/validated/fashion_mnist.npz)

Each variant trains in its own process (thread settings must precede TensorFlow's start):
  plain        model.fit(numpy arrays, batch_size=32), steps_per_execution=1, TensorFlow's default threads
  plain-1t     the same with one intra-op thread (the numerics of our loop)
  pipeline     our loop: in-memory tf.data, steps_per_execution from params, one thread
Prints the time of the last epoch (the first includes tracing) and the speed-up ratios, and asserts that
``pipeline`` and ``plain-1t`` end with identical weights-derived metrics (same batches, same numerics).
Data are not shuffled in any variant, so all three see the same batches.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child(variant: str, run: str, epochs: int) -> None:
    """Train one variant and print its last-epoch time and final metrics as JSON."""
    sys.path.insert(0, str(ROOT))
    os.chdir(ROOT)
    from ch11 import model as model_mod, params as params_mod, training
    from ch11.data import features, n_classes, run_splits
    import keras
    import tensorflow as tf

    config = params_mod.load().run(run).model_copy(update={"epochs": epochs})
    os.environ["CH11_THREADS"] = "0" if variant == "plain" else "1"
    training.configure_tensorflow(seed=1, mixed_precision=False)
    splits = run_splits("fashion_mnist", config)
    x = {k: features(s.x, config, splits["train"].x) for k, s in splits.items()}
    spe = config.steps_per_execution if variant == "pipeline" else 1
    config = config.model_copy(update={"steps_per_execution": spe})
    model = model_mod.build_model(x["train"].shape[1], n_classes(config), config)
    steps = -(-len(x["train"]) // config.batch_size)
    training.compile_model(model, model_mod.build_optimizer(config, steps), config)
    times: list[float] = []
    log = [training.EpochLog(), keras.callbacks.LambdaCallback(on_epoch_end=lambda e, logs: times.append(logs["epoch_time"]))]
    if variant == "pipeline":
        data = training.dataset(x["train"], splits["train"].y, config.batch_size, seed=1, shuffle=False)
        model.fit(data, epochs=epochs, verbose=0, callbacks=log)
    else:
        model.fit(x["train"], splits["train"].y, batch_size=config.batch_size, epochs=epochs, shuffle=False,
                  verbose=0, callbacks=log)
    loss, acc = model.evaluate(x["valid"], splits["valid"].y, batch_size=1024, verbose=0)
    print(json.dumps({"epoch_s": times[-1], "val_loss": float(loss), "val_accuracy": float(acc),
                      "threads": tf.config.threading.get_intra_op_parallelism_threads()}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--run", default="e13_production")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.run, args.epochs)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    results = {}
    for variant in ("plain", "plain-1t", "pipeline"):
        out = subprocess.run([sys.executable, __file__, "--child", variant, "--run", args.run,
                              "--epochs", str(args.epochs)], env=env, check=True, capture_output=True, text=True)
        results[variant] = json.loads(out.stdout.strip().splitlines()[-1])
        print(f"{variant:9s} {results[variant]['epoch_s']:6.2f} s/epoch  "
              f"val_accuracy {results[variant]['val_accuracy']:.6f}  val_loss {results[variant]['val_loss']:.8f}")
    print(f"speed-up vs plain model.fit: {results['plain']['epoch_s'] / results['pipeline']['epoch_s']:.2f}x; "
          f"vs plain model.fit with one thread: "
          f"{results['plain-1t']['epoch_s'] / results['pipeline']['epoch_s']:.2f}x")
    same = {k: results["pipeline"][k] for k in ("val_loss", "val_accuracy")} == \
           {k: results["plain-1t"][k] for k in ("val_loss", "val_accuracy")}
    assert same, "the pipeline's metrics differ from plain model.fit with the same numerics"
    print("metrics identical to plain model.fit (one thread): yes")


if __name__ == "__main__":
    main()
