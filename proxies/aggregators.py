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

The rules:

* ``majority`` (the paper's votes; its arithmetic and the released code's conventions are
  documented in :mod:`proxies.vote`).  It ranks a population in two *orderings*, both reported
  by scoring jobs: the Copeland score (name suffix ``""``) and the released notebooks'
  comparator sort (suffix ``"@comparator"``).
* ``logrank``: the sum over components of ``log(rank / N)``, each component ranked ascending in
  its direction over the population (mid-ranks for ties, so the best architecture of a
  component scores ``log 1 = 0`` there): AZ-NAS's and VKDNW_agg's aggregation.
* ``ranksum``: the sum of those ranks (TE-NAS's).
* ``lexicographic``: the dense rank of the components' tuple: the first component decides, the
  next breaks its ties, ... (VKDNW_single = lexicographic(vkdnw_dim, vkdnw)).

The three rank rules have no pairwise form: they rank a population (every number they give
depends on the population; report N with it).  In each, a component that is NaN or ``-inf`` in
its direction ranks below every finite value (ties among them share the mid-rank): AZ-NAS turns
NaN into ``-inf``, VKDNW_agg puts a NaN jacob_cov at the minimum.

Any aggregation can also be written where a proxy or vote name is expected, as a *spec*
``rule(component, ...)`` -- ``logrank(wrcor, az_trainability, flops)``, ``ranksum(-jacob_cov,
synflow)`` (``-`` counts that component lower-is-better) -- registered on first use under its
canonical spelling (:func:`get_aggregator`), so a new aggregate needs no code.

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


def oriented_ranks(scores: np.ndarray, signs: np.ndarray) -> np.ndarray:
    """Each column's ascending mid-ranks (1..N) in its direction; NaN and ``-inf`` (after the sign)
    rank lowest, tied among themselves.

    >>> oriented_ranks(np.array([[1.0, 5.0], [np.nan, 4.0], [3.0, 4.0]]), np.array([1.0, -1.0]))
    array([[2. , 1. ],
           [1. , 2.5],
           [3. , 2.5]])
    """
    from scipy.stats import rankdata

    s = np.asarray(scores, dtype=float) * np.asarray(signs, dtype=float)
    s = np.where(np.isnan(s), -np.inf, s)
    return rankdata(s, axis=0, method="average") if len(s) else s


class _PopulationRule:
    """A rule that ranks a population only (no pairwise form); one ordering, suffix ``""``."""

    orderings = {"": ("rank", "")}
    tie_rules: tuple[str, ...] = ()

    def rank(self, scores: np.ndarray, signs: np.ndarray, ordering: str = "rank", *,
             rule: str | None = None) -> np.ndarray:
        if ordering != "rank":
            raise ValueError(f"unknown ordering {ordering!r} of rule {self.name!r}; valid: ['rank']")
        return self._aggregate(np.asarray(scores, dtype=float), np.asarray(signs, dtype=float))

    def prefers(self, a: ArrayLike, b: ArrayLike, signs: np.ndarray, *, rule: str = "absolute") -> int:
        raise ValueError(f"rule {self.name!r} ranks a population and has no pairwise form; in a search use "
                         "vote.rule=rank_sum (the sum of the components' ranks over the search's history)")


class LogRank(_PopulationRule):
    """Sum over components of log(rank / N) (AZ-NAS, VKDNW_agg)."""

    name = "logrank"

    def _aggregate(self, scores: np.ndarray, signs: np.ndarray) -> np.ndarray:
        return np.log(oriented_ranks(scores, signs) / max(len(scores), 1)).sum(axis=1)


class RankSum(_PopulationRule):
    """Sum over components of the rank (TE-NAS)."""

    name = "ranksum"

    def _aggregate(self, scores: np.ndarray, signs: np.ndarray) -> np.ndarray:
        return oriented_ranks(scores, signs).sum(axis=1)


class Lexicographic(_PopulationRule):
    """The dense rank (1 = worst) of the components' tuple, the first component most significant."""

    name = "lexicographic"

    def _aggregate(self, scores: np.ndarray, signs: np.ndarray) -> np.ndarray:
        ranks = oriented_ranks(scores, signs)
        _, dense = np.unique(ranks, axis=0, return_inverse=True)  # rows sorted lexicographically
        return dense.reshape(-1).astype(float) + 1.0


_RULES: dict[str, Callable[[], Any]] = {}


#: ``@register_rule(name)``: an aggregation rule class (``rank``, ``prefers``, ``orderings``)
register_rule = plugins.registrar(_RULES, "aggregation rule")


register_rule("majority")(Majority)
register_rule("logrank")(LogRank)
register_rule("ranksum")(RankSum)
register_rule("lexicographic")(Lexicographic)


@dataclass(frozen=True)
class Aggregator:
    """``rule`` applied to ``components`` (proxy names, or -- for a rank rule -- other aggregators,
    e.g. VKDNW_agg's vkdnw_single); ``signs`` (+1/-1 per component) override the components'
    registered directions (an aggregator component is higher-is-better)."""

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

    @property
    def leaves(self) -> tuple[str, ...]:
        """The proxies scored per network: the components, an aggregator component's own leaves
        in its place (each proxy once, in order)."""
        out: list[str] = []
        for c in self.components:
            out += get_aggregator(c).leaves if c in _AGGREGATORS else (c,)
        return tuple(dict.fromkeys(out))

    def directions(self) -> np.ndarray:
        """+1 (higher is better) or -1 per component: ``signs``, or the registry's directions (an
        aggregator component: +1)."""
        if self.signs is not None:
            return np.asarray(self.signs, dtype=float)
        return np.array([1.0 if c in _AGGREGATORS or get_proxy(c).higher_is_better else -1.0
                         for c in self.components])

    def scores(self, component_scores: Mapping[str, ArrayLike], ordering: str | None = None, *,
               rule: str | None = None) -> np.ndarray:
        """The aggregate score of every architecture of a population (higher is better), from each
        proxy's scores (:attr:`leaves`) over the same architectures in the same order (extra keys
        ignored).  ``ordering``: one of :attr:`orderings` (default: the first)."""
        missing = [c for c in self.leaves if c not in component_scores]
        if missing:
            raise ValueError(f"aggregator {self.name!r} needs the scores of {list(self.leaves)}; missing {missing}")
        ordering = ordering or next(iter(self.orderings.values()))[0]
        cols = [get_aggregator(c).scores(component_scores) if c in _AGGREGATORS
                else np.asarray(component_scores[c], dtype=float) for c in self.components]
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
    nested = [c for c in components if c in _AGGREGATORS]
    if nested and rule == "majority":
        raise ValueError(f"aggregator {name!r}: a majority compares proxies pair by pair; {nested} rank a "
                         "population (use a rank rule: logrank, ranksum, lexicographic)")
    agg = Aggregator(name, tuple(components), rule, None if signs is None else tuple(float(s) for s in signs),
                     description)
    _AGGREGATORS[name] = agg
    return agg


def _split_top(text: str) -> list[str]:
    """``text`` split at the commas outside parentheses (a component may be a proxy spec)."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth < 0:
            raise ValueError("unbalanced parentheses")
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth:
        raise ValueError("unbalanced parentheses")
    return [p.strip() for p in parts + [text[start:]]]


def _spec(name: str) -> tuple[str, list[str]] | None:
    """(rule, component texts) when ``name`` is written ``rule(...)`` with a registered rule."""
    head, sep, rest = name.strip().partition("(")
    if not sep or head.strip() not in _RULES or not rest.rstrip().endswith(")"):
        return None
    return head.strip(), _split_top(rest.rstrip()[:-1])


def _from_spec(name: str) -> Aggregator | None:
    """The aggregator a spec ``rule(component, -component, ...)`` describes, registered under its
    canonical spelling (no spaces, canonical proxy names) on first use; None when ``name`` is not
    such a spec.  A component is a proxy (a spec ``name(key=value)`` too), a registered aggregator
    or another aggregate spec (``logrank(lexicographic(vkdnw_dim,vkdnw),flops)``); a rank rule
    takes nested aggregates, a majority refuses them."""
    parsed = _spec(name)
    if parsed is None:
        return None
    rule, parts = parsed
    if not parts or any(not p or p == "-" for p in parts):
        raise ValueError(f"aggregate {name!r}: {rule}(...) needs one or more components, e.g. "
                         f"{rule}(wrcor, synflow, flops); '-name' counts a component lower-is-better")
    comps, signs = [], []
    for p in parts:
        flip = p.startswith("-")
        text = p[1:].strip() if flip else p
        if text in _AGGREGATORS or _spec(text) is not None:  # a nested aggregate: higher is better
            comps.append(get_aggregator(text).name)
            signs.append(-1.0 if flip else 1.0)
            continue
        info = get_proxy(text)  # unknown name -> the registered proxies
        comps.append(info.name)
        signs.append((-1.0 if flip else 1.0) * (1.0 if info.higher_is_better else -1.0))
    if len(set(comps)) != len(comps):
        raise ValueError(f"aggregate {name!r}: a component is named twice")
    canonical = f"{rule}({','.join(('-' if f else '') + c for c, f in zip(comps, (p.startswith('-') for p in parts)))})"
    return _AGGREGATORS.get(canonical) or register_aggregator(
        canonical, comps, rule=rule, signs=signs, description=f"{rule} over {', '.join(comps)} (an aggregate spec)")


def is_aggregator(name: str) -> bool:
    """Whether ``name`` is a registered aggregator or an aggregate spec ``rule(...)`` (a spec with
    a bad component raises, naming it)."""
    return name in _AGGREGATORS or _from_spec(name) is not None


def get_aggregator(name: str) -> Aggregator:
    """The aggregator registered as ``name``, or the one an aggregate spec ``rule(a, b, ...)``
    describes; an unknown name lists the registered ones."""
    if name in _AGGREGATORS:
        return _AGGREGATORS[name]
    agg = _from_spec(name)
    if agg is None:
        raise UnknownNameError(f"unknown aggregator {name!r}; registered aggregators: {sorted(_AGGREGATORS)}; "
                               f"or write one as rule(component, ...) with a rule of {sorted(_RULES)}")
    return agg


def list_rules() -> list[str]:
    """The registered aggregation rules."""
    return sorted(_RULES)


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
#: the peers' rank aggregates (../shared/specs/peer_proxies.md; each ranks a population: report N)
PEER_AGGREGATES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "az_nas": ("logrank", ("az_expressivity", "az_progressivity", "az_trainability", "flops"),
               "AZ-NAS (Lee & Ham, CVPR 2024): log-rank sum of expressivity, progressivity, trainability, FLOPs"),
    "te_nas": ("ranksum", ("ntk_cond", "linear_regions"),
               "TE-NAS (Chen et al., ICLR 2021) as AZ-NAS ports it: rank sum of -cond(NTK) and linear regions"),
    "vkdnw_single": ("lexicographic", ("vkdnw_dim", "vkdnw"),
                     "VKDNW_single (Tybl & Neumann, CVPR 2025): the number of parameter tensors, ties broken by VKDNW"),
    "vkdnw_agg": ("logrank", ("vkdnw_single", "az_expressivity", "az_trainability", "jacob_cov", "flops"),
                  "VKDNW_agg (CVPR 2025): log-rank sum of VKDNW_single, AZ expressivity and trainability, "
                  "jacob_cov, FLOPs"),
}
for _name, (_rule, _comps, _what) in PEER_AGGREGATES.items():
    register_aggregator(_name, _comps, rule=_rule, description=_what)
