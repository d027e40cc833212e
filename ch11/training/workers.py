"""How many seeds of a run train at once: worker processes bounded by the cores, free memory and the seeds.

The count never changes results (each seed trains alone in its process with one thread, exactly as in the
serial loop), so it is an environment setting, not a param: ``CH11_WORKERS`` (default: the cores this
process may use; 1 = the serial loop in the stage's own process).
"""
from __future__ import annotations

import ctypes
import os
import signal

from ch11.errors import PipelineError

DEFAULT_PEAK_MB = 1500   # a worker's peak memory when no earlier run of this stage recorded one


def cores() -> int:
    return len(os.sched_getaffinity(0))


def requested() -> int:
    """``CH11_WORKERS``, checked; the cores this process may use when unset."""
    raw = os.environ.get("CH11_WORKERS", "").strip()
    if not raw:
        return cores()
    if not raw.isdigit() or int(raw) < 1:
        raise PipelineError(f"environment variable CH11_WORKERS={raw!r} is not a whole number >= 1: set it to "
                            "how many seeds may train at once (1 = one after another), or unset it to use "
                            "every core")
    return int(raw)


def available_mb() -> float:
    """MemAvailable from /proc/meminfo (memory that can be used without swapping), in MiB."""
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 1024
    return float("inf")


def count(pending: int, peak_mb: float | None) -> int:
    """Workers for ``pending`` seeds: as requested, at most one per seed, and as many as free memory
    holds at ``peak_mb`` each (the peak recorded by an earlier run of the stage, else DEFAULT_PEAK_MB)."""
    by_memory = int(available_mb() // (peak_mb or DEFAULT_PEAK_MB))
    return max(1, min(requested(), pending, by_memory))


def die_with_parent(parent: int) -> None:
    """In a worker: be killed when the stage process dies (even by SIGKILL), so that no orphan keeps
    training and writing checkpoints beside the rerun (Linux ``PR_SET_PDEATHSIG``)."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:   # the parent died before the line above
        os._exit(1)
