"""Resource limits of a search (``constraints.*``) and the one rejection rule every strategy uses.

The released WRCor search (``search.py`` of kunjing96/ZSNAS-WRCor) keeps every candidate within
``--flops_limit`` (600M by default, its MobileNetV2 space) by rejection: a sampled architecture
over the limit is drawn anew, and a mutated child over it is mutated again *from the same
parent*, until one is within (``get_FLOPs() <= limit``).  :class:`Limits` states the limits
(FLOPs, parameters, and a latency limit ready for a space that can measure latency) and
:meth:`Limits.draw` is that rule, once, for every strategy:

* a limit is *within* when the space's count is at most the limit (``<=``, as the released code);
* a draw over any limit is *rejected*, counted under its kind (``sample``, ``mutate``, ``policy``)
  and drawn again by the same ``draw`` callable (so a mutation retries from the same parent);
* the redraws are bounded (``max_redraws`` rejections per candidate): when every draw is over,
  :class:`ConstraintError` names the limits that rejected them, the number of draws and the
  smallest count seen;
* a rejected draw is never returned, so it is never scored and costs no proxy time; a first draw
  within the limits costs no extra random numbers, so a limit that never binds changes nothing.

A limit needs the space's capability of the same name (:class:`spaces.base.ResourceSpace`:
``flops(arch)``, ``params(arch)``; :class:`spaces.base.LatencySpace`: ``latency(arch)``):
:meth:`Limits.problems` says which are missing, and the runner refuses the search before any work.

>>> import spaces
>>> print(Limits(flops_max=600e6).problems(spaces.get_space("nb201"))[0])  # doctest: +ELLIPSIS
space nb201 has no flops accounting; constraints.flops_max needs a space with flops(arch), ...
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

__all__ = ["DEFAULT_MAX_REDRAWS", "LIMIT_CAPABILITY", "REJECTION_KINDS", "ConstraintError", "Limits", "spaces_with"]

#: each limit and the space method it reads
LIMIT_CAPABILITY = {"flops_max": "flops", "params_max": "params", "latency_max": "latency"}
#: how a capability is named in the refusal of a space without it
_WHAT = {"flops": "flops accounting", "params": "parameter count", "latency": "latency measurement"}
#: the kinds of draw whose rejections are counted: a uniform sample (random search, evolution's
#: initial population, REINFORCE's warm-up), a mutation (evolution's children), a policy draw
#: (REINFORCE after its warm-up)
REJECTION_KINDS = ("sample", "mutate", "policy")
#: rejected draws allowed per candidate unless ``constraints.max_redraws`` says otherwise
DEFAULT_MAX_REDRAWS = 10_000


class ConstraintError(RuntimeError):
    """No draw within the limits in the allowed number of draws."""


def _limit_ok(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)
                             and math.isfinite(value) and value > 0)


def spaces_with(capability: str) -> list[str]:
    """The registered spaces whose class offers ``capability`` (e.g. ``"flops"``)."""
    import spaces

    out = []
    for name in spaces.list_spaces():
        try:
            factory = spaces.space_factory(name)
        except Exception:  # noqa: BLE001, S112 -- a plugin that does not load offers nothing
            continue
        if callable(getattr(factory, capability, None)):
            out.append(name)
    return out


@dataclass(frozen=True)
class Limits:
    """The resource limits of a search (each ``None``: no limit) and the rejection rule.

    ``flops_max``/``params_max``/``latency_max`` are positive finite numbers (in the space's own
    convention: :class:`spaces.base.ResourceSpace`); ``max_redraws`` is how many rejected draws
    one candidate may take before :meth:`draw` gives up (0: the first draw must be within).

    >>> Limits(flops_max=-1)
    Traceback (most recent call last):
    ...
    ValueError: constraints.flops_max=-1 is not allowed: a positive number or null (no limit)
    """

    flops_max: float | None = None
    params_max: float | None = None
    latency_max: float | None = None
    max_redraws: int = DEFAULT_MAX_REDRAWS

    def __post_init__(self) -> None:
        for key in LIMIT_CAPABILITY:
            value = getattr(self, key)
            if not _limit_ok(value):
                raise ValueError(f"constraints.{key}={value!r} is not allowed: a positive number or null (no limit)")
        r = self.max_redraws
        if isinstance(r, bool) or not isinstance(r, int) or r < 0:
            raise ValueError(f"constraints.max_redraws={r!r} is not allowed: an integer >= 0")

    @classmethod
    def from_cfg(cls, cfg: Any) -> Limits:
        """The limits of a ``constraints`` config section (a :class:`harness.config.ConstraintsConfig`,
        a mapping, or None: no limit)."""
        if cfg is None:
            return cls()
        get = cfg.get if isinstance(cfg, dict) else (lambda k, d=None: getattr(cfg, k, d))
        return cls(**{k: get(k) for k in LIMIT_CAPABILITY}, max_redraws=int(get("max_redraws", DEFAULT_MAX_REDRAWS)))

    @property
    def active(self) -> dict[str, float]:
        """The limits that are set: ``{"flops_max": 6e8, ...}``."""
        return {k: getattr(self, k) for k in LIMIT_CAPABILITY if getattr(self, k) is not None}

    def __bool__(self) -> bool:
        return bool(self.active)

    def as_dict(self) -> dict[str, Any]:
        """Every limit (None: no limit) and ``max_redraws``, for records."""
        return {**{k: getattr(self, k) for k in LIMIT_CAPABILITY}, "max_redraws": self.max_redraws}

    def problems(self, space: Any) -> list[str]:
        """Why ``space`` cannot honour these limits (one line per limit whose capability it lacks);
        empty when it can."""
        out = []
        for key in self.active:
            cap = LIMIT_CAPABILITY[key]
            if callable(getattr(space, cap, None)):
                continue
            others = spaces_with(cap)
            where = f"e.g. {', '.join(others)}" if others else "and no registered space has one yet"
            out.append(f"space {getattr(space, 'name', type(space).__name__)} has no {_WHAT[cap]}; "
                       f"constraints.{key} needs a space with {cap}(arch), {where}")
        return out

    def measure(self, space: Any, arch: Hashable) -> dict[str, float]:
        """The counts of ``arch`` the set limits read: ``{"flops": ..., ...}``."""
        out = {}
        for key in self.active:
            cap = LIMIT_CAPABILITY[key]
            value = float(getattr(space, cap)(arch))
            if not math.isfinite(value):
                raise ValueError(f"space {space.name}: {cap}({space.to_str(arch)}) = {value}, not a finite number")
            out[cap] = value
        return out

    def over(self, counts: dict[str, float]) -> list[str]:
        """The set limits that ``counts`` (from :meth:`measure`) exceed."""
        return [k for k, limit in self.active.items() if counts[LIMIT_CAPABILITY[k]] > limit]

    def draw(self, space: Any, make: Callable[[], Hashable], *, kind: str, rejected: dict[str, int],
             who: str = "search") -> tuple[Hashable, dict[str, float]]:
        """The first of ``make()``'s draws within the limits, and its counts: the released
        search's rejection rule.  Each rejected draw adds one to ``rejected[kind]``; after
        ``max_redraws`` rejections in a row a :class:`ConstraintError` says which limits
        rejected the draws and the smallest counts seen."""
        if not self:
            return make(), {}
        smallest: dict[str, float] = {}
        by_limit: dict[str, int] = {}
        for n in range(self.max_redraws + 1):
            arch = make()
            counts = self.measure(space, arch)
            over = self.over(counts)
            if not over:
                return arch, counts
            rejected[kind] = rejected.get(kind, 0) + 1
            for key in over:
                by_limit[key] = by_limit.get(key, 0) + 1
            for cap, value in counts.items():
                smallest[cap] = min(smallest.get(cap, math.inf), value)
        draws = self.max_redraws + 1
        what = {"sample": "sample", "mutate": "mutation of the same parent",
                "policy": "draw from the policy"}.get(kind, kind)
        limits = "; ".join(f"constraints.{k}={self.active[k]:g} rejected {c} (the smallest {LIMIT_CAPABILITY[k]} "
                           f"drawn: {smallest[LIMIT_CAPABILITY[k]]:g})" for k, c in by_limit.items())
        raise ConstraintError(f"{who}: no {what} within the limits of space {space.name} in {draws} draws "
                              f"(constraints.max_redraws={self.max_redraws}): {limits}; loosen the limit or "
                              "raise constraints.max_redraws")

