"""Train e06_clip_norm's net briefly under four clipping settings (argv: backend, scratch folder) and print
JSON: whether counting clipping leaves the weights as they were (norm, value), and the per-epoch clip share
under a threshold no gradient reaches and under one every step exceeds."""
import json
import sys
from pathlib import Path

import numpy as np

from ch11.training import backend

SETTINGS = {"norm": {"clip_norm": 1.0}, "value": {"clip_norm": None, "clip_value": 0.01},
            "never": {"clip_norm": 1e6}, "always": {"clip_norm": None, "clip_value": 1e-6}}


def main() -> None:
    backend.select(sys.argv[1])
    from ch11 import params
    from ch11.training import clipping, engine, model as model_mod

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(256, 20)).astype("float32"), rng.integers(0, 10, 256)

    def built(name):
        config = params.load().run("e06_clip_norm").model_copy(update={"hidden": [16], "epochs": 2,
                                                                       **SETTINGS[name]})
        backend.seed_everything(1, False)
        return config, model_mod.build_model(20, 10, config), model_mod.build_optimizer(config, 8)

    def keras_weights(name, count):
        config, net, optimizer = built(name)
        if count:
            clipping.count_clipping(optimizer)
        net.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer)
        net.fit(x, y, batch_size=32, shuffle=False, epochs=2, verbose=0)
        return [w.tolist() for w in net.get_weights()]

    def shares(name):
        config, net, _ = built(name)
        model_mod.compile_model(net, config, 8)
        rows = engine.fit(net, config, {"train": (x, y), "valid": (x[:64], y[:64])}, 1, Path(sys.argv[2]) / name,
                          epochs=2)
        return [row["clip_share"] for row in rows]

    print(json.dumps({"unchanged": [keras_weights(n, True) == keras_weights(n, False) for n in ("norm", "value")],
                      "never": shares("never"), "always": shares("always")}))


if __name__ == "__main__":
    main()
