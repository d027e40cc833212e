"""The training wing: one run's seeds from arrays to models, predictions, histories and probes. ``model``
builds the network and compiles it (loss, optimizer, every learning-rate schedule; the one compile path),
``engine`` trains one seed with exact resume, ``clipping``, ``transfer`` and ``probes`` extend it,
``backend`` selects and seeds Keras' backend, ``seed`` prepares and trains one seed, ``pool`` trains a run's
seeds in worker processes (how many: ``workers``) with time-left estimates.
It may import the shared modules of ``ch11`` and the data wing, never the report wing."""
