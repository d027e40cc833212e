"""How often gradient clipping acted: the optimizer counts the steps in which clipping changed the gradient,
and a callback turns the count into a per-epoch share (the history's ``clip_share``)."""
from __future__ import annotations

import keras

CLIP_COUNTER = "clipped_steps"


def count_clipping(optimizer) -> None:
    """Make a clipping optimizer count, in its variable ``clipped_steps`` (saved with its state), the steps
    in which clipping changed the gradient: some weight's gradient norm above ``clipnorm``, or an element
    beyond ``clipvalue``. The clipped gradients are computed exactly as before."""
    counter = optimizer.add_variable(shape=(), initializer="zeros", dtype="float32", name=CLIP_COUNTER)
    clip = optimizer._clip_gradients

    def counted(grads):
        present = [g for g in grads if g is not None]
        if optimizer.clipnorm:
            over = [keras.ops.sqrt(keras.ops.sum(keras.ops.square(g))) > optimizer.clipnorm for g in present]
        else:
            over = [keras.ops.max(keras.ops.abs(g)) > optimizer.clipvalue for g in present]
        counter.assign_add(keras.ops.cast(keras.ops.any(keras.ops.stack(over)), "float32"))
        return clip(grads)

    optimizer._clip_gradients = counted


class ClipShare(keras.callbacks.Callback):
    """History column ``clip_share``: the share of the epoch's steps in which clipping changed the gradient."""

    def __init__(self, steps: int):
        super().__init__()
        self.steps, self.start = steps, 0.0

    def clipped(self) -> float:
        counter = next(v for v in self.model.optimizer.variables if v.name == CLIP_COUNTER)
        return float(keras.ops.convert_to_numpy(counter))

    def on_epoch_begin(self, epoch, logs=None):
        self.start = self.clipped()

    def on_epoch_end(self, epoch, logs=None):
        logs["clip_share"] = (self.clipped() - self.start) / self.steps
