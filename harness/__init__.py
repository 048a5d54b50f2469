"""zsnas-bench harness: configuration, running, storage, metrics, tracking and reports."""
