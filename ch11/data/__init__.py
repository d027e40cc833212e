"""The data wing: raw files to the arrays a run sees. ``sources`` fetches the raw files, ``datasets`` parses
them, ``expectations`` and ``data_docs`` gate them with the Great Expectations suite and its Data Docs, and
``splits`` cuts the validated splits and filters them to a run's classes and limits. It may import the shared
modules of ``ch11`` only: never the training or report wing (both build on it)."""
