"""One error type for every user-facing failure, and the wrapper that prints it without a traceback."""
from __future__ import annotations

import sys
from collections.abc import Callable


class PipelineError(Exception):
    """A failure the user can fix: the message names the file/key/value and the fix."""


def run_main(main: Callable[[list[str]], None]) -> None:
    """Run a stage's ``main(argv)``; a PipelineError becomes one clear paragraph and exit code 1."""
    try:
        main(sys.argv[1:])
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(1)
