"""Child processes for the tests: a project module, DVC or git, with a time limit that cannot hang the suite.

Past its limit a child's whole process group gets SIGABRT; with ``PYTHONFAULTHANDLER`` set, every Python
process in it prints its threads' stacks first, and the test fails with that output (what was stuck, where).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ch11.paths import PROJECT_ROOT  # the one definition of the project root, for every test

BIN = Path(sys.executable).parent
# The flow tests: two tiny runs, one seed, smoke limits, up to aggregate@ (download, validate, 2 x train, 2 x
# evaluate); at least as many commands at once as cores, so each command trains one seed at a time
FLOW_RUNS = ["baseline", "e04_elu"]
FLOW_TARGETS = ["aggregate@fashion_mnist"]
FLOW_CONCURRENCY = max(2, len(os.sched_getaffinity(0)))
# Stack dumps without core files: a child writing gigabytes of core after SIGABRT would stall abort()
resource.setrlimit(resource.RLIMIT_CORE, (0, resource.getrlimit(resource.RLIMIT_CORE)[1]))


def digest(path: Path) -> str:
    """A file's SHA-256: compare these, never file bytes (with ``CI`` set, a failing comparison of two large
    unlike ``bytes`` makes pytest run difflib over them for hours)."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def digests(files, base: Path) -> dict[str, str]:
    """``digest`` of each file by its path under ``base`` (a mismatch names the files)."""
    return {Path(p).relative_to(base).as_posix(): digest(p) for p in files}


def child_env(**extra: str) -> dict[str, str]:
    """This environment, with the venv first on PATH, quiet libraries and stack dumps on SIGABRT."""
    return {**os.environ, "PATH": str(BIN) + os.pathsep + os.environ["PATH"], "PYTHONPATH": str(PROJECT_ROOT),
            "GX_ANALYTICS_ENABLED": "False", "TF_CPP_MIN_LOG_LEVEL": "2", "MPLBACKEND": "Agg",
            "PYTHONFAULTHANDLER": "1", **extra}


def run(argv: list[str], cwd: Path, *, env: dict | None = None, timeout: float = 600, check: bool = False,
        **popen) -> subprocess.CompletedProcess:
    """``argv`` in ``cwd`` with its output captured; fails the test with the children's stacks past ``timeout`` s."""
    proc = subprocess.Popen(argv, cwd=cwd, env=env or child_env(), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True, **popen)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        out, err = abort(proc)
        pytest.fail(f"{' '.join(map(str, argv))} ran past {timeout} s; its output and stacks:\n"
                    f"{out[-4000:]}\n{err[-12000:]}")
    done = subprocess.CompletedProcess(argv, proc.returncode, out, err)
    if check and done.returncode:
        raise AssertionError(f"{' '.join(map(str, argv))} failed (exit {done.returncode}):\n{out}\n{err}")
    return done


def abort(proc: subprocess.Popen) -> tuple[str, str]:
    """SIGABRT to ``proc``'s process group (stack dumps), then SIGKILL if needed; returns the output. Waits
    at most a minute in all: a child that cannot even be killed must not hang the suite either."""
    for sig in (signal.SIGABRT, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass
        try:
            return proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            continue
    return "", f"(pid {proc.pid} still alive 30 s after SIGKILL: its output is lost)"


def module(root: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    """``python -m <args>`` in ``root`` (a project copy: its own modules come first on sys.path)."""
    return run([sys.executable, "-m", *args], root, **kwargs)


def program(name: str, *args: str) -> list[str]:
    """The command line of the test program tests/programs/<name>.py, for ``run`` (whose environment finds it
    from any folder; in a project copy, the copy's own)."""
    return [sys.executable, "-m", f"tests.programs.{name}", *args]


def dvc(root: Path, *args: str, check: bool = True, **kwargs) -> subprocess.CompletedProcess:
    return module(root, "dvc", *args, check=check, **kwargs)


def git(root: Path, *args: str) -> str:
    return run(["git", "-c", "user.name=test", "-c", "user.email=test@example.com", *args], root,
               check=True).stdout


def dvc_lock(root: Path) -> dict:
    """The stages of ``root``'s dvc.lock."""
    return yaml.safe_load((root / "dvc.lock").read_text())["stages"]


def run_outputs(root: Path, run: str) -> dict[str, str]:
    """Digests of a Fashion-MNIST run's models and training metrics: what a resumed training must reproduce."""
    folders = (root / "models" / run, root / "metrics" / "fashion_mnist" / "train" / run)
    return digests([path for folder in folders for path in sorted(folder.iterdir())], root)


def epochs_done(root: Path) -> list[int]:
    """Epochs each checkpointed training under ``root`` has done (a state being written is skipped)."""
    found = []
    for state in root.glob(".checkpoints/*/state/state.json"):
        try:
            found.append(json.loads(state.read_text())["epochs_done"])
        except (OSError, ValueError):
            pass
    return found


def readme_override() -> str:
    """The ``-S`` override of the README's everyday loop (tests run the README's own command)."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    return re.search(r"dvc exp run --allow-missing -S '([^']+)'", readme).group(1)
