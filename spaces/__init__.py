"""Search spaces.  ``spaces.get_space(name)`` -> a :class:`spaces.base.Space`.

Importing this package loads no space: the built-in spaces are registered by the place of their
class (``module:Class``) and imported on first use, so ``import proxies`` (which needs only
:mod:`spaces.vocabulary` and :mod:`spaces.plugins`) stays free of networks and benchmark tables.
"""
from __future__ import annotations

import fnmatch
import importlib
from typing import TYPE_CHECKING, Any, Callable

from . import plugins
from .vocabulary import DataFileError, InvalidArchitectureError, MissingDataFileError, ResponsePoint, UnknownNameError

if TYPE_CHECKING:  # pragma: no cover
    from .base import Space

#: name -> factory, or the ``module:attribute`` of a built-in one (imported when first asked for)
_SPACES: dict[str, Callable[..., Any] | str] = {
    "nb201": "spaces.nb201:NB201Space",
    "nb101": "spaces.nb101:NB101Space",
    "nats_tss": "spaces.nats:NATSTopologySpace",
    "nats_sss": "spaces.nats:NATSSizeSpace",
    "darts": "spaces.darts:DartsSpace",
    "mobilenetv2": "spaces.mobilenetv2:MobileNetV2Space",
}


#: the entry-point group a distribution declares its spaces in (see :mod:`spaces.plugins`)
PLUGIN_GROUP = plugins.GROUPS["spaces"]


#: ``@register_space(name)``: a space factory (a class taking keyword-only constructor arguments)
#: under ``name``; a duplicate name raises.  Its keyword arguments with defaults become the
#: ``space.*`` settings of the command line (``harness run space=<name> space.<arg>=...``).
register_space: Callable[[str], Callable] = plugins.registrar(_SPACES, "space")


def get_space(name: str, **kwargs: Any) -> "Space":
    """The space registered as ``name`` (keyword arguments go to its constructor)."""
    return space_factory(name)(**kwargs)


def space_factory(name: str) -> Callable[..., Any]:
    """The factory (class) registered as ``name``; an installed plugin's when no built-in has it."""
    factory = plugins.lookup(_SPACES, name, PLUGIN_GROUP, "spaces")
    if isinstance(factory, str):
        factory = _SPACES[name] = _resolve(factory)
    return factory


def _resolve(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def list_spaces(pattern: str = "*") -> list[str]:
    """Registered names matching ``pattern`` (installed plugins' included)."""
    plugins.load(PLUGIN_GROUP)
    return sorted(n for n in _SPACES if fnmatch.fnmatchcase(n, pattern))


#: the classes this package exports, imported when first used (``spaces.NB201Arch`` ...)
_LAZY = {"Space": "spaces.base:Space", "Benchmark": "spaces.base:Benchmark",
         "NB201Arch": "spaces.nb201:NB201Arch", "NB201Space": "spaces.nb201:NB201Space",
         "NB101Arch": "spaces.nb101:NB101Arch", "NB101Space": "spaces.nb101:NB101Space",
         "NATSTopologySpace": "spaces.nats:NATSTopologySpace", "NATSSizeSpace": "spaces.nats:NATSSizeSpace",
         "SizeArch": "spaces.nats:SizeArch", "DartsGenotype": "spaces.darts:DartsGenotype",
         "DartsSpace": "spaces.darts:DartsSpace"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = _resolve(_LAZY[name])
        globals()[name] = value
        return value
    raise AttributeError(f"module 'spaces' has no attribute {name!r}")


__all__ = ["get_space", "list_spaces", "register_space", "space_factory", "Space", "Benchmark", "ResponsePoint",
           "InvalidArchitectureError", "DataFileError", "MissingDataFileError", "UnknownNameError", "NB201Arch", "NB201Space",
           "NB101Arch", "NB101Space", "NATSTopologySpace", "NATSSizeSpace", "SizeArch",
           "DartsGenotype", "DartsSpace"]
