"""Training-free proxies.  Public API (stable)::

    proxies.compute(names, net, inputs, targets) -> dict[str, float]
    proxies.compute_outcomes(names, net, inputs, targets) -> dict[str, ProxyOutcome]
    proxies.get_proxy(name), proxies.list_proxies(pattern), proxies.register(name, ...)
    proxies.get_aggregator(name), proxies.list_aggregators(pattern)   (votes: rank aggregations)

Proxies that need the same pass share one forward/backward.  The caller's network is never
modified (weights, gradients, buffers, hooks, mode): the Probe works on a private copy.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

# importing a family module registers its proxies
from . import aznas, correlation, jacobian, meco, naswot, pruning, swap, synflow, tenas, vkdnw, zen, zico  # noqa: F401
from .aggregators import get_aggregator, is_aggregator, list_aggregators
from .probe import ProxyOutcome, ResponseProvider, Session, every_relu, is_shared_pass, no_responses, run_pass
from .registry import ProxyInfo, get_proxy, list_proxies, register

__all__ = ["compute", "compute_outcomes", "get_proxy", "list_proxies", "register", "ProxyInfo", "pass_group",
           "ProxyOutcome", "Session", "ProxyError", "every_relu", "get_aggregator", "is_aggregator", "list_aggregators", "components_of", "canonical"]


class ProxyError(RuntimeError):
    """A proxy failed (the message names it and the cause)."""


def _names(names: str | Iterable[str]) -> list[str]:
    names = [names] if isinstance(names, str) else list(dict.fromkeys(names))
    if not names:
        raise ValueError("no proxy names given")
    for n in names:
        if is_aggregator(n):
            raise ValueError(f"{n!r} aggregates {list(get_aggregator(n).components)}: it ranks a set of architectures "
                             f"and has no value for one network (see proxies.aggregators)")
        get_proxy(n)  # unknown name -> error listing the valid ones
    return names


def canonical(name: str) -> str:
    """The canonical name of a proxy spec (``wrcor( power=2 )`` -> ``wrcor(power=2)``) or an
    aggregator's name; an unknown name raises, listing the registered ones."""
    return get_aggregator(name).name if is_aggregator(name) else get_proxy(name).name


def components_of(name: str) -> tuple[str, ...]:
    """The proxies that ``name`` needs per network: an aggregator's components, or the proxy
    itself (its canonical name: a spec like ``wrcor(power=2)`` is normalised).  An unknown name
    raises, listing the registered proxies."""
    if is_aggregator(name):
        return get_aggregator(name).leaves
    return (get_proxy(name).name,)


def pass_group(info: ProxyInfo) -> tuple:
    """Proxies with the same group share one pass: a shared pass kind with its BN setting; a
    private kind registered ``shares_private`` with its BN setting and parameters (AZ-NAS's three
    proxies); otherwise the proxy's own private pass."""
    if is_shared_pass(info.pass_kind):
        return (info.pass_kind, info.bn)
    if info.shares_private:
        return ("private", info.pass_kind, info.bn, tuple(sorted((k, repr(v)) for k, v in info.params.items())))
    return ("private", info.name)


def compute_outcomes(names: str | Iterable[str], net: nn.Module, inputs: torch.Tensor,
                     targets: torch.Tensor | None = None, *, loss_fn: Callable = F.cross_entropy,
                     space: Any = None, responses: ResponseProvider | None = None,
                     seed: int = 0) -> dict[str, ProxyOutcome]:
    """Every proxy's outcome (value, status, seconds, skipped matrices, message); failures
    (an error, out of memory) are recorded as outcomes, not raised.

    Proxies with the same shared pass kind and BN setting share one session (one pass); a proxy
    with a private pass kind gets a session of its own.  ``seed`` seeds the proxies that draw
    random numbers (zen's Gaussian inputs, ...).

    The correlation proxies read the responses a space states: pass the ``space`` that built
    ``net`` (its ``response_modules``), or ``responses`` (e.g. :func:`every_relu` for a network
    no space built); without either, such a proxy's outcome is an error saying so."""
    if responses is None:
        responses = space.response_modules if space is not None else no_responses
    names = _names(names)
    groups: dict[tuple, dict] = {}
    for n in names:
        info = get_proxy(n)
        if info.needs_labels and targets is None:
            raise ValueError(f"proxy {n!r} needs labels: pass targets")
        groups.setdefault(pass_group(info), {})[n] = info
    out: dict[str, ProxyOutcome] = {}
    for infos in groups.values():
        first = next(iter(infos.values()))
        out.update(run_pass({n: i.create() for n, i in infos.items()}, net, inputs, targets, loss_fn=loss_fn,
                            responses=responses, pass_kind=first.pass_kind,
                            bn=first.bn, seed=seed))
    return {n: out[n] for n in names}


def compute(names: str | Iterable[str], net: nn.Module, inputs: torch.Tensor,
            targets: torch.Tensor | None = None, **kw) -> dict[str, float]:
    """The score of each named proxy for ``net`` on one batch.

    NaN/inf scores are returned as they are; a proxy that fails raises :class:`ProxyError`.
    """
    outcomes = compute_outcomes(names, net, inputs, targets, **kw)
    failed = {n: o.message for n, o in outcomes.items() if o.status in ("error", "oom")}
    if failed:
        raise ProxyError(f"proxies failed: {failed}")
    return {n: o.value for n, o in outcomes.items()}
