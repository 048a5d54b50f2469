"""Plugins: proxies, spaces and search strategies from other installed distributions.

A distribution adds to a registry by declaring a Python entry point in one of the groups
:data:`GROUPS`; loading the entry point (importing its module) is expected to register the
objects with the registry's decorator (``proxies.register``, ``spaces.register_space``,
``harness.search.register_strategy``).  A package's ``pyproject.toml``::

    [project.entry-points."zsnas_bench.proxies"]
    my_proxy = "my_package.proxies"

Entry points are loaded lazily, the first time a registry is listed or asked for a name it does
not know, and once per process.  A plugin that fails to import is reported by name (a warning,
and :func:`failures` for the registries' unknown-name errors); it never breaks the built-ins.

Standard library only: the core packages import it.
"""
from __future__ import annotations

import importlib.metadata
import logging
import threading
from typing import Callable, Mapping, TypeVar

__all__ = ["GROUPS", "load", "lookup", "failures", "describe_failures"]

T = TypeVar("T")

#: registry -> entry-point group
GROUPS = {"proxies": "zsnas_bench.proxies", "spaces": "zsnas_bench.spaces", "strategies": "zsnas_bench.strategies"}

log = logging.getLogger(__name__)
_lock = threading.RLock()
_loaded: set[str] = set()
_failed: dict[str, dict[str, str]] = {}


def load(group: str) -> dict[str, str]:
    """Import every entry point of ``group`` (once per process); return the failures of the group
    as ``{entry point name: "module: error"}``."""
    with _lock:
        if group in _loaded:
            return dict(_failed.get(group, {}))
        _loaded.add(group)  # before loading: a plugin that imports the registry must not recurse here
        failed = _failed.setdefault(group, {})
        for ep in importlib.metadata.entry_points(group=group):
            try:
                ep.load()
            except Exception as err:  # noqa: BLE001 -- any failure of a third-party import is reported
                dist = getattr(ep, "dist", None)
                where = f"{ep.value}" + (f" from {dist.name} {dist.version}" if dist is not None else "")
                failed[ep.name] = f"{where}: {type(err).__name__}: {err}"
                log.warning("plugin %r (entry point group %s) failed to load and is left out: %s",
                            ep.name, group, failed[ep.name])
        return dict(failed)


def failures(group: str) -> dict[str, str]:
    """The plugins of ``group`` that failed to load so far (name -> what and why)."""
    with _lock:
        return dict(_failed.get(group, {}))


def describe_failures(group: str) -> str:
    """A sentence for an unknown-name error: the plugins of ``group`` that could not be loaded."""
    failed = failures(group)
    if not failed:
        return ""
    return "; plugins that failed to load: " + "; ".join(f"{n} ({why})" for n, why in sorted(failed.items()))


def lookup(registry: Mapping[str, T], name: str, group: str, what: str) -> T:
    """``registry[name]``, loading ``group``'s plugins first when no built-in has the name; an
    unknown name is an :class:`~spaces.vocabulary.UnknownNameError` listing the registered ``what``
    (e.g. "proxies") and the plugins that failed to load."""
    if name not in registry:
        load(group)
    try:
        return registry[name]
    except KeyError:
        from .vocabulary import UnknownNameError

        singular = {"proxies": "proxy", "spaces": "space", "search strategies": "search strategy"}.get(what, what)
        raise UnknownNameError(f"unknown {singular} {name!r}; registered {what}: {sorted(registry)}"
                               + describe_failures(group)) from None


def registrar(registry: dict, what: str) -> Callable[[str], Callable[[T], T]]:
    """The ``register(name)`` decorator of a registry: it adds the decorated object under
    ``name`` and refuses a name already taken (``what`` names the kind in the message)."""
    def register(name: str) -> Callable[[T], T]:
        def deco(obj: T) -> T:
            if name in registry:
                raise ValueError(f"{what} {name!r} is already registered")
            registry[name] = obj
            return obj

        return deco

    return register


def reset() -> None:
    """Forget what was loaded (tests)."""
    with _lock:
        _loaded.clear()
        _failed.clear()
