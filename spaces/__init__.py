"""Search spaces.  ``spaces.get_space(name)`` -> a :class:`spaces.base.Space`."""
from __future__ import annotations

import fnmatch
from typing import Any, Callable

from . import plugins
from .base import (Benchmark, DataFileError, InvalidArchitectureError, MissingDataFileError, ResponsePoint, Space,
                   UnknownNameError)

_SPACES: dict[str, Callable[..., Any]] = {}


#: the entry-point group a distribution declares its spaces in (see :mod:`spaces.plugins`)
PLUGIN_GROUP = plugins.GROUPS["spaces"]


def register_space(name: str) -> Callable:
    """Register a space factory (a class taking keyword-only constructor arguments) under ``name``;
    a duplicate name raises.  Its keyword arguments with defaults become the ``space.*`` settings
    of the command line (``harness run space=<name> space.<arg>=...``)."""

    def deco(factory: Callable) -> Callable:
        if name in _SPACES:
            raise ValueError(f"space {name!r} is already registered")
        _SPACES[name] = factory
        return factory

    return deco


def get_space(name: str, **kwargs: Any) -> Space:
    """The space registered as ``name`` (keyword arguments go to its constructor)."""
    return space_factory(name)(**kwargs)


def space_factory(name: str) -> Callable[..., Any]:
    """The factory (class) registered as ``name``; an installed plugin's when no built-in has it."""
    return plugins.lookup(_SPACES, name, PLUGIN_GROUP, "spaces")


def list_spaces(pattern: str = "*") -> list[str]:
    """Registered names matching ``pattern`` (installed plugins' included)."""
    plugins.load(PLUGIN_GROUP)
    return sorted(n for n in _SPACES if fnmatch.fnmatchcase(n, pattern))


from .darts import DartsGenotype, DartsSpace  # noqa: E402
from .nats import NATSSizeSpace, NATSTopologySpace, SizeArch  # noqa: E402
from .nb101 import NB101Arch, NB101Space  # noqa: E402
from .nb201 import NB201Arch, NB201Space  # noqa: E402

register_space("nb201")(NB201Space)
register_space("nb101")(NB101Space)
register_space("nats_tss")(NATSTopologySpace)
register_space("nats_sss")(NATSSizeSpace)
register_space("darts")(DartsSpace)

__all__ = ["get_space", "list_spaces", "register_space", "space_factory", "Space", "Benchmark", "ResponsePoint",
           "InvalidArchitectureError", "DataFileError", "MissingDataFileError", "UnknownNameError", "NB201Arch", "NB201Space",
           "NB101Arch", "NB101Space", "NATSTopologySpace", "NATSSizeSpace", "SizeArch",
           "DartsGenotype", "DartsSpace"]
