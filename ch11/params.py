"""Typed schema of ``params.yaml``: every stage loads its params through here before doing any work.

A run's full configuration is ``defaults`` deep-merged with the template the run names, then with the run's
own entry; its optimizer (schedule) section sits on that optimizer's (schedule's) entry of ``optimizers``
(``schedules``). Then it is validated, so an unknown key, a key the named optimizer or schedule ignores, a
wrong type or an impossible value is one error naming the key path and what is allowed.
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Literal, Union

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

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


# What each optimizer / schedule reads besides its name (and the optimizer's learning_rate): a run's
# `optimizer` is `optimizers.<name>` deep-merged with the run's own keys, and any other key is refused.
class SGDKeys(Strict):
    momentum: Fraction
    nesterov: bool
    weight_decay: PositiveFloat | None   # decoupled: w -= lr * weight_decay * w each step; null: none


class RMSpropKeys(Strict):
    rho: Fraction


class AdamKeys(Strict):
    beta_1: Fraction
    beta_2: Fraction


class AdamWKeys(AdamKeys):
    weight_decay: NonNegFloat         # decoupled weight decay


class PowerKeys(Strict):
    decay_epochs: PositiveFloat       # lr0 / (1 + epoch/decay_epochs)


class ExponentialKeys(PowerKeys):
    decay_rate: PositiveFloat         # lr0 * decay_rate ** (epoch/decay_epochs)


class PiecewiseKeys(Strict):
    boundaries: list[PositiveInt]     # epochs at which the value changes
    values: list[PositiveFloat]       # len(boundaries) + 1 learning rates

    @model_validator(mode="after")
    def _piecewise_shape(self) -> "PiecewiseKeys":
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError(f"piecewise needs len(values) == len(boundaries) + 1, got "
                             f"{len(self.values)} values for {len(self.boundaries)} boundaries")
        return self


class PlateauKeys(Strict):
    factor: Fraction                  # LR multiplied by factor after `patience` epochs without
    patience: PositiveInt             # a val_loss improvement


class OneCycleKeys(Strict):
    max_learning_rate: PositiveFloat  # the book's: lr0 -> max -> lr0 linearly, then lr0/1000


OPTIMIZER_KEYS = {"sgd": SGDKeys, "adagrad": Strict, "rmsprop": RMSpropKeys, "adam": AdamKeys,
                  "adamax": AdamKeys, "nadam": AdamKeys, "adamw": AdamWKeys}
SCHEDULE_KEYS = {"constant": Strict, "power": PowerKeys, "exponential": ExponentialKeys,
                 "piecewise": PiecewiseKeys, "plateau": PlateauKeys, "onecycle": OneCycleKeys}


def named(kind: str, keys: dict[str, type], **common) -> object:
    """The union, discriminated by ``name``, of one model per name: ``name``, ``common`` and its keys."""
    models = [create_model(f"{name}_{kind}", __base__=base, name=(Literal[name], ...), **common)
              for name, base in keys.items()]
    return Annotated[Union[tuple(models)], Field(discriminator="name")]


Optimizer = named("optimizer", OPTIMIZER_KEYS, learning_rate=(PositiveFloat, ...))
Schedule = named("schedule", SCHEDULE_KEYS)   # epoch-based values are converted to optimizer steps


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
    """Everything one training run reads: ``defaults`` <- its template <- the run's own entry.

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


OptimizerName = Literal[tuple(OPTIMIZER_KEYS)]
ScheduleName = Literal[tuple(SCHEDULE_KEYS)]
# kind -> its table in params.yaml, the keys each name reads, and a model of the name alone (checked first)
TABLES = {kind: (f"{kind}s", keys, create_model(f"{kind}_name", name=(Literal[tuple(keys)], ...)))
          for kind, keys in (("optimizer", OPTIMIZER_KEYS), ("schedule", SCHEDULE_KEYS))}


class Params(Strict):
    download: Download
    datasets: Annotated[list[Literal[DATASETS]], Field(min_length=1)]   # the datasets dvc.yaml runs on
    validate_: Validate = Field(alias="validate")
    limits: Limits = Limits()
    defaults: dict
    optimizers: dict[OptimizerName, dict]   # each optimizer's own keys (under a run's `optimizer`)
    schedules: dict[ScheduleName, dict]     # each schedule's own keys (under a run's `schedule`)
    templates: dict[str, dict] = {}         # shared settings; a run names one (`template: <name>`)
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

    def template_of(self, run: str) -> str:
        """The template ``run`` names (each run names one; a template names none)."""
        where = f"{self.group_of(run)}.{run}"
        name = getattr(self, self.group_of(run))[run].get("template")
        if name is None:
            raise PipelineError(f"params.yaml: {where} names no template; add `template: none` (the defaults "
                                f"as they are) or one of: {', '.join(self.templates)}.")
        if name not in self.templates:
            raise PipelineError(f"params.yaml: {where}.template = {name!r} is not in `templates`; known: "
                                f"{', '.join(self.templates)}.")
        if "template" in self.templates[name]:
            raise PipelineError(f"params.yaml: templates.{name} names a template; a template cannot name "
                                "another (DVC tracks one template per run): give it that template's keys.")
        return name

    def run(self, name: str) -> RunConfig:
        """The validated configuration of run ``name``: defaults <- its template <- its entry."""
        group = self.group_of(name)
        template = self.template_of(name)
        entry = {k: v for k, v in getattr(self, group)[name].items() if k != "template"}
        config = self.configure([("defaults", self.defaults), (f"templates.{template}", self.templates[template]),
                                 (f"{group}.{name}", entry)])
        if group == "transfer_runs":
            if config.transfer is None:
                raise PipelineError(f"params.yaml: transfer_runs.{name} has no 'transfer' entry; "
                                    "add transfer: {base: <a run in runs>}.")
            if config.transfer.base not in self.runs:
                raise PipelineError(f"params.yaml: transfer_runs.{name}.transfer.base is "
                                    f"{config.transfer.base!r}, which is not a run in 'runs'. Known runs: "
                                    f"{', '.join(sorted(self.runs))}.")
        return config

    def configure(self, layers: list[tuple[str, dict]]) -> RunConfig:
        """``layers`` (path, entry) deep-merged in order, each optimizer/schedule section on its table entry,
        capped by ``limits`` and validated; errors name the last layer's path."""
        where = layers[-1][0]
        merged = functools.reduce(deep_merge, [entry for _, entry in layers], {})
        for kind in TABLES:
            merged[kind] = self.choose(kind, layers, merged.get(kind))
        try:
            return RunConfig.model_validate(self.limits.apply(merged))
        except ValidationError as exc:
            raise PipelineError(describe(exc, "params.yaml", prefix=where)) from exc

    def choose(self, kind: str, layers: list[tuple[str, dict]], section) -> dict:
        """A run's ``kind`` section on the table entry of the name it gives; a key that this optimizer (schedule)
        does not read is refused, naming the layer that sets it."""
        if not isinstance(section, dict):
            return section   # RunConfig's validation names the bad value
        table, keys, chooser = TABLES[kind]
        where = layers[-1][0]
        try:
            name = chooser.model_validate(section).name
        except ValidationError as exc:
            raise PipelineError(describe(exc, "params.yaml", prefix=f"{where}.{kind}")) from exc
        entry = getattr(self, table).get(name, {})
        reads = ["learning_rate"] * (kind == "optimizer") + list(keys[name].model_fields)
        chosen = deep_merge(entry, section)
        for key in [k for k in chosen if k not in {"name", *reads}]:   # in params.yaml's order: one message
            sources = [*((f"{path}.{kind}", layer.get(kind)) for path, layer in reversed(layers)),
                       (f"{table}.{name}", entry)]
            path = next(path for path, found in sources if isinstance(found, dict) and key in found)
            via = "" if path.startswith(where) else f" (in {where})"
            raise PipelineError(f"params.yaml: {path}.{key} = {chosen[key]!r}{via}: {kind} {name!r} ignores "
                                f"'{key}' (it reads {', '.join(reads) or 'no other key'}); remove the key, or set "
                                f"{kind}.name to one that reads it.")
        return chosen


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
        loc = [str(part) for i, part in enumerate(err["loc"])   # without a union's tag: optimizer.sgd.x
               if not (i and err["loc"][i - 1] in TABLES and part in TABLES[err["loc"][i - 1]][1])]
        path = ".".join([prefix, *loc] if prefix else loc) or "(top level)"
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
    params.configure([("defaults", params.defaults)])
    for kind, (table, _, _) in TABLES.items():   # table entries no run uses yet are checked too
        for name in getattr(params, table):
            params.choose(kind, [(table, {})], {"name": name})
    for name in params.run_names():
        params.run(name)
        if params.dataset_of(name) not in params.datasets:
            raise PipelineError(f"{path}: run {name!r} is on {params.dataset_of(name)}, which `datasets` "
                                f"({', '.join(params.datasets)}) does not list; add it to `datasets` or remove "
                                "the run.")
    return params
