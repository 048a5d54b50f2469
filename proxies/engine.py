"""The scoring engine: response-correlation scores (WRCor and its family) of many architectures
per device pass.

The one-architecture path (:func:`proxies.compute_outcomes`) runs one small network at a time;
on a GPU that leaves the device mostly idle.  The engine instead

- runs a *group* of architectures as one stacked network (the space's stacked formulation, e.g.
  :mod:`spaces.nb201.stacked`): one grouped kernel per operation for the whole group;
- computes the correlation matrices of every response as batched matrix products over the
  group, accumulating each architecture's ``K`` on the device (no host synchronisation in the
  pass: the group's scores are read in ONE transfer at the end);
- computes no parameter gradient (WRCor needs only the gradients at the responses);
- builds and initialises the next groups' networks in background worker processes
  (``torch.utils.data.DataLoader``), overlapped with the device's work, and copies their
  parameters from pinned memory asynchronously;
- on out-of-memory splits the group in two and retries each half (down to one architecture,
  recorded as ``oom``), and keeps the smaller group size for the rest of the run.

Scores equal the one-architecture path's up to floating-point summation order (grouped vs dense
kernels, the order of K's float64 additions): ~1e-12 relative with float64 networks, and within
the float32 forward pass's own noise with float32 networks (tests/test_engine.py measures both).

Proxies the engine does not support (or spaces without a stacked formulation) go through the
one-architecture path: see :func:`supports`.
"""
from __future__ import annotations

import logging
import math
import multiprocessing
import os
import shutil
import sys
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import torch

from .correlation import ResponseCorrelation, non_finite_cause
from .probe import ProxyOutcome, _is_oom, batched_abs_correlation, outcome_of, synchronize
from .registry import get_proxy

log = logging.getLogger(__name__)

#: archs per group when the config says ``auto``: the stacked pass pays off on a GPU; on the
#: CPU the kernels are already busy with one architecture
AUTO_GROUP = {"cuda": 32, "cpu": 1}


@dataclass
class _Accumulator:
    """One proxy's K (G, N, N), skipped and total matrix counts (G,) on the device."""

    name: str
    proxy: ResponseCorrelation
    K: torch.Tensor
    skipped: torch.Tensor
    total: torch.Tensor

    def wants(self, kind: str) -> bool:
        return self.proxy.responses == "both" or self.proxy.responses == kind


class ResponseSink:
    """Receives a stacked pass's responses and adds them to every proxy's K (see
    :data:`spaces.nb201.stacked.Sink`).  Each correlation matrix is computed once per dtype and
    shared by the proxies that want it."""

    def __init__(self, proxies: dict[str, ResponseCorrelation], G: int, N: int, top: int,
                 device: torch.device) -> None:
        self.top = top
        z = lambda dt: torch.zeros(G, dtype=dt, device=device)  # noqa: E731
        self.acc = [_Accumulator(n, p, torch.zeros(G, N, N, dtype=torch.float64, device=device), z(torch.int64),
                                 z(torch.float64)) for n, p in proxies.items()]

    def __call__(self, kind: str, layer: int, t: torch.Tensor, idx: torch.Tensor | None, mult: dict) -> None:
        wanted = [a for a in self.acc if a.proxy.convention in mult and a.wants(kind)]
        t = t.detach()  # responses are read, never differentiated
        done: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}
        for a in wanted:
            p = a.proxy
            if p.dtype not in done:
                done[p.dtype] = batched_abs_correlation(t, p.dtype)
            c, bad = done[p.dtype]
            if p.power != 1.0:
                c = c.pow(p.power)
            count = mult[p.convention]  # per architecture (a tensor) or for all of them
            if not isinstance(count, torch.Tensor):
                count = torch.full((c.shape[0],), float(count), dtype=torch.float64, device=c.device)
            contrib = torch.where(bad[:, None, None], 0.0, c).to(torch.float64) \
                * (count * p.weight(layer, self.top))[:, None, None]
            self._add(a.K, idx, contrib)
            self._add(a.skipped, idx, bad.to(torch.int64) * count.to(torch.int64))
            self._add(a.total, idx, count)

    @staticmethod
    def _add(target: torch.Tensor, idx: torch.Tensor | None, value: torch.Tensor) -> None:
        if idx is None:
            target.add_(value)
        else:
            target.index_add_(0, idx, value)

    def results(self) -> torch.Tensor:
        """(3, n_proxies, G) float64: log det K, skipped, total — one tensor, read in one transfer."""
        rows = [torch.stack([torch.linalg.slogdet(a.K)[1], a.skipped.to(torch.float64), a.total]) for a in self.acc]
        return torch.stack(rows, 1)


def supports(space: Any, name: str) -> bool:
    """Whether the engine can score proxy ``name`` on ``space`` (a response-correlation proxy and
    a space with a stacked formulation)."""
    return hasattr(space, "stacked_group") and get_proxy(name).factory is ResponseCorrelation


class _Builds(torch.utils.data.Dataset):
    """Item i = the i-th group, built and packed (runs in the DataLoader's worker processes)."""

    def __init__(self, space: Any, chunks: list[list[tuple[str, int]]], num_classes: int) -> None:
        self.space, self.chunks, self.num_classes = space, chunks, num_classes

    def __len__(self) -> int:
        return len(self.chunks)

    def __getitem__(self, i: int) -> tuple[Any, dict[str, str]]:
        nets, errors = [], {}
        for arch_str, seed in self.chunks[i]:
            try:
                nets.append(self.space.build(arch_str, self.num_classes, seed=seed))
            except Exception as err:  # recorded for this architecture; the rest of the group goes on
                errors[arch_str] = f"{type(err).__name__}: {err}"
        return (self.space.stacked_group(nets) if nets else None), errors


def _identity(item: Any) -> Any:
    return item


#: groups each build worker keeps ready; an NB201 network's parameters take ~3.2 MB (C=16, N=5)
PREFETCH = 2
_BYTES_PER_ARCH = 4 << 20


def _workers_that_fit(workers: int, group_size: int, shm: str = "/dev/shm") -> int:
    """Build workers hand their groups over in shared memory: as many as ``shm`` has room for
    (a container's default 64 MB holds none), with a warning when that is fewer than asked."""
    if workers <= 0:
        return 0
    try:
        free = shutil.disk_usage(shm).free
    except OSError:
        return workers
    fit = int(free // (2 * _BYTES_PER_ARCH * group_size * PREFETCH))  # half of it, to leave room
    if fit < workers:
        log.warning("%s has %.0f MB free: %d build worker(s) instead of %d", shm, free / 2**20, fit, workers)
    return min(workers, fit)


class Engine:
    """Scores ``proxy_names`` (all supported: see :func:`supports`) for many architectures.

    ``group_size`` architectures per stacked pass (None: :data:`AUTO_GROUP`); ``workers``
    processes build the networks ahead (None: 0 on the CPU, up to 8 on a GPU); ``dtype`` of the
    networks (float32; float64 for exactness checks)."""

    def __init__(self, space: Any, proxy_names: Sequence[str], *, num_classes: int, device: torch.device,
                 group_size: int | None = None, workers: int | None = None,
                 dtype: torch.dtype = torch.float32) -> None:
        bad = [n for n in proxy_names if not supports(space, n)]
        if bad:
            raise ValueError(f"the engine cannot score {bad} on space {getattr(space, 'name', space)!r}")
        self.space, self.names, self.num_classes = space, list(proxy_names), num_classes
        self.device, self.dtype = torch.device(device), dtype
        self.group_size = int(group_size or AUTO_GROUP.get(self.device.type, 1))
        if workers is None:
            workers = 0 if self.device.type == "cpu" else max(0, min(8, (os.cpu_count() or 2) - 2))
        self.workers = _workers_that_fit(int(workers), self.group_size)
        self.n_oom_splits = 0

    def _proxies(self) -> dict[str, ResponseCorrelation]:
        return {n: get_proxy(n).create() for n in self.names}

    def run(self, archs: Sequence[tuple[str, int]], x: torch.Tensor, y: torch.Tensor
            ) -> Iterator[list[tuple[str, dict[str, ProxyOutcome]]]]:
        """Score ``archs`` ((arch string, init seed) pairs) on the batch ``x``, ``y``; yield each
        group's (arch string, proxy -> outcome) list as soon as it is read back."""
        chunks = [list(archs[i:i + self.group_size]) for i in range(0, len(archs), self.group_size)]
        builds = self._builds(_Builds(self.space, chunks, self.num_classes))
        x, y = x.to(self.device, self.dtype), y.to(self.device)
        for chunk, (group, errors) in zip(chunks, builds):
            out: dict[str, dict[str, ProxyOutcome]] = {
                a: {n: ProxyOutcome(math.nan, "error", 0.0, 0, msg) for n in self.names} for a, msg in errors.items()}
            if group is not None:
                out.update(self._score(group, x, y))
            yield [(a, out[a]) for a, _ in chunk]

    def _builds(self, dataset: "_Builds") -> Iterator:
        """The groups, built ahead by ``self.workers`` processes (forked on Linux: nothing is
        pickled, so it works inside a Hydra joblib worker too), or in this process when there
        are none or they cannot start here."""
        def loader(workers: int):
            ctx = multiprocessing.get_context("fork") if workers and sys.platform.startswith("linux") else None
            return iter(torch.utils.data.DataLoader(
                dataset, batch_size=None, shuffle=False, num_workers=workers, collate_fn=_identity,
                pin_memory=self.device.type == "cuda", prefetch_factor=PREFETCH if workers else None,
                multiprocessing_context=ctx))

        if self.workers:
            try:
                return loader(self.workers)
            except Exception as err:  # e.g. a daemonic process may not have children
                log.warning("build workers could not start (%s: %s): building in this process",
                            type(err).__name__, err)
                self.workers = 0
        return loader(0)

    def _score(self, group: Any, x: torch.Tensor, y: torch.Tensor) -> dict[str, dict[str, ProxyOutcome]]:
        """Score one group, splitting it (recursively) on out-of-memory."""
        if len(group) > self.group_size:  # an earlier group ran out of memory at this size
            return self._split(group, x, y)
        start = time.perf_counter()
        try:
            res, failure = self._pass(group, x, y), None
        except Exception as err:
            res, failure = None, ("oom" if _is_oom(err) else "error", f"{type(err).__name__}: {err}")
        # (out of the except block: the traceback's frames, holding the pass's tensors, are gone)
        if failure is not None:
            status, msg = failure
            if status == "oom" and self.device.type == "cuda":
                torch.cuda.empty_cache()
            if status == "error" or len(group) == 1:
                if status == "oom":
                    msg = f"out of memory with one architecture (batch {x.shape[0]}) on {self.device}: {msg}"
                log.error("a group of %d architecture(s) failed: %s", len(group), msg)
                return {self.space.to_str(a): {n: ProxyOutcome(math.nan, status, 0.0, 0, msg) for n in self.names}
                        for a in group.archs}
            self.n_oom_splits += 1
            self.group_size = max(1, len(group) // 2)
            log.warning("out of memory on a group of %d architectures: splitting it (group size now %d)",
                        len(group), self.group_size)
            return self._split(group, x, y)
        seconds = (time.perf_counter() - start) / len(group)
        out = {}
        for g, arch in enumerate(group.archs):
            per = {}
            for j, n in enumerate(self.names):
                value, skipped, total = float(res[0, j, g]), int(res[1, j, g]), int(res[2, j, g])
                per[n] = outcome_of(value, seconds, skipped, non_finite_cause(value, skipped, total))
            out[self.space.to_str(arch)] = per
        return out

    def _split(self, group: Any, x: torch.Tensor, y: torch.Tensor) -> dict[str, dict[str, ProxyOutcome]]:
        out: dict[str, dict[str, ProxyOutcome]] = {}
        size = max(1, min(self.group_size, (len(group) + 1) // 2))
        for start in range(0, len(group), size):
            out.update(self._score(group.subset(range(start, min(start + size, len(group)))), x, y))
        return out

    def _pass(self, group: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        dev_group = group.to(self.device, self.dtype)
        sink = ResponseSink(self._proxies(), len(group), x.shape[0], self.space.stacked_top(dev_group), self.device)
        self.space.stacked_pass(dev_group, x, y, sink)
        res = sink.results().cpu()  # the group's one host synchronisation
        synchronize(self.device)
        return res


def score_many(space: Any, proxy_names: Sequence[str], archs: Sequence[tuple[str, int]], x: torch.Tensor,
               y: torch.Tensor, **engine_kw: Any) -> dict[str, dict[str, ProxyOutcome]]:
    """Every architecture's outcomes (a convenience over :meth:`Engine.run`)."""
    engine = Engine(space, proxy_names, num_classes=int(engine_kw.pop("num_classes")), **engine_kw)
    return {a: o for batch in engine.run(archs, x, y) for a, o in batch}

