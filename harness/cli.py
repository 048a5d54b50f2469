"""The thin Hydra entrypoint: ``python -m harness.cli [overrides]`` (or ``zsnas``).

It is the only place that touches process-global state (threads, global seeds, cuDNN flags);
everything else lives in :func:`harness.run.run`, which tests call on composed configs.
"""
from __future__ import annotations

import logging
import os

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

log = logging.getLogger("harness")


def _configure_process(cfg: DictConfig) -> None:
    import random

    import numpy as np
    import torch

    seed = int(cfg.seed)
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = bool(cfg.get("tf32", False))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))


def prepare_job(cfg: DictConfig) -> str:
    """Configure the process, attach the job to its sweep's MLflow parent run (in a --multirun);
    return the job's output directory."""
    from .tracking import parent_run_id_for

    _configure_process(cfg)
    hc = HydraConfig.get()
    sweep_dir = hc.sweep.dir if hc.mode.name == "MULTIRUN" else None
    parent = parent_run_id_for(sweep_dir) if sweep_dir else None
    if parent:
        cfg.tracking.parent_run_id = parent
    return hc.runtime.output_dir


@hydra.main(version_base="1.3", config_path="../conf", config_name="config")
def main(cfg: DictConfig) -> float | None:
    from .run import run
    from .tracking import make_tracker

    out_dir = prepare_job(cfg)
    summary = run(cfg, tracker=make_tracker(cfg.tracking), output_dir=out_dir)
    log.info("records in %s", out_dir)
    first = summary["metrics"][0] if summary["metrics"] else None
    return None if first is None else first["rho"]


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
