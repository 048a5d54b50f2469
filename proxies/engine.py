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
- takes its groups from a ``builds`` function: built here one after another by default; the
  harness (:mod:`harness.scoring.builds`) passes one that builds the next groups in background
  worker processes, overlapped with the device's work (that policy — processes, fork, shared
  memory, pinned memory — is the harness's business, not the proxies');
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
import time
from typing import Any, Callable, Iterator, Sequence

import torch

from spaces.base import StackedSpace

from .correlation import Accumulation, ResponseCorrelation, non_finite_cause
from .probe import ProxyOutcome, _is_oom, batched_abs_correlation, on_input_gradient, outcome_of, synchronize
from .registry import get_proxy

log = logging.getLogger(__name__)

#: archs per group when the config says ``auto``: the stacked pass pays off on a GPU; on the
#: CPU the kernels are already busy with one architecture
AUTO_GROUP = {"cuda": 32, "cpu": 1}


class ResponseSink:
    """Receives a stacked pass's responses (the space calls :meth:`activation` and
    :meth:`gradient_at` where its responses are; see :class:`spaces.vocabulary.StackedSink`) and
    adds them to every proxy's :class:`~proxies.correlation.Accumulation`.  Each correlation
    matrix is computed once per dtype and shared by the proxies that want it."""

    def __init__(self, proxies: dict[str, ResponseCorrelation], G: int, N: int, top: int,
                 device: torch.device) -> None:
        self.acc = [Accumulation(p, G, N, top, device) for p in proxies.values()]

    def activation(self, layer: int, t: torch.Tensor, idx: torch.Tensor | None, mult: dict) -> None:
        """An activation response ``t`` (batch, m, ...) of the networks ``idx`` (None: all)."""
        self._add("act", layer, t, idx, mult)

    def gradient_at(self, t: torch.Tensor, layer: int, idx: torch.Tensor | None, mult: dict, m: int) -> None:
        """The gradient at the first input of ``t``'s autograd node is a response of the ``m``
        networks ``idx``: the probe's gradient hook delivers it during the backward pass."""
        on_input_gradient(t, lambda g: self._add("grad", layer, g.reshape(g.shape[0], m, -1), idx, mult))

    def _add(self, kind: str, layer: int, t: torch.Tensor, idx: torch.Tensor | None, mult: dict) -> None:
        wanted = [a for a in self.acc if a.proxy.convention in mult and a.proxy.wants(kind)]
        t = t.detach()  # responses are read, never differentiated
        done: dict[torch.dtype, tuple[torch.Tensor, torch.Tensor]] = {}
        for a in wanted:
            dtype = a.proxy.dtype
            if dtype not in done:
                done[dtype] = batched_abs_correlation(t, dtype)
            a.add(*done[dtype], layer, mult[a.proxy.convention], idx)

    def results(self) -> torch.Tensor:
        """(3, n_proxies, G) float64: log det K, skipped, total — one tensor, read in one transfer."""
        return torch.stack([torch.stack([a.log_det(), a.skipped.to(torch.float64), a.total]) for a in self.acc], 1)


def supports(space: Any, name: str) -> bool:
    """Whether the engine can score proxy ``name`` on ``space`` (a response-correlation proxy and
    a space with a stacked formulation: a :class:`spaces.base.StackedSpace`)."""
    return isinstance(space, StackedSpace) and get_proxy(name).factory is ResponseCorrelation


def build_group(space: Any, chunk: Sequence[tuple[str, int]], num_classes: int) -> tuple[Any, dict[str, str]]:
    """The networks of ``chunk`` ((arch string, init seed) pairs) built and stacked into one group
    (None when none could be built), and the build error of each architecture that failed (the
    rest of the group goes on)."""
    nets, errors = [], {}
    for arch_str, seed in chunk:
        try:
            nets.append(space.build(arch_str, num_classes, seed=seed))
        except Exception as err:  # recorded for this architecture
            errors[arch_str] = f"{type(err).__name__}: {err}"
    return (space.stacked_group(nets) if nets else None), errors


def built_here(space: Any, chunks: Sequence[Sequence[tuple[str, int]]], num_classes: int) -> Iterator:
    """The groups of ``chunks`` built one after another in this process (the engine's default;
    the harness may hand the engine a prefetching builder instead)."""
    return (build_group(space, chunk, num_classes) for chunk in chunks)


#: builds(space, chunks, num_classes) -> an iterator over (group, errors), one per chunk, in order
Builds = Callable[[Any, Sequence[Sequence[tuple[str, int]]], int], Iterator]


class Engine:
    """Scores ``proxy_names`` (all supported: see :func:`supports`) for many architectures.

    ``group_size`` architectures per stacked pass (None: :data:`AUTO_GROUP`); ``builds`` builds
    the groups' networks (default :func:`built_here`; the harness passes one that builds ahead in
    worker processes); ``dtype`` of the networks (float32; float64 for exactness checks)."""

    def __init__(self, space: Any, proxy_names: Sequence[str], *, num_classes: int, device: torch.device,
                 group_size: int | None = None, builds: Builds = built_here,
                 dtype: torch.dtype = torch.float32) -> None:
        bad = [n for n in proxy_names if not supports(space, n)]
        if bad:
            raise ValueError(f"the engine cannot score {bad} on space {getattr(space, 'name', space)!r}")
        self.space, self.names, self.num_classes = space, list(proxy_names), num_classes
        self.device, self.dtype = torch.device(device), dtype
        self.group_size = int(group_size or AUTO_GROUP.get(self.device.type, 1))
        self.builds = builds
        self.n_oom_splits = 0

    def _proxies(self) -> dict[str, ResponseCorrelation]:
        return {n: get_proxy(n).create() for n in self.names}

    def run(self, archs: Sequence[tuple[str, int]], x: torch.Tensor, y: torch.Tensor
            ) -> Iterator[list[tuple[str, dict[str, ProxyOutcome]]]]:
        """Score ``archs`` ((arch string, init seed) pairs) on the batch ``x``, ``y``; yield each
        group's (arch string, proxy -> outcome) list as soon as it is read back."""
        chunks = [list(archs[i:i + self.group_size]) for i in range(0, len(archs), self.group_size)]
        builds = self.builds(self.space, chunks, self.num_classes)
        x, y = x.to(self.device, self.dtype), y.to(self.device)
        for chunk, (group, errors) in zip(chunks, builds):
            out: dict[str, dict[str, ProxyOutcome]] = {
                a: {n: ProxyOutcome(math.nan, "error", 0.0, 0, msg) for n in self.names} for a, msg in errors.items()}
            if group is not None:
                out.update(self._score(group, x, y))
            yield [(a, out[a]) for a, _ in chunk]

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

