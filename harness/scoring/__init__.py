"""Scoring: a configuration becomes a population of architectures, batches of images, scores in
the durable store, and metrics against the benchmark.

- :mod:`.run`: the scoring job (``harness run``): population -> scores -> metrics -> tracker/report;
- :mod:`.store`: the score store (SQLite, resumable, shard merging);
- :mod:`.builds`: how the engine's networks are built (worker processes, shared memory);
"""
