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
* **Output.** ``search.json`` (the summary), ``trajectory.csv`` (per step: the architecture, its
  scores, whether it was new / computed, the cost so far and the incumbent with its accuracy)
  and ``trajectory.png`` in the run directory; all logged to MLflow.  Progress goes to stderr;
  the last line of standard output is the summary as one JSON object.
"""
from __future__ import annotations

import contextlib
import csv
import json
import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import proxies

from ..config import ConfigError, SearchConfig, load, strategy_params, write_config
from ..progress import Progress
from ..reports.search import trajectory_figure
from ..scoring.run import engine_options, key_maker, pass_seconds, resolve_device, score_all, space_from_cfg
from ..scoring.store import ScoreKey, ScoreStore
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
        if proxies.is_aggregator(name):  # its own directions (e.g. vote_sjw_notebook's [+1, -1, +1])
            signs = tuple(float(x) for x in proxies.get_aggregator(name).directions())
        else:
            signs = tuple(1.0 if proxies.get_proxy(c).higher_is_better else -1.0 for c in comps)
        name = name if proxies.is_aggregator(name) else comps[0]
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

    #: what a search's cost is made of (the summary's ``cost_note``)
    cost_note = "proxy seconds of the distinct architectures scored, as measured when each was computed"

    def __call__(self, arch_strs: Sequence[str]) -> list[Result]:
        keys_for = {a: self.keys_of(a) for a in dict.fromkeys(arch_strs) if a not in self._memo}
        missing: dict[str, dict[str, ScoreKey]] = {}
        if keys_for:
            stored = self.store.get_many(k for ks in keys_for.values() for k in ks.values())
            if self.retry_failed:
                stored = {k: r for k, r in stored.items() if not r.failed}
            missing = {a: ks for a, ks in keys_for.items() if any(k not in stored for k in ks.values())}
            if missing:
                self.score(missing)
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
                        device=device, space_kw=space_kw, **batch)
    engine = engine_options(cfg)

    def score(keys_for: dict[str, dict[str, ScoreKey]]) -> None:
        with _quiet(score_all.__module__, "proxies.engine"):  # the search logs its own progress
            score_all(space=space, keys_for=keys_for, store=store, dataset=dataset, seed=cfg.score_seed,
                      split=cfg.batch.split, device=device, data_dir=cfg.data_dir, retry_failed=cfg.retry_failed,
                      shard=(0, 1), engine=engine, **batch)

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


def run_search(cfg: Any, *, tracker=None, output_dir: str | Path | None = None,
               on_step: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Run one search described by ``cfg`` (a composed ``conf/search_run.yaml``, a
    :class:`~harness.config.SearchConfig` or a mapping with its keys; validated first, so a value
    that is not allowed is a :class:`~harness.config.ConfigError` before any work);
    ``on_step(step)`` is called after each step, i.e. after each tell (tests use it to interrupt a
    run).  With a ``tracker`` the search's run is opened before the work and closed after it (see
    :mod:`harness.tracking`, "Run layout")."""
    cfg = load(cfg, SearchConfig)
    if tracker is None:
        return _run_search(cfg, None, output_dir, on_step)
    with tracker.run(**_search_run(cfg, output_dir)) as job:
        return _run_search(cfg, job, output_dir, on_step)


def _run_search(cfg: SearchConfig, job, output_dir: str | Path | None,
                on_step: Callable[[int], None] | None) -> dict[str, Any]:
    space, space_kw = space_from_cfg(cfg)
    objective = objective_from_cfg(cfg)
    strategy_cfg = strategy_params(cfg.search)
    strategy_name = cfg.search.name
    seed, budget, ask_batch = cfg.seed, cfg.budget, cfg.ask_batch
    dataset = cfg.dataset.images
    target = search_target(cfg)
    bench = space.benchmark
    bench.protocol(*target)  # unknown (dataset, split) -> error listing the valid ones
    optimum, n_table = bench.optimum(*target)
    strategy = make_strategy(strategy_name, space, objective, seed=seed, **strategy_cfg)
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

    with ScoreStore(Path(cfg.store.path)) as store:
        evaluate = make_evaluator(cfg, space=space, space_kw=space_kw, objective=objective, store=store)
        steps, seen, costed, cost, n_computed = [], set(), set(), 0.0, 0
        start = time.perf_counter()
        log.info("%s search of %s (%s, images %s), objective %s, budget %d%s, seed %d%s", strategy_name, space.name,
                 "/".join(map(str, target)), dataset, objective.name, budget,
                 f" + {n_initial} initial samples" if n_steps > budget else "", seed,
                 f", {ask_batch} architectures per ask" if ask_batch > 1 else "")

        def detail() -> str:
            if not seen:
                return "no architecture evaluated yet"
            best = f"best {objective.name} {_fmt(strategy.best()[1])}" if strategy.has_best() else "warm-up"
            return f"{len(seen)} distinct architectures ({n_computed} computed now), {best}, cost {cost:.1f} s"

        bar = Progress(n_steps, logger=log, verb="search", what="steps", every=progress_every, detail=detail)
        try:
            step = 0
            while step < n_steps:
                archs = strategy.ask(min(ask_batch, n_steps - step))
                arch_strs = [space.to_str(a) for a in archs]
                for arch, arch_str, (ev, seconds, computed) in zip(archs, arch_strs, evaluate(arch_strs)):
                    step += 1
                    strategy.tell(arch, ev)
                    phase = "initial" if step <= n_initial else "search"
                    new = arch_str not in seen
                    seen.add(arch_str)
                    if (phase == "search" or initial_counts) and arch_str not in costed:
                        costed.add(arch_str)
                        cost += seconds
                    n_computed += computed
                    best_arch = space.to_str(strategy.best()[0]) if strategy.has_best() else None
                    steps.append({"step": step, "phase": phase, "arch": arch_str,
                                  **dict(zip(objective.components, ev.values)), "failed": ev.failed, "new": new,
                                  "computed": computed, "cost_s": cost, "n_scored": len(seen),
                                  "best_arch": best_arch})
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
    wall = time.perf_counter() - start

    best_arch, best_ev = strategy.best()
    best_str = space.to_str(best_arch)
    acc_of = {a: _accuracy(bench, a, target) for a in dict.fromkeys(s["best_arch"] for s in steps) if a}
    for s in steps:
        s["best_accuracy"] = acc_of.get(s["best_arch"], math.nan)
    test_acc = acc_of[best_str]
    summary = {
        "arch": best_str, "test_accuracy": test_acc, "test_error": 100.0 - test_acc, "regret": optimum - test_acc,
        "search_cost_s": cost, "n_scored": len(seen), "n_costed": len(costed), "n_computed": n_computed,
        "budget": budget,
        "n_initial": n_initial, "accounting": accounting, "cost_note": evaluate.cost_note,
        "n_failed": sum(s["failed"] for s in steps if s["new"]), "wall_s": wall,
        "best_score": dict(zip(objective.components, best_ev.values)),
        "space": space.name, "images": dataset, "target": list(target), "optimum": optimum,
        "optimum_over": n_table, "strategy": strategy_name, "strategy_params": strategy_cfg, "ask_batch": ask_batch,
        "objective": objective.name, "vote": {"rule": objective.rule, "ties": objective.ties}, "seed": seed,
        "score_seed": None if objective.name == VALACC else cfg.score_seed,
        "protocol": bench.protocol(*target), "machine": _machine(cfg, objective),
    }
    traj_path, summary_path = out_dir / "trajectory.csv", out_dir / "search.json"
    with open(traj_path, "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(steps[0]))
        writer.writeheader()
        writer.writerows(steps)
    summary_path.write_text(json.dumps(json_safe(summary), indent=2, default=str))
    fig_paths = trajectory_figure(steps, summary, out_dir / "trajectory.png") if cfg.figure else []
    log.info("found %s: %s accuracy %.2f (optimum %.2f, regret %.2f), cost %.1f s over %d architectures, "
             "wall %.1f s", best_str, "/".join(target), test_acc, optimum, summary["regret"], cost, len(seen), wall)
    if job is not None:
        _track(job, cfg, summary, steps, [summary_path, traj_path] + fig_paths)
    return summary


def json_safe(value: Any) -> Any:
    """``value`` with every non-finite float as None (strict JSON has no NaN/Infinity): a found
    architecture outside an offline table has no accuracy."""
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


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


def _fmt(ev: Evaluation) -> str:
    return "(" + ", ".join(f"{v:.4g}" for v in ev.values) + ")"


def _search_run(cfg: SearchConfig, output_dir: str | Path | None) -> dict[str, Any]:
    """The search's run, opened before its work: name, sweep parent, tags."""
    from ..tracking import GROUP_TAG, ROLE_TAG, SWEEP_TAG, provenance_tags, run_name

    tags = provenance_tags(Path(__file__).resolve().parents[2], {})
    group = run_name(cfg.search.name, objective_from_cfg(cfg).name, cfg.space.name, "/".join(search_target(cfg)))
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
    params = {"space": summary["space"], "dataset": summary["images"], "target": "/".join(summary["target"]),
              "strategy": summary["strategy"], "objective": summary["objective"], "budget": summary["budget"],
              "accounting": summary["accounting"], "n_initial": summary["n_initial"],
              "seed": summary["seed"], "score_seed": summary["score_seed"], "ask_batch": summary["ask_batch"],
              "batch_size": cfg.batch.size, "batch_kind": cfg.batch.kind.value}
    params.update({f"strategy.{k}": v for k, v in (summary["strategy_params"] or {}).items()})
    if proxies.is_aggregator(summary["objective"]):
        params.update({"vote.rule": summary["vote"]["rule"], "vote.ties": summary["vote"]["ties"]})
    job.log_params(params)
    job.log_metrics({k: float(summary[k]) for k in ("test_accuracy", "test_error", "regret", "n_scored",
                                                     "n_computed", "n_failed", "wall_s")})
    job.log_series({"best_accuracy": [(s["step"], s["best_accuracy"]) for s in steps],
                    "search_cost_s": [(s["step"], s["cost_s"]) for s in steps]})
    log_artifacts(job, [write_config(cfg, Path(artifacts[0]).parent / "config.yaml"), *artifacts])


#: the keys of the final JSON line of ``harness search``
SUMMARY_KEYS = ("arch", "test_accuracy", "regret", "search_cost_s", "n_scored", "n_computed", "wall_s", "space",
                "images", "target", "strategy", "objective", "seed")
