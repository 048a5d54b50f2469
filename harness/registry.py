"""The registry of search strategies, by name.

The built-in strategies are registered by their place (``module:Class``) and imported when first
asked for, so the configuration (which builds a strategy's settings from its constructor) reads
the registry without importing the search package: the search job uses the configuration, not
the other way round.  Add a strategy with :func:`register_strategy` or an installed plugin's
entry point in the group ``zsnas_bench.strategies`` (see :mod:`spaces.plugins`).
"""
from __future__ import annotations

import importlib
from typing import Any, Callable

from spaces import plugins

#: name -> strategy class, or the ``module:Class`` of a built-in one (imported on first use)
STRATEGIES: dict[str, Any] = {
    "random": "harness.search.strategies:RandomSearch",
    "evolution": "harness.search.strategies:RegularizedEvolution",
    "reinforce": "harness.search.strategies:Reinforce",
}
PLUGIN_GROUP = plugins.GROUPS["strategies"]


#: ``@register_strategy(name)``: a :class:`harness.search.Strategy` subclass under ``name`` (a
#: duplicate name raises).  Its keyword arguments with defaults become the ``search.*`` settings
#: of ``harness search``.
register_strategy: Callable[[str], Callable[[type], type]] = plugins.registrar(STRATEGIES, "search strategy")


def strategy_class(name: str) -> type:
    """The strategy registered as ``name``; an installed plugin's when no built-in has it."""
    entry = plugins.lookup(STRATEGIES, name, PLUGIN_GROUP, "search strategies")
    if isinstance(entry, str):
        module, _, attr = entry.partition(":")
        entry = STRATEGIES[name] = getattr(importlib.import_module(module), attr)
    return entry


def list_strategies() -> list[str]:
    """Registered strategy names (installed plugins' included)."""
    plugins.load(PLUGIN_GROUP)
    return sorted(STRATEGIES)
