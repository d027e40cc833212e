"""Typed schema of ``ch11/report/claims.yaml``: the write-up's claims and how each experiment is presented."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import Field, ValidationError

from ch11.errors import PipelineError
from ch11.params import DATASETS, Strict, describe

CLAIMS_PATH = Path(__file__).resolve().parent / "claims.yaml"
Unit = Literal["percent", "points", "epochs", "minutes"]
FigureName = Literal["layers", "variance", "learning_rates", "activations"]


class Value(Strict):
    """A single-run value the write-up reports."""
    run: str
    metric: str = "test_accuracy"
    value: float
    unit: Unit = "percent"
    tolerance: float = 0.0      # the write-up's own precision ("≈ 85 %"), in `unit`
    compare: bool = True
    note: str | None = None
    requires_lr_change: str | None = None


class Comparison(Strict):
    """A claimed difference mean(a) - mean(b): its sign, and its size in points when the write-up gives it."""
    a: str
    b: str
    metric: str = "test_accuracy"
    sign: Literal["+", "-"]
    size: float | None = None
    note: str | None = None
    requires_lr_change: str | None = None


class Effect(Strict):
    """A technique against its matched baseline: mean(a) - mean(b) of ``metric`` (``a_metric`` read on a)."""
    exp: int
    label: str
    a: str
    b: str
    metric: str = "test_accuracy"
    a_metric: str | None = None
    claim: float | None = None     # the write-up's difference for this comparison, in points


class Check(Strict):
    """A qualitative claim tested seed by seed.

    variance_ratio: every layer's kernel variance / its initializer's theory within 1 ± tolerance (at init);
    activation_stability: std(last hidden) / std(first hidden) within bounds (at init);
    at_least / at_most: a metric (in %) against a threshold, over the seeds that did not diverge;
    no_learning: the seed diverged, or its best validation accuracy is at most the threshold."""
    id: str
    kind: Literal["variance_ratio", "activation_stability", "at_least", "at_most", "no_learning"]
    run: str
    text: str
    claimed: bool = True
    tolerance: float = 0.10
    bounds: tuple[float, float] = (0.5, 2.0)
    metric: str = "best_val_accuracy"
    threshold: float = 0.0


class Experiment(Strict):
    title: str
    name: str | None = None     # how the report names it, when not "Experiment <number>" (e.g. "Exercise 8")
    dataset: Literal[DATASETS]
    claim: str
    note: str | None = None
    runs: dict[str, str]
    separate: list[str] = []
    values: list[Value] = []
    comparisons: list[Comparison] = []
    checks: list[Check] = []
    figures: list[FigureName | dict[Literal["confusion"], str]] = []


class Claims(Strict):
    delta: Annotated[float, Field(gt=0)]
    baselines: dict[str, str] = {}   # run -> what it is: runs several experiments compare against
    effects: list[Effect] = []
    experiments: dict[int, Experiment]

    def of(self, dataset: str) -> dict[int, Experiment]:
        return {n: e for n, e in sorted(self.experiments.items()) if e.dataset == dataset}


def load(path: Path = CLAIMS_PATH) -> Claims:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise PipelineError(f"cannot read the write-up's claims from {path}: {exc}") from exc
    try:
        claims = Claims.model_validate(raw)
    except ValidationError as exc:
        raise PipelineError(describe(exc, str(path), fix=f"Fix {path.name} and rerun.")) from exc
    if twice := stated_both_ways(claims):
        a, b, metric = twice
        raise PipelineError(f"{path}: {a} − {b} ({metric}) is stated both ways round, as {a} − {b} and "
                            f"as {b} − {a}; a − b and b − a are one comparison, which would be estimated, adjusted "
                            "and shown twice. State it one way in effects and comparisons (a claim of the other sign: "
                            f"sign '-' and a negative size) in {path.name} and rerun.")
    return claims


def key_of(item: Effect | Comparison) -> tuple[str, str, str, str]:
    """(run a, the metric read on a, run b, metric): one comparison, however it is stated."""
    return item.a, getattr(item, "a_metric", None) or item.metric, item.b, item.metric


def stated_both_ways(claims: Claims) -> tuple[str, str, str] | None:
    """(a, b, metric) of a comparison that effects or comparisons state as a − b and as b − a, if any."""
    stated = [*claims.effects, *(c for e in claims.experiments.values() for c in e.comparisons)]
    pairs = {key_of(i) for i in stated if i.a != i.b}
    twice = sorted((a, b, metric) for a, read, b, metric in pairs if (b, metric, a, read) in pairs and a < b)
    return twice[0] if twice else None
