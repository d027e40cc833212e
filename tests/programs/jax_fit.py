"""Seed and fit a tiny model on JAX; print whether TensorFlow got imported."""
import sys

import numpy as np

from ch11.training import backend


def main() -> None:
    backend.select("jax")
    backend.seed_everything(1, False)
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model.fit(np.zeros((8, 4)), np.zeros((8, 2)), verbose=0)
    print("tensorflow" in sys.modules)


if __name__ == "__main__":
    main()
