"""Zero-shot search: the strategies (:mod:`harness.search.strategies`: ask/tell objects and the
objective that compares two evaluations) and the runner (:mod:`harness.search.run`:
``run_search(cfg) -> dict``, behind ``harness search``).

The runner's names are loaded on first use: :mod:`harness.config` reads the strategies (their
settings become the ``search.*`` schema) while the runner reads :mod:`harness.config`, so
importing the runner here would make the two imports circular.  ``from harness.search import
run_search`` works as usual.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .strategies import (STRATEGIES, Evaluation, Objective, RandomSearch, RegularizedEvolution, Reinforce, Strategy,
                         list_strategies, make_strategy, register_strategy, strategy_class)

if TYPE_CHECKING:
    from .run import (SUMMARY_KEYS, VALACC, BenchmarkEvaluator, StoreEvaluator, json_safe, main, make_evaluator,
                      objective_from_cfg, run_search)

_RUNNER = ("run_search", "objective_from_cfg", "make_evaluator", "StoreEvaluator", "BenchmarkEvaluator",
           "json_safe", "SUMMARY_KEYS", "VALACC", "main")

__all__ = ["Evaluation", "Objective", "Strategy", "RandomSearch", "RegularizedEvolution", "Reinforce", "STRATEGIES",
           "register_strategy", "strategy_class", "list_strategies", "make_strategy", *_RUNNER]


def __getattr__(name: str) -> Any:
    if name in _RUNNER:
        from . import run

        return getattr(run, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_RUNNER))
