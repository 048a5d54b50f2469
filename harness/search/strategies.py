"""Search strategies as ask/tell objects, and the objective that compares two evaluations.

Every strategy works on any space through the space interface (``sample``, ``mutate``, and for
REINFORCE ``choices``/``from_choices``), owns its random generator (``np.random.default_rng(seed)``,
no global RNG), and never sees ground truth: it is told an :class:`Evaluation` (the objective's
component scores) and decides with the :class:`Objective`.  The runner (:mod:`harness.search.run`)
owns the loop, the scoring through the durable store, the budget and the cost.

>>> import spaces
>>> space = spaces.get_space("nb201")
>>> obj = Objective("params", ("params",), (1.0,))
>>> s = RandomSearch(space, obj, seed=0)
>>> for _ in range(3):
...     arch = s.ask()
...     s.tell(arch, Evaluation((float(len(space.to_str(arch))),)))
>>> s.best()[1].values
(95.0,)

Common random numbers: every strategy seeded with ``s`` starts with the same uniform samples
(random search's first 64 samples are regularised evolution's initial population and, with a
warm-up of 100, REINFORCE's warm-up), so strategies are compared on the same draws and the
score store serves the shared architectures once.

Batches: ``ask(n)`` proposes up to ``n`` architectures at once (a list, in proposal order) so the
runner can score them together; each is then told in that order, and the next ask waits for the
last tell.  ``ask()`` is ``ask(1)[0]``.  What a batch means per strategy:

* random search: the same draws in the same order, whatever the batch size (identical results);
* regularised evolution: the batch's children come from tournaments on the same population (it
  ages as each child is told, in order); the first ``population`` asks stay uniform samples;
* REINFORCE: the batch is drawn from the same policy; each tell updates the baseline and takes
  one Adam step (the gradient of log pi at the policy of that moment, for the choices the
  architecture was drawn with), in order; the first ``warmup`` asks stay uniform samples.

Resource limits (:mod:`harness.search.constraints`, ``constraints.*``): a strategy given
:class:`~harness.search.constraints.Limits` (``make_strategy(..., limits=...)`` or
:meth:`Strategy.constrain`) proposes only architectures within them.  Every strategy draws
through the same three methods, which apply the released search's rejection rule in one place
(:meth:`Limits.draw <harness.search.constraints.Limits.draw>`): :meth:`Strategy._sample` (a uniform
sample over a limit is drawn anew), :meth:`Strategy._mutate` (a child over a limit is mutated
again from the same parent) and :meth:`Strategy._within` (any other draw, e.g. REINFORCE's
policy).  Rejected draws are counted in :attr:`Strategy.rejected` per kind and never proposed,
so never scored; a first draw within the limits takes no extra random numbers.

A batch never straddles the initial samples (``ask(n)`` returns only the rest of them, so every
child or policy draw sees the complete population or normalisation), the budget counts each
proposal, and a batch of 1 is the one-at-a-time algorithm exactly.  The same seed and the same
batch size give the same results; for evolution and REINFORCE another batch size is another
(equally reproducible) search.

>>> batch = RandomSearch(space, obj, seed=0).ask(4)        # four proposals at once ...
>>> one, singles = RandomSearch(space, obj, seed=0), []
>>> for _ in range(4):
...     singles.append(one.ask())
...     one.tell(singles[-1], Evaluation((0.0,)))
>>> batch == singles                                        # ... are four asks one at a time
True
"""
from __future__ import annotations

import collections
import math
from dataclasses import dataclass
from typing import Any, Hashable, Sequence, overload

import numpy as np

from proxies.vote import majority_prefers
from proxies.vote import DEFAULT_RULE, DEFAULT_TIES, TIES
from proxies.vote import SEARCH_RULES as RULES

from ..registry import STRATEGIES, list_strategies, register_strategy, strategy_class  # noqa: F401  (the API)
from .constraints import REJECTION_KINDS, Limits

__all__ = ["Evaluation", "Objective", "RankSums", "Strategy", "Limits", "RandomSearch", "RegularizedEvolution", "Reinforce",
           "STRATEGIES", "register_strategy", "strategy_class", "list_strategies", "make_strategy"]



@dataclass(frozen=True)
class Evaluation:
    """The objective's component scores of one architecture, in the objective's component order
    (raw values: the sign is the objective's business).  ``failed`` when any component is not a
    finite number (NaN, inf, or a failed computation recorded as NaN)."""

    values: tuple[float, ...]

    @property
    def failed(self) -> bool:
        return not all(math.isfinite(v) for v in self.values)


@dataclass(frozen=True)
class Objective:
    """One proxy (one component) or a vote (several), with each component's direction.

    ``prefers(candidate, incumbent)`` decides whether the candidate takes the incumbent's place:

    * a failed evaluation never displaces a complete one, and a complete one always displaces a
      failed one (two failed: the tie rule);
    * one component: strictly better in its direction wins;
    * several: the majority of pairwise comparisons (:func:`proxies.vote.majority_prefers`,
      ``rule`` ``absolute`` = the released code's: a side needs more than half of all components);
    * a tie (equal scores, or no majority) keeps the incumbent when ``ties="incumbent"`` (this
      harness's default) or goes to the candidate when ``ties="candidate"`` (what the released
      search's ``max([candidate, incumbent], key=cmp)`` does);
    * a tournament's parent (:meth:`champion`) is displaced only by a win: a tie keeps the
      earlier member under either ``ties`` (the released ``max(samples, key=cmp)``).

    ``rule="rank_sum"`` replaces the pairwise majority with a transitive comparison: each
    architecture's score is the sum over components of its mid-rank among everything the search
    was told (:class:`RankSums`, which the strategy owns and passes as ``ranks``), and the higher
    sum wins.  At any moment that is a total preorder, so no Condorcet cycle can make the
    incumbent or a tournament depend on the order of comparison (a majority can: a beats b,
    b beats c, c beats a).

    >>> vote = Objective("v", ("a", "b", "c"), (1.0, 1.0, 1.0))
    >>> vote.prefers(Evaluation((2, 2, 0)), Evaluation((1, 1, 5)))   # 2 of 3 prefer the candidate
    True
    >>> vote.prefers(Evaluation((2, 1, 0)), Evaluation((1, 1, 5)))   # 1 each, 1 abstains: a tie
    False
    >>> Objective("v", ("a", "b", "c"), (1, 1, 1), ties="candidate").prefers(Evaluation((2, 1, 0)), Evaluation((1, 1, 5)))
    True
    """

    name: str
    components: tuple[str, ...]
    signs: tuple[float, ...]
    rule: str = DEFAULT_RULE
    ties: str = DEFAULT_TIES

    def __post_init__(self) -> None:
        if len(self.components) != len(self.signs) or not self.components:
            raise ValueError(f"objective {self.name!r}: need one sign per component, got {self.components} "
                             f"and {self.signs}")
        if self.ties not in TIES:
            raise ValueError(f"unknown tie rule {self.ties!r}; valid: {list(TIES)}")
        if self.rule not in RULES:
            raise ValueError(f"unknown majority rule {self.rule!r}; valid: {list(RULES)}")

    @property
    def ranked(self) -> bool:
        """Whether comparisons need the search's history (``rule="rank_sum"``)."""
        return self.rule == "rank_sum"

    def new_ranks(self) -> RankSums | None:
        """The history a strategy keeps for this objective: a :class:`RankSums` for ``rank_sum``,
        None for a majority (which compares two evaluations on their own)."""
        return RankSums(self.signs) if self.ranked else None

    def _decide(self, a: Evaluation, b: Evaluation, ranks: RankSums | None = None) -> int:
        """+1 when ``a`` beats ``b``, -1 when ``b`` beats ``a``, 0 for a tie (failures first)."""
        if a.failed != b.failed:
            return 1 if b.failed else -1
        if a.failed:
            return 0
        if self.ranked:
            if ranks is None:
                raise ValueError(f"objective {self.name!r}: rule rank_sum compares within a search's history; "
                                 "pass ranks= (Objective.new_ranks(), told every evaluation)")
            sa, sb = ranks.score(a), ranks.score(b)
            return (sa > sb) - (sb > sa)
        return majority_prefers(a.values, b.values, self.signs, rule=self.rule)

    def beats(self, a: Evaluation, b: Evaluation, ranks: RankSums | None = None) -> bool:
        """Whether ``a`` wins outright over ``b`` (a tie is not a win, whatever :attr:`ties` says)."""
        return self._decide(a, b, ranks) > 0

    def prefers(self, candidate: Evaluation, incumbent: Evaluation, ranks: RankSums | None = None) -> bool:
        decision = self._decide(candidate, incumbent, ranks)
        return decision > 0 or (decision == 0 and self.ties == "candidate")

    def signed(self, ev: Evaluation) -> np.ndarray:
        """The component values with the sign applied (higher is better for every entry)."""
        return np.asarray(ev.values, dtype=float) * np.asarray(self.signs, dtype=float)

    def champion(self, items: Sequence[tuple[Any, Evaluation]],
                 ranks: RankSums | None = None) -> tuple[Any, Evaluation]:
        """A running champion over ``items`` in order: the first, displaced by each later item that
        :meth:`beats` it, so a tie keeps the earlier item whatever :attr:`ties` says -- the
        released evolution's ``max(samples, key=cmp_to_key(cmp))`` (``max`` replaces only on a
        strictly greater item); ``ties`` decides the incumbent only.  Under cycles of a vote the
        result depends on the order, as in the released search."""
        best = items[0]
        for item in items[1:]:
            if self.beats(item[1], best[1], ranks):
                best = item
        return best


class RankSums:
    """The history of a search under the objective rule ``rank_sum``: every complete evaluation
    told so far (a failed one is not ranked), with each one's **rank sum** -- over the components,
    the number of history entries it beats in that component's direction, an equal value counting
    one half (its mid-rank).  Kept up to date on every :meth:`add` (O(n k) numpy work), so
    :meth:`best` is the history's highest rank sum at any moment, not a running champion: an
    architecture passed over earlier takes the lead when later arrivals rank below it.

    By majority, ``a``, ``b``, ``c`` below are a cycle (a beats b on 2 of 3 components, b beats c,
    c beats a): whichever is compared first loses the incumbency.  Their rank sums tie, so the
    incumbent keeps its place; ``d``, ahead of each of them on 2 of 3 components, leads outright:

    >>> history = {"a": (3, 1, 2), "b": (2, 3, 1), "c": (1, 2, 3), "d": (4, 4, 0)}
    >>> [majority_prefers(history[x], history[y], (1, 1, 1)) for x, y in ("ab", "bc", "ca")]
    [1, 1, 1]
    >>> ranks = RankSums((1.0, 1.0, 1.0))
    >>> for arch in "abc":
    ...     ranks.add(arch, Evaluation(history[arch]))
    >>> [ranks.score(Evaluation(history[x])) for x in "abc"], ranks.best("incumbent")[0]
    ([4.5, 4.5, 4.5], 'a')
    >>> ranks.add("d", Evaluation(history["d"]))
    >>> [ranks.score(Evaluation(history[x])) for x in "abcd"], ranks.best("incumbent")[0]
    ([5.5, 5.5, 5.5, 7.5], 'd')
    """

    def __init__(self, signs: Sequence[float]) -> None:
        self.signs = np.asarray(signs, dtype=float)
        self._values = np.empty((16, len(self.signs)))
        self._sums = np.empty(16)
        self._items: list[tuple[Any, Evaluation]] = []
        self._candidate: list[bool] = []
        self._best: int | None = None

    def __len__(self) -> int:
        return len(self._items)

    def _signed(self, ev: Evaluation) -> np.ndarray:
        return np.asarray(ev.values, dtype=float) * self.signs

    def score(self, ev: Evaluation) -> float:
        """``ev``'s rank sum against the history (an entry equal to it counts 1/2 per component, so
        two members of the history compare exactly as their kept sums do)."""
        x, v = self._signed(ev), self._values[:len(self)]
        return float((v < x).sum() + 0.5 * (v == x).sum())

    def add(self, arch: Any, ev: Evaluation, candidate: bool = True) -> None:
        """Put ``(arch, ev)`` in the history (a failed ``ev`` is not ranked); ``candidate=False``:
        ranked, but never :meth:`best` (e.g. a warm-up outside the search proper)."""
        if ev.failed:
            return
        n, x = len(self), self._signed(ev)
        if n == len(self._sums):
            self._values = np.concatenate([self._values, np.empty_like(self._values)])
            self._sums = np.concatenate([self._sums, np.empty_like(self._sums)])
        v = self._values[:n]
        self._sums[:n] += (x < v).sum(axis=1) + 0.5 * (x == v).sum(axis=1)
        self._sums[n] = (v < x).sum() + 0.5 * (v == x).sum() + 0.5 * len(x)
        self._values[n] = x
        self._items.append((arch, ev))
        self._candidate.append(bool(candidate))

    def best(self, ties: str) -> tuple[Any, Evaluation] | None:
        """The candidate with the highest rank sum (None before any complete candidate).  Among
        equal sums the previous best keeps its place (``ties="incumbent"``), or the newest entry
        takes it when it is one of them (``ties="candidate"``); otherwise the earliest."""
        sums = np.where(self._candidate, self._sums[:len(self)], -np.inf)
        if not len(sums) or not np.isfinite(sums.max()):
            return None
        top = np.flatnonzero(sums == sums.max())
        newest = len(self) - 1
        if ties == "candidate" and top[-1] == newest:
            self._best = newest
        elif self._best is None or self._best not in top:
            self._best = int(top[0])
        return self._items[self._best]


class Strategy:
    """The ask/tell interface.  ``ask(n)`` proposes up to ``n`` architectures (a list; ``ask()``:
    one architecture); ``tell(arch, ev)`` reports each one's evaluation, in the order asked, and
    every architecture asked is told before the next ask; ``best()`` is the incumbent
    ``(arch, evaluation)`` over everything told so far.

    A subclass draws its proposals with :meth:`_sample`, :meth:`_mutate` or :meth:`_within`, so
    the resource limits of :meth:`constrain` hold for it (an ``ask`` that returns an architecture
    over a limit that did not come through them raises)."""

    name = "strategy"

    #: the constructor setting that counts the first asks spent on uniform samples before the
    #: strategy uses what it was told (a budget no larger than that is random search), if any
    initial_samples_setting: str | None = None
    #: whether those initial samples are part of the search proper (costed, candidates for the
    #: result) when the runner counts them outside the budget (``accounting=released``)
    initial_is_search: bool = True
    #: tells up to this many are not candidates for :meth:`best` (the runner sets it)
    best_from: int = 0

    def __init__(self, space, objective: Objective, *, seed: int) -> None:
        self.space = space
        self.objective = objective
        self.rng = np.random.default_rng(seed)
        self._best: tuple[Hashable, Evaluation] | None = None
        #: the history the objective ranks within (``rule=rank_sum``), else None
        self.ranks = objective.new_ranks()
        self._pending: collections.deque = collections.deque()
        self.n_asked = 0
        self.n_told = 0
        #: the resource limits every proposal honours (none unless :meth:`constrain` sets them)
        self.limits = Limits()
        #: rejected draws per kind (``sample``, ``mutate``, ``policy``): over a limit, drawn again
        self.rejected: dict[str, int] = dict.fromkeys(REJECTION_KINDS, 0)
        #: per proposal of the last ask, in order: the resource counts the limits read
        #: (``{"flops": ...}``; empty without limits), which the runner records
        self.asked_counts: list[dict[str, float]] = []
        self._accepted: tuple[Hashable, dict[str, float]] | None = None  # the last draw within the limits

    def constrain(self, limits: Limits | None) -> Strategy:
        """Keep every later proposal within ``limits`` (None: no limit); returns the strategy.
        A limit the space has no capability for (``space.flops`` ...) is a ValueError."""
        limits = limits if limits is not None else Limits()
        problems = limits.problems(self.space)
        if problems:
            raise ValueError("; ".join(problems))
        self.limits = limits
        return self

    # -- the draws, within the limits (the released search's rejection rule, in one place)
    def _within(self, draw, kind: str) -> Hashable:
        """The first of ``draw()``'s results within the limits; each rejected one is counted under
        ``kind`` and ``draw`` is called again (see :meth:`Limits.draw`)."""
        arch, counts = self.limits.draw(self.space, draw, kind=kind, rejected=self.rejected, who=self.name)
        self._accepted = (arch, counts)
        return arch

    def _sample(self) -> Hashable:
        """A uniform sample (``space.sample``) within the limits: one over a limit is drawn anew."""
        return self._within(lambda: self.space.sample(self.rng), "sample")

    def _mutate(self, parent: Hashable) -> Hashable:
        """A mutation of ``parent`` (``space.mutate``) within the limits: a child over a limit is
        mutated again from the same parent (as the released search)."""
        return self._within(lambda: self.space.mutate(parent, self.rng), "mutate")

    def _check_proposal(self, arch: Hashable) -> dict[str, float]:
        """The resource counts of a proposal; one over the limits that did not come through
        :meth:`_within` is refused (a strategy that draws on its own would have it scored)."""
        if not self.limits:
            return {}
        if self._accepted is None or self._accepted[0] is not arch:
            counts = self.limits.measure(self.space, arch)
            over = self.limits.over(counts)
            if over:
                raise RuntimeError(f"{self.name}: proposed {self.space.to_str(arch)} over "
                                   f"{', '.join(f'constraints.{k}' for k in over)}; a strategy draws through "
                                   "Strategy._sample/_mutate/_within, which keep the resource limits")
            self._accepted = (arch, counts)
        return dict(self._accepted[1])

    @overload
    def ask(self) -> Hashable: ...

    @overload
    def ask(self, n: int) -> list[Hashable]: ...

    def ask(self, n: int | None = None) -> Hashable | list[Hashable]:
        """The next architecture, or with ``n`` a list of up to ``n`` (fewer only while the initial
        samples end: a batch never straddles them), proposed in order without any tell between."""
        if self._pending:
            raise RuntimeError(f"{self.name}: ask() called again before tell() of "
                               f"{self.space.to_str(self._pending[0])}")
        if n is None:
            return self.ask(1)[0]
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"{self.name}: ask(n) needs a positive integer n, got {n!r}")
        initial = self.initial_samples()
        if self.n_asked < initial:
            n = min(int(n), initial - self.n_asked)
        self.asked_counts = []
        for _ in range(int(n)):
            arch = self._propose()
            self.asked_counts.append(self._check_proposal(arch))
            self._pending.append(arch)
            self.n_asked += 1
        return list(self._pending)

    def tell(self, arch: Hashable, ev: Evaluation) -> None:
        if not self._pending or arch != self._pending[0]:
            raise RuntimeError(f"{self.name}: tell() of an architecture that was not the last one asked "
                               "(a batch is told in the order asked)")
        self._pending.popleft()
        self.n_told += 1
        candidate = self.n_told > self.best_from
        if self.ranks is not None:
            self.ranks.add(arch, ev, candidate=candidate)
            top = self.ranks.best(self.objective.ties) if candidate else None
            if top is not None:  # the highest rank sum; until a complete candidate, the failed ones below
                self._best = top
                candidate = False
        if candidate and (self._best is None or self.objective.prefers(ev, self._best[1], self.ranks)):
            self._best = (arch, ev)
        self._observe(arch, ev)

    def best(self) -> tuple[Hashable, Evaluation]:
        if self._best is None:
            raise RuntimeError(f"{self.name}: best() before any candidate architecture was told")
        return self._best

    def has_best(self) -> bool:
        """Whether a candidate for :meth:`best` has been told yet."""
        return self._best is not None

    def initial_samples(self) -> int:
        """How many first asks are uniform samples (the value of :attr:`initial_samples_setting`)."""
        return 0

    # -- for subclasses
    def _propose(self) -> Hashable:
        """The next proposal (``self.n_asked`` proposals precede it, ``self.n_told`` were told)."""
        raise NotImplementedError

    def _observe(self, arch: Hashable, ev: Evaluation) -> None:
        pass


class RandomSearch(Strategy):
    """Uniform samples from the space (``space.sample``; within the resource limits: a sample over
    a limit is drawn anew); the best by the objective."""

    name = "random"

    def _propose(self) -> Hashable:
        return self._sample()


class RegularizedEvolution(Strategy):
    """Regularised (aging) evolution (Real et al. 2019): the first ``population`` asks are
    uniform samples; after that each child is one ``space.mutate`` of the tournament winner
    among ``tournament`` members drawn uniformly *with replacement* from the population (as the
    NAS-Bench-101 reference implementation; ``replace=False`` draws distinct members, as the
    released WRCor search does), and the oldest member is removed as each child joins.  The
    children of one batch (``ask(n)``) come from tournaments on the same population.  Under
    resource limits (the released search's rule): an initial sample over a limit is drawn anew,
    and a child over a limit is mutated again from the same parent (the tournament is not
    redrawn)."""

    name = "evolution"
    #: what each constructor setting means (``harness search --help`` shows it)
    settings_help = {"population": "the first N asks are uniform samples; the oldest member leaves as a child joins",
                     "tournament": "members drawn per tournament; the winner is mutated once",
                     "replace": "tournament drawn with replacement (nasbench's reference); false = distinct "
                                "members (the released WRCor search)"}

    initial_samples_setting = "population"

    def __init__(self, space, objective: Objective, *, seed: int, population: int = 64, tournament: int = 10,
                 replace: bool = True) -> None:
        super().__init__(space, objective, seed=seed)
        if population < 1 or tournament < 1:
            raise ValueError(f"evolution needs population >= 1 and tournament >= 1, got {population}, {tournament}")
        if not replace and tournament > population:
            raise ValueError(f"a tournament of {tournament} without replacement needs a population of at least that")
        self.population_size = int(population)
        self.tournament = int(tournament)
        self.replace = bool(replace)
        self.population: collections.deque = collections.deque()

    def initial_samples(self) -> int:
        return self.population_size

    def _propose(self) -> Hashable:
        if self.n_asked < self.population_size:
            return self._sample()
        members = list(self.population)
        picks = (self.rng.integers(0, len(members), size=self.tournament) if self.replace
                 else self.rng.choice(len(members), size=self.tournament, replace=False))
        parent, _ = self.objective.champion([members[int(i)] for i in picks], self.ranks)
        return self._mutate(parent)

    def _observe(self, arch: Hashable, ev: Evaluation) -> None:
        self.population.append((arch, ev))
        if len(self.population) > self.population_size:
            self.population.popleft()


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


class Adam:
    """Adam (Kingma & Ba 2015) on numpy arrays, updated in place, with torch.optim.Adam's defaults
    and arithmetic order (betas 0.9/0.999, eps 1e-8 added to the bias-corrected root, no decay)."""

    def __init__(self, params: Sequence[np.ndarray], *, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = list(params), float(lr), betas, eps
        self.m = [np.zeros_like(p) for p in self.params]
        self.v = [np.zeros_like(p) for p in self.params]
        self.t = 0

    def step(self, grads: Sequence[np.ndarray]) -> None:
        b1, b2 = self.betas
        self.t += 1
        c1, c2 = 1 - b1 ** self.t, math.sqrt(1 - b2 ** self.t)
        for p, g, m, v in zip(self.params, grads, self.m, self.v):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= (self.lr / c1) * m / (np.sqrt(v) / c2 + self.eps)


class Reinforce(Strategy):
    """REINFORCE (Williams 1992) with a factorised categorical policy over the space's decisions
    (``space.choices()``; an invalid draw, e.g. an NB-101 graph with too many edges, is drawn
    again), Adam (``lr``), an exponential moving-average baseline (``baseline_decay``; updated
    with the reward, then the advantage is reward - baseline, as NAS-Bench-201's REINFORCE).

    The first ``warmup`` asks are uniform samples (``space.sample``); their signed component
    scores fix each component's mean and standard deviation, and the reward of every later
    architecture is the sum over components of its z-scores.  Warm-up architectures count
    towards the budget, unless the runner's ``accounting=released`` puts them outside it (as the
    released search: neither costed nor candidates for the result).  A failed evaluation gets the lowest warm-up reward.  The policy is
    sampled with the strategy's own generator.  The policy gradient is the closed form of
    log-softmax's; :class:`Adam` is torch.optim.Adam's update in numpy (a test checks they agree),
    which spares a search the 4 s torch.optim takes to import.  The draws of one batch
    (``ask(n)``) come from the same policy; each tell then takes its own step, in order.

    Under resource limits a warm-up sample over a limit is drawn anew, and so is a policy draw:
    drawn again from the same policy until one is within, and the policy gradient then uses the
    choices of the accepted draw (the rejected draws leave no trace in the update).  That is our
    choice for the policy draws, and the released REINFORCE search's too (its ``select_generate``
    redraws from the policy until ``get_FLOPs() <= flops_limit``, and its warm-up uses the
    sampler's rejection).
    """

    name = "reinforce"
    #: what each constructor setting means (``harness search --help`` shows it)
    settings_help = {"lr": "Adam's learning rate", "baseline_decay": "the moving-average baseline's decay",
                     "warmup": "uniform samples that fix the per-proxy z-score normalisation (count towards "
                               "the budget)"}

    initial_samples_setting = "warmup"
    #: the released search's warm-up only fixes the reward normalisation: not costed, not a candidate
    initial_is_search = False

    def __init__(self, space, objective: Objective, *, seed: int, lr: float = 1e-3, baseline_decay: float = 0.9,
                 warmup: int = 100) -> None:
        super().__init__(space, objective, seed=seed)
        if not hasattr(space, "choices") or not hasattr(space, "from_choices"):
            raise TypeError(f"space {space.name!r} does not expose categorical choices (space.choices / "
                            "from_choices), which REINFORCE needs; use search=random or search=evolution")
        self.decisions = space.choices()
        self.warmup = int(warmup)
        self.baseline_decay = float(baseline_decay)
        self.logits = [np.zeros(len(opts)) for _, opts in self.decisions]
        self.optimizer = Adam(self.logits, lr=lr)
        self._warm: list[np.ndarray] = []
        self._mean = self._std = None
        self._floor = 0.0
        self.baseline: float | None = None
        #: the policy draws asked and not yet told, in order: (architecture, its choice indices)
        self._drawn: collections.deque = collections.deque()

    def initial_samples(self) -> int:
        return self.warmup

    def probabilities(self) -> list[np.ndarray]:
        return [_softmax(t) for t in self.logits]

    def _propose(self) -> Hashable:
        if self.n_asked < self.warmup:
            return self._sample()
        probs = self.probabilities()
        drawn: list = []

        def draw() -> Hashable:
            arch, idx = self._policy_draw(probs)
            drawn.append(idx)
            return arch

        arch = self._within(draw, "policy")
        self._drawn.append((arch, drawn[-1]))  # the accepted draw is the last one
        return arch

    def _policy_draw(self, probs: list[np.ndarray]) -> tuple[Hashable, tuple[int, ...]]:
        """One valid architecture from the policy ``probs`` and its choice indices (an invalid
        combination is drawn again)."""
        for _ in range(100_000):
            idx = tuple(int(self.rng.choice(len(p), p=p)) for p in probs)
            try:
                return self.space.from_choices(idx), idx
            except ValueError:  # InvalidArchitectureError: draw again
                continue
        raise RuntimeError(f"REINFORCE: no valid architecture in 100000 draws from the policy over {self.space.name}")

    def reward(self, ev: Evaluation) -> float:
        if ev.failed:
            return self._floor
        z = (self.objective.signed(ev) - self._mean) / self._std
        return float(np.sum(z))

    def _observe(self, arch: Hashable, ev: Evaluation) -> None:
        idx = None
        if self.n_told > self.warmup:  # a policy draw (tells come in the order asked)
            drawn, idx = self._drawn.popleft()
            assert drawn == arch, "tell() keeps the order of the asks"
        if self._mean is None:
            if not ev.failed:
                self._warm.append(self.objective.signed(ev))
            if self.n_told < self.warmup:
                return
            warm = np.array(self._warm) if self._warm else np.zeros((1, len(self.objective.components)))
            self._mean = warm.mean(axis=0)
            std = warm.std(axis=0)
            self._std = np.where(std > 0, std, 1.0)
            self._floor = float(np.min(((warm - self._mean) / self._std).sum(axis=1)))
            return
        r = self.reward(ev)
        d = self.baseline_decay
        self.baseline = r if self.baseline is None else d * self.baseline + (1 - d) * r
        # the gradient of -(r - baseline) * sum_k log softmax(logits_k)[i_k] with respect to logits_k
        advantage = r - self.baseline
        grads = []
        for t, i in zip(self.logits, idx):
            g = _softmax(t)
            g[i] -= 1.0
            grads.append(advantage * g)
        self.optimizer.step(grads)


def make_strategy(name: str, space, objective: Objective, *, seed: int, limits: Limits | None = None,
                  **params: Any) -> Strategy:
    """The strategy ``name`` (``random`` | ``evolution`` | ``reinforce`` | a plugin's) with its
    parameters, proposing only architectures within ``limits`` (None: no limit)."""
    return strategy_class(name)(space, objective, seed=seed, **params).constrain(limits)
