"""How the scoring engine gets its networks: the harness's policy of processes and memory.

The engine (:class:`proxies.engine.Engine`) scores groups of networks; building and initialising
them costs as much as scoring them on a GPU.  Here the next groups are built ahead in worker
processes (a ``torch.utils.data.DataLoader``, forked on Linux so nothing is pickled and it works
inside a Hydra joblib worker too), handed over in shared memory, and pinned for asynchronous
copies to a GPU.  Workers are limited by the room ``/dev/shm`` has (a container's default 64 MB
holds none); when they cannot start (e.g. in a daemonic process) the groups are built here.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import shutil
import sys
from typing import Any, Iterator, Sequence

import torch

from proxies.engine import AUTO_GROUP, Builds, Engine, build_group, built_here

log = logging.getLogger(__name__)

#: groups each build worker keeps ready; an NB201 network's parameters take ~3.2 MB (C=16, N=5)
PREFETCH = 2
_BYTES_PER_ARCH = 4 << 20


def default_workers(device: torch.device) -> int:
    """Build workers when the config says ``auto``: none on the CPU (its cores are busy scoring),
    up to 8 beside a GPU (leaving two cores)."""
    return 0 if device.type == "cpu" else max(0, min(8, (os.cpu_count() or 2) - 2))


def workers_that_fit(workers: int, group_size: int, shm: str = "/dev/shm") -> int:
    """As many of ``workers`` as ``shm`` has room for (half of its free space), with a warning
    when that is fewer than asked."""
    if workers <= 0:
        return 0
    try:
        free = shutil.disk_usage(shm).free
    except OSError:
        return workers
    fit = int(free // (2 * _BYTES_PER_ARCH * group_size * PREFETCH))
    if fit < workers:
        log.warning("%s has %.0f MB free: %d build worker(s) instead of %d", shm, free / 2**20, fit, workers)
    return min(workers, fit)


class _Groups(torch.utils.data.Dataset):
    """Item i = the i-th group, built and packed (runs in the DataLoader's worker processes)."""

    def __init__(self, space: Any, chunks: Sequence[Sequence[tuple[str, int]]], num_classes: int) -> None:
        self.space, self.chunks, self.num_classes = space, chunks, num_classes

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> tuple[Any, dict[str, str]]:
        return build_group(self.space, self.chunks[i], self.num_classes)


def _identity(item: Any) -> Any:
    return item


def prefetching(workers: int, device: torch.device) -> Builds:
    """A builds function for the engine: ``workers`` processes build the groups ahead (pinned
    for a GPU); with none, or when they cannot start here, the groups are built in this process."""
    def builds(space: Any, chunks: Sequence[Sequence[tuple[str, int]]], num_classes: int) -> Iterator:
        if workers:
            ctx = multiprocessing.get_context("fork") if sys.platform.startswith("linux") else None
            try:
                return iter(torch.utils.data.DataLoader(
                    _Groups(space, chunks, num_classes), batch_size=None, shuffle=False, num_workers=workers,
                    collate_fn=_identity, pin_memory=device.type == "cuda", prefetch_factor=PREFETCH,
                    multiprocessing_context=ctx))
            except Exception as err:  # e.g. a daemonic process may not have children
                log.warning("build workers could not start (%s: %s): building in this process",
                            type(err).__name__, err)
        return built_here(space, chunks, num_classes)

    return builds


def make_engine(space: Any, proxy_names: Sequence[str], *, num_classes: int, device: torch.device,
                group_size: int | None = None, workers: int | None = None,
                dtype: torch.dtype = torch.float32) -> tuple[Engine, int]:
    """The engine for ``proxy_names`` with the harness's build policy, and its number of build
    workers (``None`` = auto: :data:`proxies.engine.AUTO_GROUP`, :func:`default_workers`)."""
    device = torch.device(device)
    group = int(group_size or AUTO_GROUP.get(device.type, 1))
    n = workers_that_fit(default_workers(device) if workers is None else int(workers), group)
    engine = Engine(space, proxy_names, num_classes=num_classes, device=device, group_size=group,
                    builds=prefetching(n, device), dtype=dtype)
    return engine, n
