"""The host a flow runs on: CPU cores, visible GPUs, and the environment each stage command gets.
No ML framework is imported here."""
from __future__ import annotations

import os
import re
import subprocess


def cpu_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """CUDA device ids to pin commands to: CUDA_VISIBLE_DEVICES when set, else ``nvidia-smi -L``'s GPUs
    (MIG instances by UUID when a GPU is partitioned); [] on a CPU host. Never imports TensorFlow."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        ids = []
        for item in (part.strip() for part in listed.split(",")):
            if not item or item.startswith("-"):  # CUDA ignores everything from an invalid id on
                break
            ids.append(item)
        return ids
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    gpus: list[tuple[str, list[str]]] = []
    for line in out.splitlines():
        if match := re.match(r"\s*GPU (\d+):", line):
            gpus.append((match.group(1), []))
        elif (match := re.search(r"\bMIG\b.*\(UUID: (MIG-[^)\s]+)\)", line)) and gpus:
            gpus[-1][1].append(match.group(1))
    return [device for index, migs in gpus for device in (migs or [index])]


def workers_per_command(cores: int, concurrency: int) -> int:
    """Seeds one training command may train at once (``CH11_WORKERS``) so that ``concurrency`` commands
    together never run more trainings than there are cores (or than ``concurrency``, when that is more)."""
    return max(1, cores // concurrency)


def command_env(slot: int, workers: int, gpus: list[str]) -> dict[str, str]:
    """Variables set for the command running in ``slot`` (added to the worker's own environment): its
    share of the cores as worker processes of one thread each (results do not depend on the count); slots
    go round the GPUs, so ``per_gpu`` trainings share each one, none pre-allocating its memory."""
    env = {"CH11_WORKERS": str(workers), "CH11_THREADS": "1"}
    if gpus:
        env.update(CUDA_VISIBLE_DEVICES=gpus[slot % len(gpus)], XLA_PYTHON_CLIENT_PREALLOCATE="false",
                   TF_FORCE_GPU_ALLOW_GROWTH="true")
    return env
