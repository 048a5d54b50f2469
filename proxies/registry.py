"""The proxy registry: names -> proxy factories with their metadata.

>>> "wrcor" in list_proxies("*cor*")
True
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable

from spaces.base import UnknownNameError


@dataclass(frozen=True)
class ProxyInfo:
    """A registered proxy.

    ``factory(**params)`` returns a fresh proxy object for one computation (see
    :class:`proxies.probe.Proxy`).  ``higher_is_better`` is the proxy's own sign convention; the
    runner applies it once, when ranking.  ``pass_kind`` names the forward/backward pass the
    proxy needs (see :mod:`proxies.probe`): proxies with the same shared ``pass_kind`` and
    ``bn`` share one pass; any other kind is the proxy's private pass.
    """

    name: str
    factory: Callable[..., Any]
    higher_is_better: bool = True
    needs_labels: bool = True
    bn: bool = True
    pass_kind: str = "standard"
    params: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    #: for a vote: the proxies it aggregates (it has no per-network value; see proxies.vote)
    components: tuple[str, ...] = ()

    def create(self) -> Any:
        return self.factory(**self.params)


_REGISTRY: dict[str, ProxyInfo] = {}


def register(name: str, *, params: dict[str, Any] | None = None, **meta: Any) -> Callable:
    """Register ``factory`` under ``name``; a duplicate name raises.

    Used as a decorator (``@register("acor", params=...)``) or called with the factory.
    """

    def deco(factory: Callable) -> Callable:
        if name in _REGISTRY:
            raise ValueError(f"proxy {name!r} is already registered")
        _REGISTRY[name] = ProxyInfo(name=name, factory=factory, params=dict(params or {}), **meta)
        return factory

    return deco


def get_proxy(name: str) -> ProxyInfo:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownNameError(f"unknown proxy {name!r}; registered proxies: {sorted(_REGISTRY)}") from None


def list_proxies(pattern: str = "*") -> list[str]:
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))
