"""Zero-shot search: the strategies (:mod:`harness.search.strategies`: ask/tell objects and the
objective that compares two evaluations; their resource limits: :mod:`harness.search.constraints`)
and the runner (:mod:`harness.search.run`:
``run_search(cfg) -> dict``, behind ``harness search``).

The strategies registry is :mod:`harness.registry` (the configuration reads it without importing
this package).
"""
from __future__ import annotations

from .constraints import ConstraintError, Limits
from .strategies import (STRATEGIES, Evaluation, Objective, RandomSearch, RegularizedEvolution, Reinforce, Strategy,
                         list_strategies, make_strategy, register_strategy, strategy_class)

from .run import (OPTIONAL_SUMMARY_KEYS, SUMMARY_KEYS, VALACC, BenchmarkEvaluator, StoreEvaluator, json_safe, judged_on,
                  limits_from_cfg, make_evaluator, objective_from_cfg, run_search)

__all__ = ["Evaluation", "Objective", "Strategy", "RandomSearch", "RegularizedEvolution", "Reinforce", "STRATEGIES",
           "register_strategy", "strategy_class", "list_strategies", "make_strategy", "run_search",
           "objective_from_cfg", "make_evaluator", "StoreEvaluator", "BenchmarkEvaluator", "json_safe", "SUMMARY_KEYS",
           "VALACC", "Limits", "ConstraintError", "limits_from_cfg", "OPTIONAL_SUMMARY_KEYS", "judged_on"]
