"""Voting proxies: several proxies decide by majority which of two architectures is better.

The paper's votes (WRCor, Jing et al., arXiv 2507.08841)::

    vote_sjw = majority of (synflow, jacob_cov, wrcor)
    vote_spw = majority of (synflow, l2_norm,   wrcor)

A vote has **no value for one network**: it only compares two.  The votes are registered as
aggregators (:mod:`proxies.aggregators`, rule ``majority``); this module is the arithmetic of
that rule.  The harness scores the components per network, then ranks the whole set of
architectures with the aggregator.

Pairwise majority
-----------------
Component ``c`` *prefers* ``a`` over ``b`` when ``a``'s score is strictly better in ``c``'s
direction.  A component **abstains** when the two scores are equal, when either is NaN (an
architecture whose component is NaN can never win that component -- nor lose it), or when both
are the same infinity.  Two rules decide the pair from the counts (:func:`majority_prefers`):

* ``"relative"`` (default for the Copeland score): the side more components prefer wins;
  abstentions do not count.
* ``"absolute"`` (what the released code does, default for the comparator): a side wins only if
  *more than half of all* ``k`` components prefer it; abstentions count against both sides.

With three components and no abstention the two rules agree; they differ only when one
component prefers a side and the other two abstain (relative: that side wins; absolute: a tie).

Two ways to turn the pairwise majority into a ranking
-----------------------------------------------------
The majority relation need not be transitive (a Condorcet cycle: ``a`` beats ``b``, ``b``
beats ``c``, ``c`` beats ``a``), and ties are not transitive either.  So "sort by majority" is
not well defined in general.

* **Copeland score** (:func:`copeland_scores`, the harness's ``vote_*``): each architecture
  scores the number of other architectures it beats by majority, **a pairwise tie counting
  0.5**; scores lie in ``[0, n-1]`` and sum to ``n(n-1)/2``.  It is defined for any majority
  relation, cycles included, and depends only on the set of architectures: permuting the input
  permutes the scores (permutation equivariance), the sort algorithm plays no part, and when the
  relation *is* a strict total order the Copeland scores are exactly the ranks.  O(n^2 k) work,
  vectorised in row blocks (15,625 architectures: ~3 x 8 MB per block of 512 rows).
* **Comparator sort** (:func:`comparator_order`, :func:`comparator_rank_scores`, the harness's
  ``vote_*@comparator``): what the released notebooks do.  When the relation has cycles (or
  non-transitive ties) the result depends on the **input order** and on the **sort algorithm**
  (Python's Timsort): the same scores listed in another order can give another ranking.

What the released code does
---------------------------
``nasbench201_correlations.ipynb`` and ``nasbench101_correlations.ipynb`` in
github.com/kunjing96/ZSNAS-WRCor (section "Soft vote and Hard vote", function ``hard_vote``;
the voted triple is synflow, jacob_cor, act_grad_cor_weighted, i.e. ``vote_sjw``;
``vote_spw`` does not appear in the notebooks):

* the comparator takes, per component, the sign-multiplied difference of the two scores and
  returns -1 when more than half of all the components have a negative difference, +1 when
  more than half have a positive one, 0 otherwise -- the ``"absolute"`` rule; a NaN difference
  (a NaN score, or inf - inf) is neither positive nor negative, i.e. the component abstains;
* the architecture indices ``0..n-1``, in the order the architectures were read from the score
  pickles, are sorted ascending with ``sorted`` and ``functools.cmp_to_key`` (worst first), and
  each architecture's score is its position in that sorted list (0 = worst, n-1 = best), which
  is then rank-correlated with accuracy;
* the signs are +1 for all three components on NAS-Bench-201, and (+1, -1, +1) on NAS-Bench-101
  (jacob_cor counted *lower is better* there) -- a per-space sign the registry's single
  ``higher_is_better`` cannot express; pass ``signs`` explicitly to the functions here for that.

:func:`comparator_order` and :func:`comparator_rank_scores` reproduce this exactly (same rule,
same Python sort, same tie handling) for scores given in the same order.

How the paper's search uses the majority
----------------------------------------
``search.py`` (random, evolutionary and RL search) keeps an incumbent best architecture and,
for every new candidate, takes the larger of the list (candidate, incumbent) under the same
absolute-majority comparator with Python's ``max``.  ``max`` keeps the *first* of equal items
and replaces it only by a strictly greater one, so the incumbent survives only if it **wins**
the majority over the candidate; on a **tie the candidate replaces the incumbent** (not the other
way round).  The evolutionary search picks each tournament's parent the same way (a running
champion over the sample, displaced only by a sample that beats it), so under cycles the parent
depends on the sample order.  :func:`replaces_incumbent` states this rule.

>>> s = np.array([[1.0, 5.0, 2.0],     # arch 0
...               [2.0, 4.0, 3.0],     # arch 1: beats 0 on components 0 and 2
...               [3.0, 6.0, 1.0]])    # arch 2: beats 0 and 1 on components 0 and 1
>>> copeland_scores(s, [1, 1, 1]).tolist()
[0.0, 1.0, 2.0]
>>> comparator_order(s, [1, 1, 1]).tolist()
[2, 1, 0]
"""
from __future__ import annotations

import functools
from typing import Sequence, Union

import numpy as np

__all__ = ["majority_prefers", "copeland_scores", "comparator_order", "comparator_rank_scores",
           "replaces_incumbent", "RULES", "SEARCH_RULES"]

ArrayLike = Union[Sequence[float], np.ndarray]

RULES = ("relative", "absolute")
#: the rules a search objective takes: the two majorities, or ``rank_sum`` -- each architecture's
#: per-component mid-ranks among everything the search was told, summed (a total preorder at any
#: moment, so transitive: no Condorcet cycle; see :class:`harness.search.strategies.RankSums`)
SEARCH_RULES = RULES + ("rank_sum",)
#: who wins a pairwise tie in a search: the ``incumbent`` stays, or the ``candidate`` replaces it
#: (what the released search's ``max`` does; see :func:`replaces_incumbent`)
TIES = ("incumbent", "candidate")
#: a search objective's defaults (the majority rule of the released comparator; the incumbent
#: keeps its place on a tie)
DEFAULT_RULE, DEFAULT_TIES = "absolute", "incumbent"


def _signs(signs: Sequence, k: int) -> np.ndarray:
    """``signs`` as a float array of +-1 (``True`` -> +1, ``False`` -> -1)."""
    arr = np.asarray(signs)
    if arr.shape != (k,):
        raise ValueError(f"expected {k} signs, one per component; got shape {arr.shape}")
    if arr.dtype == bool:
        return np.where(arr, 1.0, -1.0)
    arr = arr.astype(float)
    if not np.all(np.isin(arr, (1.0, -1.0))):
        raise ValueError(f"signs must be +1 (higher is better) or -1 (lower is better); got {arr.tolist()}")
    return arr


def _check_rule(rule: str) -> str:
    if rule not in RULES:
        raise ValueError(f"unknown majority rule {rule!r}; valid rules: {list(RULES)}")
    return rule


def _signed(scores: ArrayLike, signs: Sequence) -> np.ndarray:
    """The (n_archs, n_components) scores, each component turned higher-is-better."""
    s = np.asarray(scores, dtype=float)
    if s.ndim != 2:
        raise ValueError(f"scores must be (n_archs, n_components); got shape {s.shape}")
    return s * _signs(signs, s.shape[1])


def _decide(n_a: int, n_b: int, k: int, rule: str) -> int:
    if rule == "relative":
        return (n_a > n_b) - (n_b > n_a)
    return 1 if 2 * n_a > k else -1 if 2 * n_b > k else 0


def majority_prefers(a_scores: ArrayLike, b_scores: ArrayLike, signs: Sequence, *,
                     rule: str = "relative") -> int:
    """+1 if the majority of the components prefers ``a``, -1 if it prefers ``b``, 0 for a tie.

    ``a_scores[c]``, ``b_scores[c]``: component ``c``'s scores of the two architectures;
    ``signs[c]``: +1 if higher is better for ``c``, -1 if lower is better (or booleans,
    ``True`` = higher is better).  A component abstains on equal scores and when either score
    is NaN (or both are the same infinity).  ``rule="relative"``: the side more components
    prefer wins; ``rule="absolute"``: a side must be preferred by more than half of all the
    components (the released code's rule).

    >>> majority_prefers([3, 1, 2], [2, 3, 1], [1, 1, 1])        # 2 of 3 prefer a
    1
    >>> majority_prefers([3, 1, 2], [2, 3, 1], [1, -1, 1])       # lower is better for the 2nd
    1
    >>> majority_prefers([3, 1, 2], [2, 3, 1], [-1, 1, 1])
    -1
    >>> nan = float("nan")
    >>> majority_prefers([nan, 1, 2], [0, 2, 1], [1, 1, 1])      # one each, the NaN abstains
    0
    >>> majority_prefers([5, 1, 1], [4, 1, nan], [1, 1, 1])      # 1 prefers a, 2 abstain
    1
    >>> majority_prefers([5, 1, 1], [4, 1, nan], [1, 1, 1], rule="absolute")  # 1 is not > 3/2
    0
    """
    _check_rule(rule)
    s = _signed(np.stack([np.asarray(a_scores, float), np.asarray(b_scores, float)]), signs)
    n_a, n_b = int(np.sum(s[0] > s[1])), int(np.sum(s[0] < s[1]))
    return _decide(n_a, n_b, s.shape[1], rule)


def copeland_scores(scores: ArrayLike, signs: Sequence, *, rule: str = "relative",
                    chunk: int = 512) -> np.ndarray:
    """Copeland score of every architecture: the number of other architectures it beats by
    majority, plus 0.5 for each it ties with (see :func:`majority_prefers` for the majority).

    ``scores``: (n_archs, n_components); ``signs``: one per component.  Returns floats in
    ``[0, n-1]`` (higher is better), never NaN; permuting the rows of ``scores`` permutes the
    result the same way.  Done in blocks of ``chunk`` rows: O(n^2 k) time, O(chunk n) memory.

    >>> cycle = [[3, 1, 2],   # 0 beats 1, 1 beats 2, 2 beats 0: a Condorcet cycle
    ...          [2, 3, 1],
    ...          [1, 2, 3]]
    >>> copeland_scores(cycle, [1, 1, 1]).tolist()
    [1.0, 1.0, 1.0]
    >>> copeland_scores([[1, 7], [2, 7], [2, 7]], [1, -1]).tolist()  # 1 and 2 tie, both beat 0
    [0.0, 1.5, 1.5]
    """
    _check_rule(rule)
    s = _signed(scores, signs)
    n, k = s.shape
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1; got {chunk}")
    if k >= np.iinfo(np.int16).max:
        raise ValueError(f"too many components ({k})")
    wins = np.zeros(n)
    losses = np.zeros(n)
    for start in range(0, n, chunk):
        block = s[start:start + chunk]
        n_up = np.zeros((len(block), n), dtype=np.int16)  # components preferring the block's row
        n_down = np.zeros((len(block), n), dtype=np.int16)
        for c in range(k):
            mine, theirs = block[:, c, None], s[None, :, c]
            n_up += mine > theirs  # NaN compares False both ways: an abstention
            n_down += mine < theirs
        if rule == "relative":
            beat, lost = n_up > n_down, n_down > n_up
        else:
            beat, lost = 2 * n_up > k, 2 * n_down > k
        wins[start:start + len(block)] = beat.sum(axis=1)
        losses[start:start + len(block)] = lost.sum(axis=1)
    ties = (n - 1) - wins - losses  # an architecture ties with itself: not counted
    return wins + 0.5 * ties


def _comparator(s: np.ndarray, rule: str):
    rows = [tuple(r) for r in s.tolist()]  # plain floats: fast Python comparisons
    k = s.shape[1]

    def cmp(i: int, j: int) -> int:
        a, b = rows[i], rows[j]
        return _decide(sum(x > y for x, y in zip(a, b)), sum(x < y for x, y in zip(a, b)), k, rule)

    return cmp


def _ascending(scores: ArrayLike, signs: Sequence, rule: str) -> list[int]:
    """Indices sorted worst-first with the majority comparator, as the released notebooks do."""
    s = _signed(scores, signs)
    return sorted(range(s.shape[0]), key=functools.cmp_to_key(_comparator(s, _check_rule(rule))))


def comparator_order(scores: ArrayLike, signs: Sequence, *, rule: str = "absolute") -> np.ndarray:
    """Architecture indices **best first**, by Python's ``sorted`` with the majority comparator
    (the released notebooks' ``hard_vote``; their sort is ascending, worst first: this is that
    list reversed).  Depends on the row order and on the sort algorithm when the majority
    relation has cycles or non-transitive ties (see the module docstring).

    >>> comparator_order([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [0.0, 9.0, 1.0]], [1, 1, 1]).tolist()
    [1, 0, 2]
    """
    return np.array(_ascending(scores, signs, rule)[::-1], dtype=np.intp)


def comparator_rank_scores(scores: ArrayLike, signs: Sequence, *, rule: str = "absolute") -> np.ndarray:
    """Per-architecture scores from :func:`comparator_order`: ``n-1`` for the first (best) ...
    ``0`` for the last -- the released notebooks' score (position in their ascending sort),
    higher is better, ready for a rank correlation.

    >>> comparator_rank_scores([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [0.0, 9.0, 1.0]], [1, 1, 1]).tolist()
    [1.0, 2.0, 0.0]
    """
    asc = _ascending(scores, signs, rule)
    out = np.empty(len(asc))
    out[asc] = np.arange(len(asc), dtype=float)
    return out


def replaces_incumbent(candidate: ArrayLike, incumbent: ArrayLike, signs: Sequence, *,
                       rule: str = "absolute") -> bool:
    """The released search's update of its best-so-far: the candidate takes the incumbent's
    place unless the incumbent **wins** the majority -- so a tie goes to the candidate.

    >>> replaces_incumbent([1, 2, 9], [3, 4, 0], [1, 1, 1])   # the incumbent wins 2 of 3
    False
    >>> replaces_incumbent([1, 4, 9], [3, 4, 0], [1, 1, 1])   # 1 each, 1 abstains: a tie
    True
    """
    return majority_prefers(incumbent, candidate, signs, rule=rule) <= 0
