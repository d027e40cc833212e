"""One error type for every user-facing failure, and the wrapper that prints it without a traceback."""
from __future__ import annotations

import os
import sys
from collections.abc import Callable


class PipelineError(Exception):
    """A failure the user can fix: the message names the file/key/value and the fix."""


def run_main(main: Callable[[list[str]], None]) -> None:
    """Run a stage's ``main(argv)``; a PipelineError becomes one clear paragraph and exit code 1, Ctrl-C
    one line and exit code 130 (at once: worker processes die with their stage; outputs are written
    atomically, so nothing half-written is left)."""
    try:
        main(sys.argv[1:])
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("interrupted: nothing half-written is left; a rerun resumes each training from its last "
              "finished epoch", file=sys.stderr, flush=True)
        sys.stdout.flush()
        os._exit(130)   # not sys.exit: that would wait for worker processes to finish their seeds
