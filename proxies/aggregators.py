"""Rank aggregation: how several proxies' scores become one ranking of a population, or one
winner of a pair.

An *aggregator* has no value for one network: it takes its components' scores over a population
(input) and gives a ranking of that population, or decides between two architectures (output).
Scoring tables use :meth:`Aggregator.scores`; a search's objective uses :meth:`Aggregator.prefers`
(see :class:`harness.search.strategies.Objective`).  Aggregators have their own registry, apart
from the proxies' (a proxy is a number per network; an aggregator is not):

    register_aggregator(name, components, rule=...)   get_aggregator(name)   list_aggregators()

A *rule* says how to aggregate; an aggregator is a rule applied to named components with their
directions (each component's registered ``higher_is_better`` unless ``signs`` are given).  Rules
are registered too (:func:`register_rule`), so a new aggregation (a log-rank sum, a lexicographic
order, ...) is a rule class, not a special case in the harness.

The rule here is ``majority`` (the paper's votes; its arithmetic and the released code's
conventions are documented in :mod:`proxies.vote`).  It ranks a population in two *orderings*,
both reported by scoring jobs: the Copeland score (name suffix ``""``) and the released
notebooks' comparator sort (suffix ``"@comparator"``).

The paper's votes (WRCor, Jing et al., arXiv 2507.08841)::

    vote_sjw = majority of (synflow, jacob_cov, wrcor)
    vote_spw = majority of (synflow, l2_norm,   wrcor)
    vote_sjw_notebook = vote_sjw with jacob_cov counted lower-is-better (the released NB-101 notebook)
    vote_sjw_official = majority of (synflow, jacob_cov, wrcor_official): the released search.py's
                        +act_grad_cor_weighted +synflow +jacob_cor (WRCor as released, quirks included)
"""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, Union

import numpy as np

from spaces import plugins
from spaces.vocabulary import UnknownNameError

from .registry import get_proxy
from .vote import RULES as MAJORITY_RULES
from .vote import comparator_rank_scores, copeland_scores, majority_prefers

__all__ = ["Aggregator", "Majority", "register_aggregator", "get_aggregator", "list_aggregators", "is_aggregator",
           "register_rule", "VOTES"]

ArrayLike = Union[Sequence[float], np.ndarray]


class Majority:
    """Majority of pairwise comparisons (:mod:`proxies.vote`).  ``ties``: ``relative`` (the side
    more components prefer wins) or ``absolute`` (a side needs more than half of all components,
    the released code's)."""

    #: name suffix -> (ordering, its default tie rule): every ordering a scoring table reports
    orderings = {"": ("copeland", "relative"), "@comparator": ("comparator", "absolute")}
    tie_rules = MAJORITY_RULES

    def rank(self, scores: np.ndarray, signs: np.ndarray, ordering: str = "copeland", *,
             rule: str | None = None) -> np.ndarray:
        """Every architecture's aggregate score (higher is better) from the (n, k) component scores."""
        if ordering == "copeland":
            return copeland_scores(scores, signs, rule=rule or "relative")
        if ordering == "comparator":
            return comparator_rank_scores(scores, signs, rule=rule or "absolute")
        raise ValueError(f"unknown ordering {ordering!r} of the majority rule; valid: ['copeland', 'comparator']")

    def prefers(self, a: ArrayLike, b: ArrayLike, signs: np.ndarray, *, rule: str = "absolute") -> int:
        """+1 when ``a`` wins the pair, -1 when ``b`` does, 0 on a tie."""
        return majority_prefers(a, b, signs, rule=rule)


_RULES: dict[str, Callable[[], Any]] = {}


#: ``@register_rule(name)``: an aggregation rule class (``rank``, ``prefers``, ``orderings``)
register_rule = plugins.registrar(_RULES, "aggregation rule")


register_rule("majority")(Majority)


@dataclass(frozen=True)
class Aggregator:
    """``rule`` applied to ``components`` (proxy names); ``signs`` (+1/-1 per component) override
    the components' registered directions."""

    name: str
    components: tuple[str, ...]
    rule: str = "majority"
    signs: tuple[float, ...] | None = None
    description: str = ""

    @property
    def method(self) -> Any:
        return _RULES[self.rule]()

    @property
    def orderings(self) -> dict[str, tuple[str, str]]:
        """Name suffix -> (ordering, default tie rule): the rankings a scoring table reports."""
        return dict(self.method.orderings)

    def directions(self) -> np.ndarray:
        """+1 (higher is better) or -1 per component: ``signs``, or the registry's directions."""
        if self.signs is not None:
            return np.asarray(self.signs, dtype=float)
        return np.array([1.0 if get_proxy(c).higher_is_better else -1.0 for c in self.components])

    def scores(self, component_scores: Mapping[str, ArrayLike], ordering: str = "copeland", *,
               rule: str | None = None) -> np.ndarray:
        """The aggregate score of every architecture of a population (higher is better), from each
        component's scores over the same architectures in the same order (extra keys ignored)."""
        missing = [c for c in self.components if c not in component_scores]
        if missing:
            raise ValueError(f"aggregator {self.name!r} needs the scores of {list(self.components)}; missing {missing}")
        cols = [np.asarray(component_scores[c], dtype=float) for c in self.components]
        if any(col.ndim != 1 or col.shape != cols[0].shape for col in cols):
            raise ValueError(f"aggregator {self.name!r}: component scores must be 1-D and of one length; "
                             f"got shapes {[col.shape for col in cols]}")
        return self.method.rank(np.stack(cols, axis=1), self.directions(), ordering, rule=rule)

    def prefers(self, a: ArrayLike, b: ArrayLike, *, rule: str = "absolute") -> int:
        """The pairwise winner: +1 when ``a`` (its component scores) wins, -1 when ``b`` does, 0 on a tie."""
        return self.method.prefers(a, b, self.directions(), rule=rule)


_AGGREGATORS: dict[str, Aggregator] = {}


def register_aggregator(name: str, components: Sequence[str], *, rule: str = "majority",
                        signs: Sequence[float] | None = None, description: str = "") -> Aggregator:
    """Register ``rule`` over ``components`` as ``name`` (a duplicate name, an unknown rule, or a
    name a proxy already has raises)."""
    if name in _AGGREGATORS:
        raise ValueError(f"aggregator {name!r} is already registered")
    if rule not in _RULES:
        raise ValueError(f"unknown aggregation rule {rule!r}; registered rules: {sorted(_RULES)}")
    if not components:
        raise ValueError(f"aggregator {name!r} needs components")
    if signs is not None and len(signs) != len(components):
        raise ValueError(f"aggregator {name!r}: one sign per component, got {list(signs)} for {list(components)}")
    agg = Aggregator(name, tuple(components), rule, None if signs is None else tuple(float(s) for s in signs),
                     description)
    _AGGREGATORS[name] = agg
    return agg


def is_aggregator(name: str) -> bool:
    return name in _AGGREGATORS


def get_aggregator(name: str) -> Aggregator:
    """The aggregator registered as ``name``; an unknown name lists the registered ones."""
    try:
        return _AGGREGATORS[name]
    except KeyError:
        raise UnknownNameError(f"unknown aggregator {name!r}; registered aggregators: {sorted(_AGGREGATORS)}") from None


def list_aggregators(pattern: str = "*") -> list[str]:
    return sorted(n for n in _AGGREGATORS if fnmatch.fnmatchcase(n, pattern))


#: the paper's votes: name -> components
VOTES: dict[str, tuple[str, ...]] = {
    "vote_sjw": ("synflow", "jacob_cov", "wrcor"),
    "vote_spw": ("synflow", "l2_norm", "wrcor"),
}
for _name, _comps in VOTES.items():
    register_aggregator(_name, _comps, description=f"majority vote of ({', '.join(_comps)}); ranks a set of "
                                                   "architectures (Copeland score; @comparator: the released sort)")
#: the released NB-101 notebook's SJW vote counts jacob_cov lower-is-better (its signs [+1, -1, +1]);
#: the harness's vote_sjw uses every component's registered direction (all higher-is-better)
register_aggregator("vote_sjw_notebook", VOTES["vote_sjw"], signs=(1.0, -1.0, 1.0),
                    description="vote_sjw as the released NB-101 notebook computes it: jacob_cov counted "
                                "lower-is-better (signs +1, -1, +1); for reproducing its NB-101 row")
#: the released search.py's SJW (``--measures +act_grad_cor_weighted +synflow +jacob_cor``): WRCor as
#: released (``wrcor_official``: on the mobilenetv2 space only the nn.ReLU inside each SE is hooked)
register_aggregator("vote_sjw_official", ("synflow", "jacob_cov", "wrcor_official"),
                    description="vote_sjw with WRCor as released (wrcor_official): the released search.py's "
                                "+act_grad_cor_weighted +synflow +jacob_cor")
