"""Test-session settings, applied before torch is imported anywhere.

* one thread: torch threads slow down tenfold when the two cores are shared;
* ``ONEDNN_MAX_CPU_ISA=AVX2`` and ``ATEN_CPU_CAPABILITY=avx2``: the golden scores were produced on
  an AVX2 CPU with 2 threads (the golden fixture in test_proxies.py uses 2 threads).  On an
  AVX-512 CPU oneDNN's convolutions and ATen's reductions accumulate in another order, float32
  results differ in the last bits, and the sums with heavy cancellation (``plain``, ``grasp``)
  move by up to 5e-5 relative; with the reference's arithmetic every golden value agrees to
  < 1e-8 (most exactly).
"""
import contextlib
import os
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("ATEN_CPU_CAPABILITY", "avx2")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

from spaces.base import DataFileError  # noqa: E402
from spaces.datafiles import resolve_data_dir  # noqa: E402


def _real_data_dir():
    try:
        return resolve_data_dir()
    except DataFileError:
        return None


#: the benchmark data directory, or None when it is absent (data-dependent tests then skip)
REAL = _real_data_dir()
needs_data = pytest.mark.skipif(REAL is None, reason="benchmark data (../shared/data or $ZSNAS_DATA_DIR) not found")
GOLDEN = os.environ.get("ZSNAS_GOLDEN_DIR") or os.path.join(os.path.dirname(__file__), "..", "..", "shared", "golden")


# ------------------------------------------------------------------------------------------------
# a stand-in for the MLflow tracker (harness.tracking), for tests that check what a command logs


class RecordingTracker:
    """A tracker that records the tags, params and metrics of every run it opens."""

    def __init__(self) -> None:
        self.runs: list[dict] = []

    @contextlib.contextmanager
    def run(self, name, *, parent_run_id=None, tags=None, **_):
        rec = {"name": name, "tags": dict(tags or {}), "params": {}, "metrics": {}, "series": {}, "artifacts": []}
        self.runs.append(rec)
        yield _Handle(rec, f"run{len(self.runs)}")

    def __getattr__(self, name):  # any other tracker call (a preflight, ...) does nothing
        return lambda *a, **k: None


class _Handle:
    def __init__(self, rec: dict, run_id: str) -> None:
        self.rec, self.run_id = rec, run_id

    def set_tags(self, tags):
        self.rec["tags"].update(tags)

    def log_params(self, params):
        self.rec["params"].update(params)

    def log_metrics(self, metrics, step=None):
        self.rec["metrics"].update(metrics)

    def log_series(self, series):
        self.rec["series"] = {k: list(v) for k, v in series.items()}

    def log_artifact(self, path, artifact_path=None):
        self.rec["artifacts"].append(Path(path).name)

    def __getattr__(self, name):
        return lambda *a, **k: None
