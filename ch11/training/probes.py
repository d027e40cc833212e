"""Per-layer diagnostics for experiments 1-3 and exercise 8: gradient norms, activation std, weight variance
vs the theory of *that layer's own* initializer (the output layer keeps Keras' Glorot-uniform default)."""
from __future__ import annotations

import keras
import numpy as np

PROBE_SIZE = 1024  # a fixed batch: the first training images
FAN = {"fan_in": lambda i, o: i, "fan_out": lambda i, o: o, "fan_avg": lambda i, o: (i + o) / 2}


def theoretical_variance(initializer: keras.initializers.Initializer, fan_in: int, fan_out: int) -> float:
    """Variance the initializer targets: scale / fan for the variance-scaling family (Glorot & Bengio 2010,
    He et al. 2015, LeCun 1998: their truncated and uniform forms are scaled to it), stddev² for N(0, σ)."""
    if isinstance(initializer, keras.initializers.VarianceScaling):
        return initializer.scale / FAN[initializer.mode](fan_in, fan_out)
    if isinstance(initializer, keras.initializers.RandomNormal):
        return float(initializer.stddev) ** 2
    raise ValueError(f"no variance theory for initializer {type(initializer).__name__}")


def dense_layers(model: keras.Model) -> list[keras.layers.Dense]:
    return [layer for layer in model.layers if isinstance(layer, keras.layers.Dense)]


def kernel_gradients(model: keras.Model, x, y, denses) -> list[np.ndarray]:
    """Gradient of the mean cross-entropy (inference mode) w.r.t. each Dense kernel, frozen ones included."""
    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    if keras.backend.backend() == "jax":
        import jax

        def loss_of(kernels):
            with keras.StatelessScope(state_mapping=[(d.kernel, k) for d, k in zip(denses, kernels)]):
                return loss_fn(y, model(x, training=False))

        return [np.asarray(g) for g in jax.grad(loss_of)([d.kernel.value for d in denses])]
    import tensorflow as tf

    with tf.GradientTape() as tape:
        tape.watch([d.kernel.value for d in denses])
        loss = loss_fn(y, model(x, training=False))
    return [g.numpy() for g in tape.gradient(loss, [d.kernel.value for d in denses])]


def probe(model: keras.Model, x: np.ndarray, y: np.ndarray) -> list[dict]:
    """One row per Dense layer: kernel gradient norm, std of the layer block's output, weight variance,
    and the theoretical variance of the layer's own initializer."""
    x, y = x[:PROBE_SIZE], y[:PROBE_SIZE]
    denses = dense_layers(model)
    grads = kernel_gradients(model, keras.ops.convert_to_tensor(x), keras.ops.convert_to_tensor(y), denses)
    # activation std: the output of the last layer of each block, i.e. just before the next Dense
    outputs, h, block_out = [], keras.ops.convert_to_tensor(x), []
    for layer in model.layers:
        if isinstance(layer, keras.layers.Dense) and outputs:
            block_out.append(outputs[-1])
        h = layer(h, training=False)
        outputs.append(h)
    block_out.append(outputs[-1])
    rows = []
    for i, (dense, grad, out) in enumerate(zip(denses, grads, block_out), start=1):
        fan_in, fan_out = (int(d) for d in dense.kernel.shape)
        init = dense.kernel_initializer
        rows.append({"layer": i, "fan_in": fan_in, "fan_out": fan_out, "initializer": type(init).__name__,
                     "grad_norm": float(np.linalg.norm(grad)),
                     "activation_std": float(np.std(keras.ops.convert_to_numpy(out))),
                     "weight_var": float(np.var(keras.ops.convert_to_numpy(dense.kernel))),
                     "theory_var": theoretical_variance(init, fan_in, fan_out)})
    return rows
