"""A tiny scoring sweep run the way a user runs it, shared by the MLflow tests: ``harness run
--multirun`` as a subprocess from a scratch working directory, 2 proxies x 2 seeds on 3 NB201
architectures (tiny networks on a noise batch), tracked into ``<dir>/store/mlruns.db``."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROXIES = ("wrcor", "synflow")
SEEDS = (0, 1)


@dataclass
class Sweep:
    dir: Path
    db: Path
    uri: str
    store: Path          # the score store (its records carry their creation time)
    started: float       # wall clock around the command
    ended: float
    stderr: str


def tiny_sweep(base: Path) -> Sweep:
    base.mkdir(parents=True, exist_ok=True)
    db = base / "store" / "mlruns.db"
    args = [sys.executable, "-m", "harness", "run", "--multirun", "profile=tiny", "space.channels=4",
            "space.cells_per_stage=1", "batch.size=8", "batch.kind=noise", "device=cpu", "archs.n=3",
            f"proxies=[{','.join(PROXIES)}]", f"seed={','.join(map(str, SEEDS))}",
            f"store.path={base / 'scores.sqlite'}", f"tracking.uri={db}", f"hydra.sweep.dir={base / 'sweep'}"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    env.pop("ZSNAS_MLFLOW_URI", None)
    env.pop("ZSNAS_STORE", None)
    started = time.time()
    done = subprocess.run(args, cwd=base, env=env, capture_output=True, text=True, timeout=600)
    ended = time.time()
    assert done.returncode == 0, done.stderr[-3000:]
    return Sweep(base / "sweep", db, f"sqlite:///{db}", base / "scores.sqlite", started, ended, done.stderr)
