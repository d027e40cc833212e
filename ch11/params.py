"""Typed schema of ``params.yaml``: every stage loads its params through here before doing any work.

A run's full configuration is ``defaults`` deep-merged with the run's own entry, then validated, so an
unknown key, a wrong type or an impossible value is one error naming the key path and what is allowed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ch11.errors import PipelineError

DATASETS = ("fashion_mnist", "cifar10")
RUN_GROUPS = {"runs": "fashion_mnist", "cifar_runs": "cifar10", "transfer_runs": "fashion_mnist"}

PositiveInt = Annotated[int, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(ge=0, lt=1)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FileCheck(Strict):
    """Known SHA-256 of one file: of its gzip-decompressed bytes, or of the file itself."""
    sha256: Annotated[str, Field(pattern="^[0-9a-f]{64}$")]
    hash_of: Literal["decompressed", "file"] = "decompressed"


class DatasetSource(Strict):
    """One dataset's files and where they may be found, tried in order: local dirs, urls, mirrors."""
    files: dict[str, FileCheck]
    urls: list[str]
    mirrors: list[str] = []


class Download(Strict):
    local_dirs: list[str] = []
    retries: Annotated[int, Field(ge=0)] = 3
    backoff_s: NonNegFloat = 1.0
    timeout_s: PositiveFloat = 60.0
    fashion_mnist: DatasetSource
    cifar10: DatasetSource


class SplitRows(Strict):
    train: PositiveInt
    test: PositiveInt


class DatasetValidation(Strict):
    """Expectations for one dataset, and how its validated arrays are split."""
    rows: SplitRows
    image_shape: list[PositiveInt]
    validation_size: PositiveInt
    class_share_tolerance: Fraction = 0.10
    image_mean: tuple[NonNegFloat, NonNegFloat]
    image_std: tuple[NonNegFloat, NonNegFloat]

    @model_validator(mode="after")
    def _validation_fits(self) -> "DatasetValidation":
        if self.validation_size >= self.rows.train:
            raise ValueError(f"validation_size ({self.validation_size}) must be smaller than "
                             f"rows.train ({self.rows.train})")
        return self


class Validate(Strict):
    fashion_mnist: DatasetValidation
    cifar10: DatasetValidation


class Optimizer(Strict):
    name: Literal["sgd", "adagrad", "rmsprop", "adam", "adamax", "nadam", "adamw"]
    learning_rate: PositiveFloat
    momentum: Fraction
    nesterov: bool
    rho: Fraction
    beta_1: Fraction
    beta_2: Fraction
    weight_decay: NonNegFloat


class Schedule(Strict):
    """Learning-rate schedule; epoch-based values are converted to optimizer steps."""
    name: Literal["constant", "power", "exponential", "piecewise", "plateau", "onecycle"]
    decay_epochs: PositiveFloat       # power: lr0 / (1 + epoch/decay_epochs); exponential: see decay_rate
    decay_rate: PositiveFloat         # exponential: lr0 * decay_rate ** (epoch/decay_epochs)
    boundaries: list[PositiveInt]     # piecewise: epochs at which the value changes
    values: list[PositiveFloat]       # piecewise: len(boundaries) + 1 learning rates
    factor: Fraction                  # plateau: LR multiplied by factor after `patience` epochs without
    patience: PositiveInt             # a val_loss improvement
    max_learning_rate: PositiveFloat  # onecycle (the book's): lr0 -> max -> lr0 linearly, then lr0/1000

    @model_validator(mode="after")
    def _piecewise_shape(self) -> "Schedule":
        if self.name == "piecewise" and len(self.values) != len(self.boundaries) + 1:
            raise ValueError(f"piecewise needs len(values) == len(boundaries) + 1, got "
                             f"{len(self.values)} values for {len(self.boundaries)} boundaries")
        return self


class EarlyStopping(Strict):
    patience: PositiveInt | None      # null: no early stopping
    restore_best_weights: bool


class Transfer(Strict):
    """Reuse every hidden layer of ``base`` (a run in ``runs``); train frozen, then unfrozen."""
    base: str
    freeze_epochs: Annotated[int, Field(ge=0)]
    unfrozen_learning_rate: PositiveFloat


class Hidden(Strict):
    """``layers`` hidden layers of ``units`` neurons: shorthand for a list of equal widths."""
    layers: PositiveInt
    units: PositiveInt


Activation = Literal["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "selu", "gelu", "swish"]
Initializer = Literal["poor_normal", "glorot_normal", "glorot_uniform", "he_normal", "he_uniform",
                      "lecun_normal", "variance_scaling"]


class RunConfig(Strict):
    """Everything one training run reads: ``defaults`` merged with the run's overrides.

    No field has a default here: every value training reads sits in params.yaml, so DVC tracks it."""
    backend: Literal["tensorflow", "jax"]
    seeds: Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]
    epochs: PositiveInt
    batch_size: PositiveInt
    hidden: list[PositiveInt] | Hidden
    activation: Activation
    negative_slope: PositiveFloat                     # leaky_relu
    initializer: Initializer
    batch_norm: Literal["none", "before", "after"]    # BN before or after the activation
    dropout_placement: Literal["before_dense", "after_activation", "before_output"]
    input_scaling: Literal["unit", "standardize"]
    dropout: Fraction
    dropout_kind: Literal["dropout", "alpha"]
    max_norm: PositiveFloat | None
    l1: NonNegFloat
    l2: NonNegFloat
    label_smoothing: Fraction                         # 0: plain cross-entropy
    optimizer: Optimizer
    clip_value: PositiveFloat | None
    clip_norm: PositiveFloat | None
    schedule: Schedule
    early_stopping: EarlyStopping
    mc_samples: Annotated[int, Field(ge=0)]
    classes: list[Annotated[int, Field(ge=0, le=9)]] | None
    train_limit: PositiveInt | None
    eval_limit: PositiveInt | None
    steps_per_execution: PositiveInt
    mixed_precision: bool
    transfer: Transfer | None

    @property
    def widths(self) -> list[int]:
        """The hidden layers' widths, whichever form params.yaml used."""
        return [self.hidden.units] * self.hidden.layers if isinstance(self.hidden, Hidden) else self.hidden


class Limits(Strict):
    """Caps applied on top of every run, for fast profiles (tests, CI); null = no cap."""
    max_epochs: PositiveInt | None = None
    max_train_samples: PositiveInt | None = None
    max_eval_samples: PositiveInt | None = None
    max_seeds: PositiveInt | None = None     # each run's first N seeds

    def apply(self, merged: dict) -> dict:
        capped = dict(merged)
        for key, cap in (("epochs", self.max_epochs), ("train_limit", self.max_train_samples),
                         ("eval_limit", self.max_eval_samples)):
            if cap is not None:
                capped[key] = min(cap, capped.get(key) or cap)
        return capped


class Params(Strict):
    download: Download
    datasets: Annotated[list[Literal[DATASETS]], Field(min_length=1)]   # the datasets dvc.yaml runs on
    validate_: Validate = Field(alias="validate")
    limits: Limits = Limits()
    templates: dict = {}     # YAML anchors that runs merge in; read by no stage
    defaults: dict
    runs: dict[str, dict]
    cifar_runs: dict[str, dict] = {}
    transfer_runs: dict[str, dict] = {}

    def run_names(self) -> list[str]:
        return [*self.runs, *self.cifar_runs, *self.transfer_runs]

    def group_of(self, run: str) -> str:
        """Which run table (runs, cifar_runs, transfer_runs) holds ``run``."""
        for group in RUN_GROUPS:
            if run in getattr(self, group):
                return group
        raise PipelineError(f"params.yaml has no run named {run!r}. Known runs: "
                            f"{', '.join(sorted(self.run_names()))}.")

    def dataset_of(self, run: str) -> str:
        return RUN_GROUPS[self.group_of(run)]

    def seeds_of(self, run: str) -> list[int]:
        """The seeds ``run`` is trained with (``defaults.seeds`` or its own), the first ``limits.max_seeds``."""
        return list(self.run(run).seeds)[:self.limits.max_seeds]

    def run(self, name: str) -> RunConfig:
        """The validated configuration of run ``name`` (defaults deep-merged with its entry)."""
        group = self.group_of(name)
        merged = self.limits.apply(deep_merge(self.defaults, getattr(self, group)[name]))
        try:
            config = RunConfig.model_validate(merged)
        except ValidationError as exc:
            raise PipelineError(describe(exc, "params.yaml", prefix=f"{group}.{name}")) from exc
        if group == "transfer_runs":
            if config.transfer is None:
                raise PipelineError(f"params.yaml: transfer_runs.{name} has no 'transfer' entry; "
                                    "add transfer: {base: <a run in runs>}.")
            if config.transfer.base not in self.runs:
                raise PipelineError(f"params.yaml: transfer_runs.{name}.transfer.base is "
                                    f"{config.transfer.base!r}, which is not a run in 'runs'. Known runs: "
                                    f"{', '.join(sorted(self.runs))}.")
        return config


def deep_merge(base: dict, override: dict) -> dict:
    """``base`` with ``override`` applied key by key; nested dicts merge, other values replace."""
    merged = dict(base)
    for key, value in (override or {}).items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def describe(exc: ValidationError, where: str, prefix: str = "",
             fix: str = "Fix params.yaml and rerun (run keys inherit 'defaults').") -> str:
    """One paragraph naming each bad key path, the value found and what is allowed."""
    parts = []
    for err in exc.errors():
        path = ".".join([prefix, *map(str, err["loc"])] if prefix else map(str, err["loc"])) or "(top level)"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown key '{path}' (value {err['input']!r}); remove it or fix its spelling")
        elif err["type"] == "missing":
            parts.append(f"missing key '{path}'")
        else:
            parts.append(f"'{path}' = {err['input']!r}: {err['msg']}")
    return f"{where}: " + "; ".join(parts) + ". " + fix


def load(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; every run is validated too, so a typo anywhere fails early."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PipelineError(f"{path} not found; run the stage from the project root.") from exc
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path} is not valid YAML: {exc}") from exc
    try:
        params = Params.model_validate(raw)
    except ValidationError as exc:
        raise PipelineError(describe(exc, str(path))) from exc
    try:
        RunConfig.model_validate(params.defaults)
    except ValidationError as exc:
        raise PipelineError(describe(exc, str(path), prefix="defaults")) from exc
    for name in params.run_names():
        params.run(name)
        if params.dataset_of(name) not in params.datasets:
            raise PipelineError(f"{path}: run {name!r} is on {params.dataset_of(name)}, which `datasets` "
                                f"({', '.join(params.datasets)}) does not list; add it to `datasets` or remove "
                                "the run.")
    return params
