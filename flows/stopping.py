"""SIGINT or SIGTERM to `python -m flows.pipeline`, whether it reaches the flow alone or its whole process
group (a terminal's Ctrl-C, coreutils `timeout`, systemd): every stage command is stopped, nothing new
starts, and the process ends within seconds with one line saying what finished and that a re-run resumes.

The exit waits for no Prefect server: a group signal kills the local one too (or leaves it shutting down),
and Prefect's clients then retry for minutes. So after the signal every log and thread error is silenced,
and the process exits as soon as the flow's own thread has wound up; or, once no command is left, at once
when the local server is gone and SETTLE_S later when it is not (time enough for a live server to take the
flow's last state); GRACE_S after the signal at the latest - never in the middle of a dvc.lock write. A
second signal skips the wait for the commands."""
from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time

from flows.dvc_adapter import DVC_LOCK
from flows.scheduler import RECORDED, STOPPED, commands_running, stop_commands

GRACE_S = 8            # after the signal: time for the stopped commands and the flow's bookkeeping
SETTLE_S = 2           # after the last command ended: time for the flow's thread to record and report
RECEIVED: list[int] = []    # the signal that stopped the flow
HURRY = threading.Event()   # a second signal: exit as soon as no dvc.lock write is in progress
_INSTALLED = threading.Event()
_EXIT = threading.Lock()    # one exit, from whichever thread gets there first


def install() -> None:
    """Handle SIGINT and SIGTERM as this module says (the command line only; the tests' harness does not)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _on_signal)
    _INSTALLED.set()


def reclaim() -> None:
    """Inside the flow: take SIGTERM back from Prefect's engine, whose handler raises TerminationSignal and
    then reports the crash to the server (minutes of retries when the same signal killed it)."""
    if _INSTALLED.is_set() and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_signal)


def _on_signal(signum, _frame) -> None:
    if RECEIVED:
        HURRY.set()
        return
    RECEIVED.append(signum)
    logging.disable(logging.CRITICAL)            # Prefect's clients and workers, failing to reach a dead server
    threading.excepthook = lambda _args: None
    sys.unraisablehook = lambda _args: None
    stop_commands()
    threading.Thread(target=_exit_when_settled, daemon=True).start()


def _exit_when_settled() -> None:
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and not HURRY.is_set():
        if not commands_running():
            if not local_server_alive():
                break
            deadline = min(deadline, time.monotonic() + SETTLE_S)
        time.sleep(0.1)
    exit_now()


def local_servers() -> list:
    """The ephemeral Prefect server processes this process started (none when it uses PREFECT_API_URL)."""
    server = sys.modules.get("prefect.server.api.server")
    instances = list(server.SubprocessASGIServer._instances.values()) if server else []
    return [instance.server_process for instance in instances if instance.server_process]


def local_server_alive() -> bool:
    """False once every local server has died; True while one runs, or when the server is not ours to see."""
    servers = local_servers()
    return not servers or any(process.poll() is None for process in servers)


def interrupted_line() -> str:
    stopped = ", ".join(dict.fromkeys(STOPPED)) or "no stage command was running"
    return (f"interrupted by {signal.Signals(RECEIVED[0]).name}: stopped {stopped}; {len(RECORDED)} stage(s) "
            "finished in this run, recorded in dvc.lock; a re-run resumes from there (each stopped training "
            "from its last finished epoch)")


def exit_now() -> None:
    """Wait for a dvc.lock write in progress (30 s at most), end the local server, say what happened, exit
    with 128 + the signal number."""
    with _EXIT:
        DVC_LOCK.acquire(timeout=30)
        for process in local_servers():
            process.kill()
        print(f"error: {interrupted_line()}", file=sys.stderr, flush=True)
        os._exit(128 + RECEIVED[0])
