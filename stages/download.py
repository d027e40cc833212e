"""DVC stage ``download``: ``python -m stages.download <dataset>`` fetches and verifies data/raw/<dataset>/."""
from __future__ import annotations

import ch11.params
from ch11.errors import PipelineError, run_main
from ch11.data.sources import fetch_dataset


def main(argv: list[str]) -> None:
    if len(argv) != 1:
        raise PipelineError("usage: python -m stages.download <dataset>, with <dataset> one of: "
                            f"{', '.join(ch11.params.DATASETS)}.")
    fetch_dataset(argv[0], ch11.params.load())


if __name__ == "__main__":
    run_main(main)
