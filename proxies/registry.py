"""The proxy registry: names -> proxy factories with their metadata.

A proxy is asked for by its registered name, or by a *spec* that overrides its parameters —
``wrcor(weighting=linear, power=2)`` — which is how ablations are run without registering
copies (the spec string is the proxy's name in stores, tables and MLflow).

>>> "wrcor" in list_proxies("*cor*")
True
"""
from __future__ import annotations

import dataclasses
import fnmatch
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from spaces import plugins
from spaces.vocabulary import UnknownNameError  # noqa: F401  (re-exported: what get_proxy raises for an unknown name)

#: the entry-point group a distribution declares its proxies in (see :mod:`spaces.plugins`)
PLUGIN_GROUP = plugins.GROUPS["proxies"]


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
    #: a private ``pass_kind`` that proxies of that kind with the same ``bn`` and parameters share
    #: (one session, e.g. AZ-NAS's three proxies from one set of features)
    shares_private: bool = False

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


_SPEC = re.compile(r"^\s*([A-Za-z_][\w.]*)\s*\((.*)\)\s*$")


def _literal(text: str) -> Any:
    """A spec value: int, float, true/false, or a bare string (``none`` stays the string: it is
    a valid value, e.g. ``weighting=none``)."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text.strip("'\"")


def parse_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"wrcor(weighting=linear, power=2)"`` -> ``("wrcor", {"weighting": "linear", "power": 2})``.

    >>> parse_spec("wrcor(weighting=linear, power=0.5)")
    ('wrcor', {'weighting': 'linear', 'power': 0.5})
    >>> parse_spec("wrcor(weighting=none, responses=act)")
    ('wrcor', {'weighting': 'none', 'responses': 'act'})
    >>> parse_spec("synflow")
    ('synflow', {})
    """
    m = _SPEC.match(spec)
    if m is None:
        if "(" in spec or ")" in spec:
            raise ValueError(f"malformed proxy spec {spec!r}; expected name(key=value, ...)")
        return spec, {}
    base, body = m.group(1), m.group(2).strip()
    params: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in body.split(","))):
        key, eq, value = part.partition("=")
        if not eq or not key.strip().isidentifier():
            raise ValueError(f"malformed proxy spec {spec!r}: {part!r} is not key=value")
        params[key.strip()] = _literal(value.strip())
    return base, params


def _type_name(value: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(type(value),
                                                                                            type(value).__name__)


def check_param(proxy: str, key: str, value: Any, default: Any) -> None:
    """A spec's value must have its parameter's declared type (the type of its registered
    default; an integer is a number; a parameter whose default is None takes anything)."""
    if default is None:
        return
    expected = type(default)
    ok = (isinstance(value, bool) if expected is bool
          else isinstance(value, (int, float)) and not isinstance(value, bool) if expected is float
          else isinstance(value, expected) and not (expected is int and isinstance(value, bool)))
    if not ok:
        raise ValueError(f"proxy {proxy!r}: parameter {key}={value} is not {_type_name(default)} "
                         f"(its default is {key}={default})")


def get_proxy(name: str) -> ProxyInfo:
    """The registered proxy ``name``, or the proxy a spec ``base(key=value, ...)`` describes.

    >>> get_proxy("wrcor(power=abc)")
    Traceback (most recent call last):
    ...
    ValueError: proxy 'wrcor': parameter power=abc is not a number (its default is power=1.0)
    """
    base, overrides = parse_spec(name)
    info = plugins.lookup(_REGISTRY, base, PLUGIN_GROUP, "proxies")
    if not overrides:
        return info
    unknown = sorted(set(overrides) - set(info.params))
    if unknown:
        raise ValueError(f"proxy {base!r} has no parameter(s) {unknown}; its parameters: {sorted(info.params)}")
    for key, value in overrides.items():
        check_param(base, key, value, info.params[key])
    spec = f"{base}(" + ", ".join(f"{k}={overrides[k]}" for k in sorted(overrides)) + ")"
    params = {**info.params, **overrides}
    try:
        info.factory(**params)  # an invalid value raises here, naming the valid ones
    except Exception as err:
        raise ValueError(f"proxy spec {name!r}: {err}") from err
    return dataclasses.replace(info, name=spec, params=params)


def list_proxies(pattern: str = "*") -> list[str]:
    """Registered names matching ``pattern`` (installed plugins' included).  Rank aggregations
    (the votes) are not proxies: see :func:`proxies.aggregators.list_aggregators`."""
    plugins.load(PLUGIN_GROUP)
    return sorted(n for n in _REGISTRY if fnmatch.fnmatchcase(n, pattern))
