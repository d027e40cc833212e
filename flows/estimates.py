"""How long this project's stages should take, from the wall times earlier runs recorded
(metrics/<dataset>/timing/<run>.json, seconds per seed): what the flow's ETA adds up."""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

STARTUP_S = 10.0   # a training command's own start: Python, TensorFlow, the data (measured here: 8-12 s)


def recorded_seconds(root: Path, workers: int) -> Callable[[str], float | None]:
    """``estimate(stage)``: seconds for a train stage whose run recorded its seed times, its seeds
    ``workers`` at a time; None for any other stage (the flow then uses what it has seen)."""
    runs: dict[str, float] = {}
    for path in root.glob("metrics/*/timing/*.json"):
        try:
            times = [seed["train_time_s"] for seed in json.loads(path.read_text()).values()]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if times:
            runs[path.stem] = STARTUP_S + math.ceil(len(times) / workers) * sum(times) / len(times)

    def estimate(stage: str) -> float | None:
        group, _, run = stage.partition("@")
        return runs.get(run) if group.startswith("train") else None

    return estimate
