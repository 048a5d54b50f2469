"""The released WRCor code's scores of 10 NB201 architectures (``../shared/golden``): what the
proxies must reproduce, on the CPU (``tests/test_proxies.py``) and on a GPU (``harness gpu-check``).

Each golden architecture comes with its complete state (parameters and buffers, loaded by
position) and is scored on the first 64 CIFAR-10 training images, every measure in one
:func:`proxies.compute` call.  The golden directory is ``$ZSNAS_GOLDEN_DIR``, else ``golden/``
beside the data directory (``../shared/golden`` beside ``../shared/data``).
"""
from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = ["GOLDEN_MAP", "GOLDEN_TOL", "CANCELLING_TOL", "ENV_VAR", "golden_dir", "load", "score", "errors",
           "tolerance"]

ENV_VAR = "ZSNAS_GOLDEN_DIR"
JSON_NAME, NPZ_NAME = "nb201_reference_scores.json", "nb201_reference_states.npz"

#: our registered name -> the reference measure it reproduces
GOLDEN_MAP = {"wrcor_official": "act_grad_cor_weighted", "rcor": "act_grad_cor", "acor": "act_cor",
              "gcor": "grad_cor", "naswot": "act_hamming", "synflow": "synflow", "jacob_cov": "jacob_cor",
              "snip": "snip", "grad_norm": "grad_norm", "fisher": "fisher", "grasp": "grasp",
              "l2_norm": "l2_norm", "plain": "plain"}
#: the relative tolerance of every measure on the CPU ...
GOLDEN_TOL = 1e-6
#: ... but the two sums with heavy cancellation (sum of w*g, sum of w*Hg): on some CPUs (seen on an
#: AVX-512 Xeon on 2026-12-03, the AVX2 settings of tests/conftest.py notwithstanding) their
#: float32 parameter gradients round differently and they move by up to 1e-4 relative, while every
#: other measure, WRCor's included, still agrees to < 1e-6
CANCELLING_TOL = {"plain": 2e-4, "grasp": 2e-4}
# With the golden batch arithmetic (harness.data: float32 constants / 255) and oneDNN's AVX2 kernels
# (tests/conftest.py) every value agrees to < 1e-8; the most ill-conditioned one (rcor of the
# all-avg-pool arch 7581) moves by 1.4e-6 when the batch differs in the last bit or AVX-512 kernels
# are used.


def golden_dir() -> Path:
    """``$ZSNAS_GOLDEN_DIR``, else ``golden/`` beside the data directory (it may not exist)."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    from spaces.datafiles import resolve_data_dir

    return resolve_data_dir().parent / "golden"


def load(directory: str | os.PathLike[str] | None = None) -> tuple[dict[int, dict[str, Any]], Any]:
    """(arch index -> its entry: ``arch_str``, ``state_names``, ``scores`` ...; the states' npz)."""
    root = Path(directory) if directory is not None else golden_dir()
    missing = [n for n in (JSON_NAME, NPZ_NAME) if not (root / n).is_file()]
    if missing:
        raise FileNotFoundError(f"golden reference files {missing} not found in {root} (set ${ENV_VAR} to the "
                                "directory holding them)")
    with open(root / JSON_NAME) as fh:
        entries = {int(a["index"]): a for a in json.load(fh)["archs"]}
    return entries, np.load(root / NPZ_NAME)


def score(entry: dict[str, Any], arrays: Any, x: torch.Tensor, y: torch.Tensor,
          names: list[str] | None = None) -> dict[str, float]:
    """Every golden measure (ours: ``names``, default all of :data:`GOLDEN_MAP`) of one golden
    architecture, its stored state loaded, on ``x``'s device, in one :func:`proxies.compute` call."""
    import proxies
    import spaces
    from spaces.nb201 import load_state_by_position

    names = list(GOLDEN_MAP) if names is None else names
    net = spaces.get_space("nb201").build(entry["arch_str"], 10)
    load_state_by_position(net, [arrays[f"a{entry['index']}_{j:03d}"] for j in range(len(entry["state_names"]))])
    return proxies.compute(names, net.to(x.device), x, y, space=spaces.get_space("nb201"))


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def errors(entry: dict[str, Any], ours: dict[str, float]) -> dict[str, float]:
    """Our name -> relative difference to the reference; a -inf / NaN the reference returned
    must stay -inf / NaN (0 when it does, inf when it does not)."""
    out = {}
    for name, got in ours.items():
        expected = entry["scores"][GOLDEN_MAP[name]]
        if math.isinf(expected) or math.isnan(expected):
            out[name] = 0.0 if got == expected or (math.isnan(got) and math.isnan(expected)) else math.inf
        else:
            out[name] = rel(got, expected) if math.isfinite(got) else math.inf
    return out


def tolerance(name: str) -> float:
    """The relative tolerance of measure ``name`` (ours)."""
    return CANCELLING_TOL.get(name, GOLDEN_TOL)
