"""Test-session settings, applied before torch is imported anywhere.

* one thread: torch threads slow down tenfold when the two cores are shared;
* ``ONEDNN_MAX_CPU_ISA=AVX2``: the golden scores were produced on an AVX2 CPU.  On an AVX-512 CPU
  oneDNN's convolution kernels accumulate in another order, the float32 gradients differ in the
  last bit, and the most ill-conditioned golden value (rcor of the all-avg-pool arch 7581) moves
  by 1.4e-6 relative; with the AVX2 kernels every golden value agrees to < 1e-8.
"""
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")

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
GOLDEN = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "golden")
