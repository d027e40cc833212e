"""A run's network, loss, optimizer and learning-rate schedules built from its RunConfig (Keras APIs only), and
``compile_model``: the one compile path of plain and transfer training."""
from __future__ import annotations

import keras

from ch11.params import RunConfig, Schedule
from ch11.training import clipping

INITIALIZERS = {
    "poor_normal": lambda: keras.initializers.RandomNormal(mean=0.0, stddev=1.0),
    "glorot_normal": keras.initializers.GlorotNormal,
    "glorot_uniform": keras.initializers.GlorotUniform,
    "he_normal": keras.initializers.HeNormal,
    "he_uniform": keras.initializers.HeUniform,
    "lecun_normal": keras.initializers.LecunNormal,
    "variance_scaling": lambda: keras.initializers.VarianceScaling(scale=2.0, mode="fan_avg",
                                                                   distribution="uniform"),
}
ACTIVATION_NAMES = {"swish": "silu"}
# Each optimizer's keys in ch11/params.py are its Keras constructor's own argument names, passed as they are.
OPTIMIZERS = {"sgd": keras.optimizers.SGD, "adagrad": keras.optimizers.Adagrad, "rmsprop": keras.optimizers.RMSprop,
              "adam": keras.optimizers.Adam, "adamax": keras.optimizers.Adamax, "nadam": keras.optimizers.Nadam,
              "adamw": keras.optimizers.AdamW}


def activation_layer(config: RunConfig) -> keras.layers.Layer:
    if config.activation == "leaky_relu":
        return keras.layers.LeakyReLU(negative_slope=config.negative_slope)
    if config.activation == "prelu":
        return keras.layers.PReLU()
    return keras.layers.Activation(ACTIVATION_NAMES.get(config.activation, config.activation))


def dropout_layer(config: RunConfig) -> list[keras.layers.Layer]:
    if config.dropout == 0:
        return []
    kind = keras.layers.AlphaDropout if config.dropout_kind == "alpha" else keras.layers.Dropout
    return [kind(config.dropout)]


def dense(units: int, config: RunConfig, use_bias: bool = True) -> keras.layers.Dense:
    regularizer = None
    if config.l1 or config.l2:
        regularizer = keras.regularizers.L1L2(l1=config.l1, l2=config.l2)
    constraint = keras.constraints.MaxNorm(config.max_norm) if config.max_norm else None
    return keras.layers.Dense(units, use_bias=use_bias, kernel_initializer=INITIALIZERS[config.initializer](),
                              kernel_regularizer=regularizer, kernel_constraint=constraint)


def hidden_block(units: int, config: RunConfig) -> list[keras.layers.Layer]:
    """One hidden layer: Dense, activation and batch norm in the run's order, dropout where it is placed.

    before_dense (the book's dropout section): Dropout, Dense, ...; after_activation: ..., Dropout;
    before_output (the book's alpha-dropout solution of exercise 8): no dropout in the hidden layers.
    batch_norm before: Dense (no bias), BN, activation; after: Dense, activation, BN."""
    if config.batch_norm == "before":
        core = [dense(units, config, use_bias=False), keras.layers.BatchNormalization(),
                activation_layer(config)]
    elif config.batch_norm == "after":
        core = [dense(units, config), activation_layer(config), keras.layers.BatchNormalization()]
    else:
        core = [dense(units, config), activation_layer(config)]
    if config.dropout_placement == "before_dense":
        return dropout_layer(config) + core
    if config.dropout_placement == "after_activation":
        return core + dropout_layer(config)
    return core


def output_layers(n_classes: int, config: RunConfig) -> list[keras.layers.Layer]:
    before = dropout_layer(config) if config.dropout_placement in ("before_dense", "before_output") else []
    return before + [keras.layers.Dense(n_classes, activation="softmax", dtype="float32")]


def build_model(n_inputs: int, n_classes: int, config: RunConfig) -> keras.Sequential:
    layers = [keras.Input(shape=(n_inputs,))]
    for units in config.widths:
        layers += hidden_block(units, config)
    return keras.Sequential(layers + output_layers(n_classes, config))


@keras.saving.register_keras_serializable(package="ch11")
class SmoothedSparseCrossentropy(keras.losses.Loss):
    """Cross-entropy of integer labels smoothed towards the uniform distribution: the target is
    (1 - smoothing) * one_hot + smoothing / classes (label smoothing; Szegedy et al. 2016)."""

    def __init__(self, smoothing: float, name: str = "smoothed_sparse_crossentropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.smoothing = float(smoothing)

    def call(self, y_true, y_pred):
        ops = keras.ops
        labels = ops.one_hot(ops.cast(ops.reshape(y_true, (-1,)), "int32"), ops.shape(y_pred)[-1])
        return keras.losses.categorical_crossentropy(labels, y_pred, label_smoothing=self.smoothing)

    def get_config(self):
        return {**super().get_config(), "smoothing": self.smoothing}


def loss_of(config: RunConfig):
    """The training loss: Keras' sparse cross-entropy, or its label-smoothed form."""
    if config.label_smoothing:
        return SmoothedSparseCrossentropy(config.label_smoothing)
    return "sparse_categorical_crossentropy"


@keras.saving.register_keras_serializable(package="ch11")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """The book's 1cycle (Géron, ch. 11; Smith 2018): linear lr0 -> peak over the first half of the
    steps before the last ~10 %, linear back to lr0 over the second half, then linear to lr0 / 1000."""

    def __init__(self, lr0: float, peak: float, steps: int):
        self.lr0, self.peak, self.steps = float(lr0), float(peak), int(steps)
        self.last = steps // 10 + 1
        self.half = max((steps - self.last) // 2, 1)

    def __call__(self, step):
        ops = keras.ops
        step = ops.cast(step, "float32")
        half, last_start = float(self.half), float(2 * self.half)
        up = self.lr0 + (self.peak - self.lr0) * step / half
        down = self.peak - (self.peak - self.lr0) * (step - half) / half
        tail = self.lr0 + (self.lr0 / 1000 - self.lr0) * ops.minimum((step - last_start) / max(
            self.steps - last_start, 1.0), 1.0)
        return ops.where(step < half, up, ops.where(step < last_start, down, tail))

    def get_config(self):
        return {"lr0": self.lr0, "peak": self.peak, "steps": self.steps}


def learning_rate(schedule: Schedule, lr0: float, steps_per_epoch: int, epochs: int):
    """A float, or a Keras LearningRateSchedule over optimizer steps (epoch values scaled by steps)."""
    steps = lambda e: max(1, round(e * steps_per_epoch))  # noqa: E731 - epochs -> optimizer steps
    if schedule.name == "power":
        return keras.optimizers.schedules.InverseTimeDecay(lr0, steps(schedule.decay_epochs), 1.0)
    if schedule.name == "exponential":
        return keras.optimizers.schedules.ExponentialDecay(lr0, steps(schedule.decay_epochs),
                                                           schedule.decay_rate)
    if schedule.name == "piecewise":
        return keras.optimizers.schedules.PiecewiseConstantDecay([steps(b) for b in schedule.boundaries],
                                                                 schedule.values)
    if schedule.name == "onecycle":
        return OneCycle(lr0, schedule.max_learning_rate, steps(epochs))
    return lr0  # constant, and plateau (driven by schedule_callbacks)


def schedule_callbacks(schedule: Schedule) -> list:
    """The schedules driven by validation loss instead of the step: plateau's ReduceLROnPlateau."""
    if schedule.name == "plateau":
        return [keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=schedule.factor,
                                                  patience=schedule.patience)]
    return []


def build_optimizer(config: RunConfig, steps_per_epoch: int, lr0: float | None = None):
    """The run's optimizer with its keys, clipping and schedule (from ``lr0`` when given, else its rate)."""
    opt = config.optimizer
    lr = learning_rate(config.schedule, lr0 or opt.learning_rate, steps_per_epoch, config.epochs)
    return OPTIMIZERS[opt.name](lr, clipvalue=config.clip_value, clipnorm=config.clip_norm,
                                **opt.model_dump(exclude={"name", "learning_rate"}))


def compile_model(model, config: RunConfig, steps_per_epoch: int, lr0: float | None = None) -> None:
    """Compile ``model`` with the run's loss, optimizer and accuracy metric; clipping counted where it is on."""
    optimizer = build_optimizer(config, steps_per_epoch, lr0)
    if config.clip_value or config.clip_norm:
        clipping.count_clipping(optimizer)
    model.compile(loss=loss_of(config), optimizer=optimizer, metrics=["accuracy"],
                  steps_per_execution=config.steps_per_execution)
