"""Per-layer diagnostics for experiments 1-3: gradient norms, activation std, weight variance vs theory."""
from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

PROBE_SIZE = 1024  # a fixed batch: the first training images


def theoretical_variance(initializer: str, fan_in: int, fan_out: int) -> float:
    """Variance each initializer targets (Glorot & Bengio 2010; He et al. 2015; LeCun 1998)."""
    return {
        "poor_normal": 1.0,
        "glorot_normal": 2.0 / (fan_in + fan_out),
        "glorot_uniform": 2.0 / (fan_in + fan_out),
        "he_normal": 2.0 / fan_in,
        "he_uniform": 2.0 / fan_in,
        "lecun_normal": 1.0 / fan_in,
        "variance_scaling": 4.0 / (fan_in + fan_out),
    }[initializer]


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def probe(model: keras.Model, x: np.ndarray, y: np.ndarray, initializer: str) -> list[dict]:
    """One row per Dense layer: kernel gradient norm, std of the layer block's output, weight variance."""
    x, y = tf.constant(x[:PROBE_SIZE]), tf.constant(y[:PROBE_SIZE])
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    with tf.GradientTape() as tape:
        loss = loss_fn(y, model(x, training=False))
    denses = dense_layers(model)
    grads = tape.gradient(loss, [d.kernel for d in denses])
    # activation std: the output of the last layer of each block, i.e. just before the next Dense
    outputs, h, block_out = [], x, []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense) and outputs:
            block_out.append(outputs[-1])
        h = layer(h, training=False)
        outputs.append(h)
    block_out.append(outputs[-1])
    rows = []
    for i, (dense, grad, out) in enumerate(zip(denses, grads, block_out), start=1):
        fan_in, fan_out = dense.kernel.shape
        rows.append({"layer": i, "fan_in": int(fan_in), "fan_out": int(fan_out),
                     "grad_norm": float(tf.norm(grad)), "activation_std": float(tf.math.reduce_std(out)),
                     "weight_var": float(np.var(dense.kernel.numpy())),
                     "theory_var": theoretical_variance(initializer, int(fan_in), int(fan_out))})
    return rows
