"""How long this project's stages should take, from the wall times earlier runs recorded
(metrics/<dataset>/timing/<run>.json, seconds per seed): the flow's cost line before it starts, and the
ETA it adds up as it goes."""
from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

STARTUP_S = 10.0   # a training command's own start: Python, TensorFlow, the data (measured here: 8-12 s)
TIMING_FILES = "metrics/*/timing/*.json"


def seed_times(root: Path) -> dict[str, list[float]]:
    """Each run's recorded seconds per seed, by run name (unreadable files left out)."""
    runs: dict[str, list[float]] = {}
    for path in root.glob(TIMING_FILES):
        try:
            times = [float(seed["train_time_s"]) for seed in json.loads(path.read_text()).values()]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            continue
        if times:
            runs[path.stem] = times
    return runs


def training_run(stage: str) -> str | None:
    """The run a train stage (``train@<run>``, ``train_cifar@<run>``...) trains; None for other stages."""
    group, _, run = stage.partition("@")
    return run if group.startswith("train") and run else None


def recorded_seconds(root: Path) -> Callable[[str], float | None]:
    """``estimate(stage)``: seconds for a train stage whose run recorded its seed times, its seeds one after
    another; None for any other stage (the flow then uses what it has seen)."""
    runs = {run: STARTUP_S + sum(times) for run, times in seed_times(root).items()}
    return lambda stage: runs.get(training_run(stage) or "")


def duration(seconds: float) -> str:
    return f"{seconds / 3600:.1f} h" if seconds >= 3600 else f"{seconds / 60:.0f} min"


def cost_line(root: Path, outlook: dict[str, str], at_once: int) -> str:
    """The planned trainings' recorded cost, split by what DVC will do with each (``outlook``: stage ->
    'run', 'cached' or 'unchanged'), and the time to run the rest with ``at_once`` seeds training at once."""
    times = seed_times(root)
    cost = {"run": 0.0, "cached": 0.0, "unchanged": 0.0}
    counted = 0
    for stage, fate in outlook.items():
        seeds = times.get(training_run(stage) or "")
        if seeds:
            cost[fate] += sum(seeds)
            counted += 1
    total = sum(cost.values())
    return (f"recorded cost ({TIMING_FILES}): {counted} training(s), {duration(total)} of training; to run "
            f"{duration(cost['run'])} (~{duration(cost['run'] / at_once)} wall, {at_once} at once), unchanged "
            f"{duration(cost['unchanged'])}, in the DVC cache {duration(cost['cached'])}")
