"""Zero-shot search: ``harness search <hydra overrides>`` and ``run_search(cfg) -> dict``.

A strategy (:mod:`harness.search.strategies`) is asked for ``ask_batch`` architectures at a time
(1 by default), the runner scores the batch's unscored ones together through the durable score
store (a stored score is read, never recomputed; new ones are committed as soon as they are
computed) with the scoring job's path (:func:`harness.scoring.run.score_all`: with ``engine.enabled`` the
WRCor family on NB201 is scored many architectures per stacked pass), tells the evaluations back
in the order asked, and after ``budget`` asks looks up the incumbent's trained accuracy (an
explicit ``(dataset, split)``) and its regret to the best in the benchmark.

* **Batches.** Random search proposes the same architectures in the same order whatever
  ``ask_batch`` is; for evolution and REINFORCE a batch's candidates come from the same
  population / policy (see :mod:`harness.search.strategies`), so another batch size is another,
  equally reproducible, search.  ``ask_batch=1`` is the one-at-a-time search.  ``engine.enabled``
  is false for a search (unlike a scoring job), so by default every network is scored alone and
  the numbers are the one-network path's; with ``engine.enabled=true`` they equal those up to
  float32 summation order, and on a GPU they may depend on how many architectures share a pass.

* **Search cost** is the proxy seconds of the *distinct* architectures the search evaluated (each
  distinct proxy pass once, as stored when it was computed -- so a search costs the same whether
  its scores were computed now, by an earlier interrupted run, or by another search sharing the
  store), plus, for the ``valacc12`` baseline, the benchmark's training time of 12 epochs.
  ``wall_s`` is the time this process actually took.
* **Scoring seed.** ``score_seed`` fixes the proxies' batch and network initialisation; ``seed``
  drives the strategy only.  With the default ``score_seed: 0`` every search seed sees the same
  score for the same architecture (the released search's fixed batch) and the store serves them
  all; ``score_seed=${seed}`` makes the scoring noise part of each seed, at the price of scoring
  every architecture anew per seed.
* **Resume.** A strategy is a deterministic function of its seed and of the scores it is told,
  and every score is durable; so re-running an interrupted command replays the stored part (no
  score is recomputed, a 1000-step replay takes seconds) and continues where it stopped.
* **Resource limits.** ``constraints.flops_max`` / ``params_max`` (``latency_max`` on a space
  that measures latency) keep every candidate within the space's counts (``space.flops(arch)``
  ...) by the released search's rejection rule (:mod:`harness.search.constraints`): a draw over
  a limit is drawn again, never scored and never costed.  A limit on a space without that count
  is refused before any work.  The summary records the limits (``constraints``), the rejected
  draws per kind (``n_rejected_sample`` / ``_mutate`` / ``_policy``) and ``n_asked`` (the steps:
  ``budget``, plus ``n_initial`` with ``accounting=released``); with a limit the trajectory adds
  each candidate's counts (``arch_flops`` ...) and the rejections so far (``n_rejected``).
* **Cost per candidate.** Besides the proxy seconds, each candidate scored now is timed as a
  whole -- build + initialisation + the batch + the proxies (+ storing its scores), in wall
  seconds (a batch of ``ask_batch`` shares its wall equally) -- and the summary records their
  mean ``cost_per_candidate_s`` (over ``n_timed`` candidates: one read from the store is not
  timed), their sum ``candidates_wall_s``, ``ask_wall_s`` (drawing the candidates, the rejected
  draws included) and the ``device`` (the CPU model and torch threads, or the GPU's name);
  ``wall_per_candidate=true`` adds each one to the trajectory (``eval_wall_s``).
* **No ground truth.** A space whose benchmark answers no target (``mobilenetv2``: no ImageNet
  offline) is searched all the same: the summary has no accuracy, regret or target (null),
  ``ground_truth: false`` and the benchmark's ``accuracy_note`` saying why.  For every space the
  found architecture's counts are recorded where the space has them (``found_flops``,
  ``found_macs``, ``found_params``, ``found_model_size``), and a space that has a trainable form
  of its architectures (``space.genotype_source``: mobilenetv2's released ``genotypes.py`` entry)
  gets ``genotype.py`` written in the run directory, named by the log's last lines.
* **Output.** ``search.json`` (the summary), ``trajectory.csv`` (per step: the architecture, its
  scores, whether it was new / computed, the cost so far and the incumbent with its accuracy)
  and ``trajectory.png`` in the run directory; all logged to MLflow.  Progress goes to stderr;
  the last line of standard output is the summary as one JSON object.
"""
from __future__ import annotations

import contextlib
import csv
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

import proxies

from ..config import ConfigError, SearchConfig, load, strategy_params, write_config
from ..jsonio import strict, write_json
from ..progress import Progress
from ..reports.search import trajectory_figure
from ..scoring.run import engine_options, key_maker, pass_seconds, resolve_device, score_all, space_from_cfg
from ..scoring.store import ScoreKey, ScoreStore
from .constraints import LIMIT_CAPABILITY, REJECTION_KINDS, Limits
from .strategies import Evaluation, Objective, make_strategy

log = logging.getLogger(__name__)

#: the objective that reads the benchmark's 12-epoch validation accuracy (the paper's ValAcc rows)
VALACC = "valacc12"


def objective_from_cfg(cfg: SearchConfig) -> Objective:
    """The objective named by ``objective`` (a proxy, a vote, or ``valacc12``), with the vote
    settings ``vote.rule`` / ``vote.ties`` and optional per-component ``signs`` (e.g. NB-101's
    released notebook counts jacob_cov lower-is-better)."""
    name = cfg.objective
    rule, ties = cfg.vote.rule.value, cfg.vote.ties.value
    if name == VALACC:
        comps, signs = (VALACC,), (1.0,)
    else:
        comps = proxies.components_of(name)  # unknown name -> error listing the valid ones
        agg = proxies.get_aggregator(name) if proxies.is_aggregator(name) else None
        if agg is not None and agg.components == comps:  # its own directions (e.g. vote_sjw_notebook's [+1, -1, +1])
            signs = tuple(float(x) for x in agg.directions())
        else:  # a proxy, or a nested aggregate's proxies (rank_sum over them): the registry's directions
            signs = tuple(1.0 if proxies.get_proxy(c).higher_is_better else -1.0 for c in comps)
        name = proxies.get_aggregator(name).name if proxies.is_aggregator(name) else comps[0]
    if cfg.signs is not None:  # checked at the door (harness.config: one +1/-1 per component)
        signs = tuple(float(s) for s in cfg.signs)
    return Objective(name, comps, signs, rule=rule, ties=ties)


#: one evaluation: (the objective's component scores, the proxy seconds, computed now)
Result = tuple[Evaluation, float, bool]


class StoreEvaluator:
    """Evaluates a batch of architectures for an objective of proxies through the durable score
    store: ``evaluate(arch_strs)`` returns one ``(evaluation, seconds, computed)`` per architecture,
    in order.  The batch's architectures with a score missing from the store are scored together
    by ``score`` (the keys of each, by proxy: it commits their records to the store) before any
    is returned; an architecture seen before in this run is answered from memory, so
    ``computed`` is true at most once per architecture.  A stored failure (error, oom) is an
    evaluation that failed, unless ``retry_failed`` asks to compute it again (e.g. after freeing
    memory)."""

    def __init__(self, *, objective: Objective, store: ScoreStore, keys_of: Callable[[str], dict[str, ScoreKey]],
                 score: Callable[[dict[str, dict[str, ScoreKey]]], Any], retry_failed: bool = False) -> None:
        self.objective, self.store, self.keys_of, self.score = objective, store, keys_of, score
        self.retry_failed = retry_failed
        self._memo: dict[str, tuple[Evaluation, float]] = {}
        #: wall seconds per architecture scored by the last call (build + init + batch + proxies +
        #: storing; a batch's wall shared equally by the architectures it scored)
        self.walls: dict[str, float] = {}

    #: what a search's cost is made of (the summary's ``cost_note``)
    cost_note = "proxy seconds of the distinct architectures scored, as measured when each was computed"

    def __call__(self, arch_strs: Sequence[str]) -> list[Result]:
        keys_for = {a: self.keys_of(a) for a in dict.fromkeys(arch_strs) if a not in self._memo}
        missing: dict[str, dict[str, ScoreKey]] = {}
        self.walls = {}
        if keys_for:
            stored = self.store.get_many(k for ks in keys_for.values() for k in ks.values())
            if self.retry_failed:
                stored = {k: r for k, r in stored.items() if not r.failed}
            missing = {a: ks for a, ks in keys_for.items() if any(k not in stored for k in ks.values())}
            if missing:
                start = time.perf_counter()
                self.score(missing)
                wall = (time.perf_counter() - start) / len(missing)
                self.walls = dict.fromkeys(missing, wall)
                stored.update(self.store.get_many(k for ks in missing.values() for k in ks.values()))
            for a, ks in keys_for.items():
                records = {c: stored[k] for c, k in ks.items()}
                ev = Evaluation(tuple(float(records[c].value) for c in self.objective.components))
                self._memo[a] = (ev, pass_seconds(self.objective.components, records))
        # computed: true at the first occurrence of an architecture scored now
        return [(*self._memo[a], missing.pop(a, None) is not None) for a in arch_strs]


class BenchmarkEvaluator:
    """The ``valacc12`` baseline: the benchmark's 12-epoch validation accuracy of an architecture,
    costing its 12-epoch training time on that dataset (``cost_column`` x ``cost_scale``)."""

    def __init__(self, *, space, column: str, cost_column: str, cost_scale: float, images: str = "",
                 note: str = "") -> None:
        bench = space.benchmark
        self.cost_note = f"{images or 'these images'}: {cost_column} x {cost_scale:g}" + (f" [{note}]" if note else "")
        self._values = dict(zip(bench.keys(), bench.column(column, per="key")))
        self._costs = dict(zip(bench.keys(), bench.column(cost_column, per="key")))
        self.cost_scale = float(cost_scale)
        self._key_of = bench.key_of

    def __call__(self, arch_strs: Sequence[str]) -> list[Result]:
        return [self._one(a) for a in arch_strs]

    def _one(self, arch_str: str) -> Result:
        key = self._key_of(arch_str)
        if key not in self._values:
            return Evaluation((math.nan,)), 0.0, False
        return Evaluation((float(self._values[key]),)), float(self._costs[key]) * self.cost_scale, False


def _accuracy(bench, arch_str: str, target: tuple[str, str]) -> float:
    try:
        return bench.lookup(arch_str, *target)
    except KeyError:  # an architecture outside an offline table (NB-101: 292 of 423,624 cells)
        return math.nan


def search_target(cfg: SearchConfig) -> tuple[str, str]:
    target = cfg.dataset.search_target
    if target is None:
        raise ConfigError(f"dataset.search_target=null is not allowed: space {cfg.space.name!r} has no search "
                          f"target for images {cfg.dataset.images!r}; set dataset.search_target=[dataset,split]")
    return (str(target[0]), str(target[1]))


def make_evaluator(cfg: SearchConfig, *, space, space_kw: Mapping, objective: Objective, store: ScoreStore):
    """The evaluator of ``objective``: the benchmark's 12-epoch accuracy for ``valacc12``, else the
    proxies through the score store (scored on ``score_seed``'s batch when missing, by the scoring
    job's :func:`~harness.scoring.run.score_all`, through the engine when ``engine.enabled``)."""
    dataset = cfg.dataset.images
    if objective.name == VALACC:
        spec = cfg.space.valacc12
        if spec is None or dataset not in spec.columns:
            raise ConfigError(f"objective=valacc12 is not allowed here: space {space.name!r} has no 12-epoch "
                              f"accuracy for images {dataset!r} (space.valacc12.columns)")
        if dataset not in spec.cost_scales:
            raise ConfigError(f"objective=valacc12 is not allowed here: space {space.name!r} has no 12-epoch "
                              f"training cost for images {dataset!r} (space.valacc12.cost_scales)")
        return BenchmarkEvaluator(space=space, column=spec.columns[dataset], cost_column=spec.cost_column,
                                  cost_scale=spec.cost_scales[dataset], images=dataset, note=spec.cost_note)
    device = resolve_device(cfg.device)
    batch = dict(batch_size=cfg.batch.size, input_kind=cfg.batch.kind.value, sampling=cfg.batch.sampling.value)
    keys_of = key_maker(space=space, proxy_names=list(objective.components), dataset=dataset, seed=cfg.score_seed,
                        device=device, space_kw=space_kw, resolution=cfg.batch.resolution, **batch)
    engine = engine_options(cfg)

    def score(keys_for: dict[str, dict[str, ScoreKey]]) -> None:
        with _quiet(score_all.__module__, "proxies.engine"):  # the search logs its own progress
            score_all(space=space, keys_for=keys_for, store=store, dataset=dataset, seed=cfg.score_seed,
                      split=cfg.batch.split, device=device, data_dir=cfg.data_dir, retry_failed=cfg.retry_failed,
                      shard=(0, 1), engine=engine, resolution=cfg.batch.resolution, **batch)

    return StoreEvaluator(objective=objective, store=store, keys_of=keys_of, score=score,
                          retry_failed=cfg.retry_failed)


@contextlib.contextmanager
def _quiet(*loggers: str) -> Iterator[None]:
    """Keep the named loggers' info lines (a scoring job's per-call progress: one search batch is a
    tiny job) out of the search's log; warnings and errors still show."""
    saved = [(lg, lg.level) for lg in map(logging.getLogger, loggers)]
    for lg, level in saved:
        lg.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        for lg, level in saved:
            lg.setLevel(level)


def limits_from_cfg(cfg: SearchConfig, space) -> Limits:
    """The search's resource limits (``constraints.*``), refused with a :class:`ConfigError`
    when ``space`` lacks the count a limit needs (``space.flops(arch)`` for ``flops_max`` ...)."""
    limits = Limits.from_cfg(cfg.constraints)
    problems = limits.problems(space)
    if problems:
        raise ConfigError("\n".join(problems))
    return limits


def run_search(cfg: Any, *, tracker=None, output_dir: str | Path | None = None,
               on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run one search described by ``cfg`` (a composed ``conf/search_run.yaml``, a
    :class:`~harness.config.SearchConfig` or a mapping with its keys; validated first, so a value
    that is not allowed is a :class:`~harness.config.ConfigError` before any work);
    ``on_step(step)`` is called after each step, i.e. after each tell (tests use it to interrupt a
    run).  With a ``tracker`` the search's run is opened before the work and closed after it (see
    :mod:`harness.tracking`, "Run layout")."""
    cfg = load(cfg, SearchConfig)
    space, space_kw = space_from_cfg(cfg)
    limits = limits_from_cfg(cfg, space)  # a limit the space cannot count: refused before any work
    if tracker is None:
        return _run_search(cfg, space, space_kw, limits, None, output_dir, on_step)
    with tracker.run(**_search_run(cfg, output_dir, judged_on(cfg, space))) as job:
        return _run_search(cfg, space, space_kw, limits, job, output_dir, on_step)


def _run_search(cfg: SearchConfig, space, space_kw: Mapping, limits: Limits, job, output_dir: str | Path | None,
                on_step: Callable[[int], None] | None) -> dict[str, Any]:
    objective = objective_from_cfg(cfg)
    strategy_cfg = strategy_params(cfg.search)
    strategy_name = cfg.search.name
    seed, budget, ask_batch = cfg.seed, cfg.budget, cfg.ask_batch
    dataset = cfg.dataset.images
    target = judged_on(cfg, space)
    bench = space.benchmark
    if target is not None:
        bench.protocol(*target)  # unknown (dataset, split) -> error listing the valid ones
        optimum, n_table = bench.optimum(*target)
    else:  # no ground truth: the result is the architecture, its counts and the cost, no accuracy
        optimum, n_table = math.nan, 0
    strategy = make_strategy(strategy_name, space, objective, seed=seed, limits=limits, **strategy_cfg)
    accounting = cfg.accounting.value
    n_initial = strategy.initial_samples()
    n_steps = budget + n_initial if accounting == "released" else budget
    # released: the initial samples come on top of N; REINFORCE's warm-up only calibrates its reward
    # (neither costed nor a candidate for the result), evolution's population is part of the search
    initial_counts = accounting != "released" or strategy.initial_is_search
    if not initial_counts:
        strategy.best_from = n_initial
    out_dir = Path(output_dir or ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    progress_every = cfg.progress_every
    device = _device(cfg, objective)

    with ScoreStore(Path(cfg.store.path)) as store:
        evaluate = make_evaluator(cfg, space=space, space_kw=space_kw, objective=objective, store=store)
        steps, seen, costed, cost, n_computed = [], set(), set(), 0.0, 0
        walls: list[float] = []  # the wall seconds of each candidate scored now
        ask_wall = 0.0  # seconds in the strategy's asks: sampling, mutation, the rejected draws
        start = time.perf_counter()
        log.info("%s search of %s (%s, images %s), objective %s, budget %d%s, seed %d%s%s", strategy_name,
                 space.name, "/".join(map(str, target)) if target else "no ground truth", dataset, objective.name,
                 budget, f" + {n_initial} initial samples" if n_steps > budget else "", seed,
                 f", {ask_batch} architectures per ask" if ask_batch > 1 else "",
                 "".join(f", {k} {v:g}" for k, v in limits.active.items()))

        def detail() -> str:
            if not seen:
                return "no architecture evaluated yet"
            best = f"best {objective.name} {_fmt(strategy.best()[1])}" if strategy.has_best() else "warm-up"
            rejected = sum(strategy.rejected.values())
            return (f"{len(seen)} distinct architectures ({n_computed} computed now), {best}, cost {cost:.1f} s"
                    + (f", {rejected} draws over the limits rejected" if limits else ""))

        bar = Progress(n_steps, logger=log, verb="search", what="steps", every=progress_every, detail=detail)
        try:
            step = 0
            while step < n_steps:
                asked = time.perf_counter()
                archs = strategy.ask(min(ask_batch, n_steps - step))
                ask_wall += time.perf_counter() - asked
                arch_strs = [space.to_str(a) for a in archs]
                counts = strategy.asked_counts
                n_rejected = sum(strategy.rejected.values())  # drawn before this batch was scored
                for arch, arch_str, arch_counts, (ev, seconds, computed) in zip(archs, arch_strs, counts,
                                                                                evaluate(arch_strs)):
                    step += 1
                    strategy.tell(arch, ev)
                    phase = "initial" if step <= n_initial else "search"
                    new = arch_str not in seen
                    seen.add(arch_str)
                    if (phase == "search" or initial_counts) and arch_str not in costed:
                        costed.add(arch_str)
                        cost += seconds
                    n_computed += computed
                    wall = getattr(evaluate, "walls", {}).get(arch_str, math.nan) if computed else math.nan
                    if computed and math.isfinite(wall):
                        walls.append(wall)
                    best_arch = space.to_str(strategy.best()[0]) if strategy.has_best() else None
                    steps.append({"step": step, "phase": phase, "arch": arch_str,
                                  **dict(zip(objective.components, ev.values)), "failed": ev.failed, "new": new,
                                  "computed": computed, "cost_s": cost, "n_scored": len(seen),
                                  "best_arch": best_arch})
                    if limits:  # each candidate's counts, and the draws rejected so far
                        steps[-1].update({f"arch_{c}": v for c, v in arch_counts.items()})
                        steps[-1]["n_rejected"] = n_rejected
                    if cfg.wall_per_candidate:
                        steps[-1]["eval_wall_s"] = wall
                    bar.update()
                    if on_step is not None:
                        on_step(step)
        except BaseException:
            bar.close()
            log.warning("search interrupted after %d of %d steps: every score computed so far is stored; run the "
                        "same command again to resume (the stored part is replayed, not recomputed)",
                        len(steps), n_steps)
            raise
        bar.close()
    wall_s = time.perf_counter() - start

    best_arch, best_ev = strategy.best()
    best_str = space.to_str(best_arch)
    if target is not None:
        acc_of = {a: _accuracy(bench, a, target) for a in dict.fromkeys(s["best_arch"] for s in steps) if a}
    else:
        acc_of = {}
    for s in steps:
        s["best_accuracy"] = acc_of.get(s["best_arch"], math.nan)
    test_acc = acc_of.get(best_str, math.nan)
    summary = {
        "arch": best_str, "test_accuracy": test_acc, "test_error": 100.0 - test_acc, "regret": optimum - test_acc,
        "search_cost_s": cost, "n_scored": len(seen), "n_costed": len(costed), "n_computed": n_computed,
        "budget": budget,
        "n_initial": n_initial, "accounting": accounting, "n_asked": len(steps), "cost_note": evaluate.cost_note,
        "constraints": limits.as_dict(),
        **{f"n_rejected_{kind}": strategy.rejected.get(kind, 0) for kind in REJECTION_KINDS},
        "n_failed": sum(s["failed"] for s in steps if s["new"]), "wall_s": wall_s,
        "cost_per_candidate_s": float(np.mean(walls)) if walls else math.nan, "n_timed": len(walls),
        "candidates_wall_s": float(sum(walls)), "ask_wall_s": ask_wall, "device": device,
        "best_score": dict(zip(objective.components, best_ev.values)),
        "space": space.name, "images": dataset, "target": list(target) if target else None, "optimum": optimum,
        "optimum_over": n_table, "strategy": strategy_name, "strategy_params": strategy_cfg, "ask_batch": ask_batch,
        "objective": objective.name, "vote": {"rule": objective.rule, "ties": objective.ties}, "seed": seed,
        "score_seed": None if objective.name == VALACC else cfg.score_seed,
        "protocol": bench.protocol(*target) if target else "", "machine": _machine(cfg, objective),
        "ground_truth": target is not None,
        "batch": {"images": dataset, "kind": cfg.batch.kind.value, "size": cfg.batch.size,
                  "resolution": cfg.batch.resolution, "sampling": cfg.batch.sampling.value},
    }
    summary.update({f"found_{c}": float(getattr(space, c)(best_arch)) for c in RESOURCE_COUNTS
                    if callable(getattr(space, c, None))})
    if target is None:
        summary["accuracy_note"] = _no_truth_note(space)
    traj_path, summary_path = out_dir / "trajectory.csv", out_dir / "search.json"
    genotype_path = _export_genotype(space, best_arch, summary, out_dir)
    if genotype_path is not None:
        summary["genotype_file"] = str(genotype_path)
    with open(traj_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(steps[0]))
        writer.writeheader()
        writer.writerows(steps)
    write_json(summary_path, summary)  # strict JSON: NaN/inf as null, counted under "nonfinite"
    fig_paths = trajectory_figure(steps, summary, out_dir / "trajectory.png") if cfg.figure else []
    timing = (f"{summary['cost_per_candidate_s']:.2f} s per candidate over {len(walls)} scored now on {device}"
              if walls else f"no candidate scored now (all from the store) on {device}")
    if target is not None:
        log.info("found %s: %s accuracy %.2f (optimum %.2f, regret %.2f), cost %.1f s over %d architectures "
                 "(%s), wall %.1f s", best_str, "/".join(target), test_acc, optimum, summary["regret"], cost,
                 len(seen), timing, wall_s)
    else:
        counts_text = ", ".join(f"{c} {summary['found_' + c]:,.0f}" for c in RESOURCE_COUNTS
                                if "found_" + c in summary)
        log.info("found %s: %s; no accuracy (%s); cost %.1f s of proxies over %d architectures (%s), wall %.1f s "
                 "(of which %.1f s drawing the candidates, the rejected draws included)", best_str,
                 counts_text or "no counts",
                 summary["accuracy_note"], cost, len(seen), timing, wall_s, ask_wall)
    if genotype_path is not None:
        log.info("genotype file: %s (%s)", genotype_path, summary["genotype_use"])
    if job is not None:
        _track(job, cfg, summary, steps,
               [summary_path, traj_path] + fig_paths + ([genotype_path] if genotype_path is not None else []))
    return summary


#: the resource counts of the found architecture a summary records (``found_<count>``), where
#: the space has them: FLOPs and MACs per sample, parameters, the released model size
RESOURCE_COUNTS = ("flops", "macs", "params", "model_size")


def judged_on(cfg: SearchConfig, space) -> tuple[str, str] | None:
    """The ``(dataset, split)`` a search's result is judged on (``dataset.search_target``), or
    None for a space with no ground truth at all (its benchmark answers no target, e.g.
    ``mobilenetv2``: the search then records the architecture, its counts and the cost, and no
    accuracy).  A space with ground truth and no target for these images is a ConfigError."""
    if cfg.dataset.search_target is None and cfg.objective != VALACC and not space.benchmark.available():
        return None
    return search_target(cfg)


def _no_truth_note(space) -> str:
    """Why a search of ``space`` has no accuracy (the benchmark's ``accuracy_note`` if it says)."""
    return (getattr(space.benchmark, "accuracy_note", "")
            or f"no ground truth offline: space {space.name} has no table of trained accuracies")


def _export_genotype(space, arch, summary: dict[str, Any], out_dir: Path) -> Path | None:
    """Write ``genotype.py`` (the space's trainable form of the found architecture, e.g. the
    released ``genotypes.py`` entry of a MobileNetV2-space network) where the space offers one
    (``space.genotype_source(arch, name, comment)``); records its name and how to use it."""
    export = getattr(space, "genotype_source", None)
    if not callable(export):
        return None
    name = _genotype_name(summary)
    vote = summary.get("vote") or {}
    comment = [f"found by harness search: space {summary['space']}, {summary['strategy']} guided by "
               f"{summary['objective']}" + (f" (rule {vote['rule']}, ties to the {vote['ties']})"
                                            if len(summary.get("best_score") or ()) > 1 else "")
               + f", budget {summary['budget']}"
               + (f" + {summary['n_initial']} initial" if summary["accounting"] == "released" else "")
               + f", seed {summary['seed']}"]
    comment += [f"{c}: {summary['found_' + c]:,.0f}" for c in RESOURCE_COUNTS if "found_" + c in summary]
    text, use = export(arch, name, comment)
    path = out_dir / "genotype.py"
    path.write_text(text)
    summary["genotype_name"], summary["genotype_use"] = name, use
    return path


def _genotype_name(summary: Mapping[str, Any]) -> str:
    """A Python identifier naming the found architecture, e.g. ``zsnas_evolution_vote_sjw_official_s0``
    (``..._rank_sum_s0`` under ``vote.rule=rank_sum``, so the two searches' genotypes can sit side
    by side in one genotypes.py)."""
    import re

    rule = (summary.get("vote") or {}).get("rule")
    raw = f"zsnas_{summary['strategy']}_{summary['objective']}{'_rank_sum' if rule == 'rank_sum' else ''}" \
          f"_s{summary['seed']}"
    return re.sub(r"\W", "_", raw)


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as None (strict JSON has no NaN/Infinity): a found
    architecture outside an offline table has no accuracy.  Numpy values become plain ones
    (:func:`harness.jsonio.strict`)."""
    return strict(value)[0]


def _machine(cfg: SearchConfig, objective: Objective) -> str:
    """Where the proxy seconds were measured (the device and, for the CPU, the torch threads)."""
    import platform

    import torch

    if objective.name == VALACC:
        return "benchmark training time"
    dev = resolve_device(cfg.device)
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    return f"cpu ({platform.machine()}, {torch.get_num_threads()} thread(s))"


def _device(cfg: SearchConfig, objective: Objective) -> str:
    """The device the candidates' wall seconds were measured on, for a reader comparing another
    machine: ``cuda (<GPU name>)`` or ``cpu (<CPU model>, <n> torch thread(s))``."""
    import platform

    import torch

    if objective.name == VALACC:
        return "none (benchmark training time)"
    dev = resolve_device(cfg.device)
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((ln.split(":", 1)[1].strip() for ln in fh if ln.startswith("model name")), model)
    except OSError:
        pass
    return f"cpu ({model}, {torch.get_num_threads()} torch thread(s))"


def _fmt(ev: Evaluation) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in ev.values) + ")"


def _search_run(cfg: SearchConfig, output_dir: str | Path | None, target: tuple[str, str] | None) -> dict[str, Any]:
    """The search's run, opened before its work: name, sweep parent, tags."""
    from ..tracking import GROUP_TAG, ROLE_TAG, SWEEP_TAG, provenance_tags, run_name

    tags = provenance_tags(Path(__file__).resolve().parents[2], {})
    group = run_name(cfg.search.name, objective_from_cfg(cfg).name, cfg.space.name,
                     "/".join(target) if target else f"{cfg.dataset.images}-no-ground-truth")
    tags.update({ROLE_TAG: "search", GROUP_TAG: group})
    if cfg.tracking.parent_run_id:
        tags[SWEEP_TAG] = cfg.tracking.parent_run_id
    return {"name": run_name(group, f"s{cfg.seed}"), "parent_run_id": cfg.tracking.parent_run_id, "tags": tags}


def _track(job, cfg: SearchConfig, summary: Mapping[str, Any], steps: Sequence[Mapping[str, Any]],
           artifacts) -> None:
    """Log the finished search into its open run ``job``: params, final metrics, the trajectory
    as step metrics (``best_accuracy``, ``search_cost_s`` at step i), records and figures."""
    from ..reports.artifacts import log_artifacts

    job.set_tags({"found_arch": summary["arch"]})
    truth = summary["target"] is not None
    params = {"space": summary["space"], "dataset": summary["images"],
              "target": "/".join(summary["target"]) if truth else "none (no ground truth)",
              "strategy": summary["strategy"], "objective": summary["objective"], "budget": summary["budget"],
              "accounting": summary["accounting"], "n_initial": summary["n_initial"],
              "seed": summary["seed"], "score_seed": summary["score_seed"], "ask_batch": summary["ask_batch"],
              "batch_size": cfg.batch.size, "batch_kind": cfg.batch.kind.value}
    if cfg.batch.resolution is not None:
        params["batch_resolution"] = cfg.batch.resolution
    limits = summary["constraints"]
    if any(limits[k] is not None for k in LIMIT_CAPABILITY):  # only the limits set (and then the redraw bound)
        params.update({f"constraints.{k}": v for k, v in limits.items() if v is not None})
    params.update({f"strategy.{k}": v for k, v in (summary["strategy_params"] or {}).items()})
    if proxies.is_aggregator(summary["objective"]):
        params.update({"vote.rule": summary["vote"]["rule"], "vote.ties": summary["vote"]["ties"]})
    job.log_params(params)
    accuracy = ("test_accuracy", "test_error", "regret") if truth else ()
    metrics = {k: float(summary[k]) for k in (*accuracy, "n_scored", "n_computed", "n_failed", "wall_s", "n_asked",
                                               *(f"n_rejected_{kind}" for kind in REJECTION_KINDS))}
    extra = ("cost_per_candidate_s", "ask_wall_s", *(f"found_{c}" for c in RESOURCE_COUNTS))
    metrics.update({k: float(summary[k]) for k in extra if k in summary and math.isfinite(float(summary[k]))})
    job.log_metrics(metrics)
    series = {"search_cost_s": [(s["step"], s["cost_s"]) for s in steps]}
    if truth:
        series = {"best_accuracy": [(s["step"], s["best_accuracy"]) for s in steps], **series}
    job.log_series(series)
    log_artifacts(job, [write_config(cfg, Path(artifacts[0]).parent / "config.yaml"), *artifacts])


#: the keys of the final JSON line of ``harness search``
SUMMARY_KEYS = ("arch", "test_accuracy", "regret", "search_cost_s", "n_scored", "n_computed", "wall_s", "space",
                "images", "target", "strategy", "objective", "seed")
#: the keys that line adds where the summary has them (the found architecture's counts, the cost
#: per candidate and its device, why there is no accuracy, the exported genotype)
OPTIONAL_SUMMARY_KEYS = ("found_flops", "found_macs", "found_params", "found_model_size", "cost_per_candidate_s",
                         "device", "accuracy_note", "genotype_file")
