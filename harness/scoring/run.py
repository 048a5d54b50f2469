"""The scoring job: ``run(cfg) -> dict``.

Scores a selection of architectures with the configured proxies on one batch, through the
durable score store (a stored score is never recomputed), looks up the ground truth, computes
Kendall's tau-b and Spearman's rho per proxy and per (dataset, split), writes the records the
report reads (``scores.csv``, ``metrics.csv``, ``summary.json``) into the output directory, and
logs the job to the tracker.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np
import torch

import proxies
import spaces
from spaces.base import seed_for
from spaces.datafiles import checksums, verification

from .. import data
from ..jsonio import write_json
from ..config import SPACE_DATA_KEYS, ConfigError, RunConfig, load, requested, space_kwargs
from ..progress import Progress
from .store import Record, ScoreKey, ScoreStore, StoreError, UnionStore, merge_stores

log = logging.getLogger(__name__)

#: Bump when a change to the scoring code changes stored numbers (it is part of every store key).
SCORE_VERSION = "2"
#: the tag a job's run gets when checksum verification was off (``ZSNAS_DATA_VERIFY=0``)
DATA_VERIFY_TAG = "data.verify"


def resolve_device(name: str, shard: tuple[int, int] = (0, 1)) -> torch.device:
    """``auto`` = the GPU when there is one, else the CPU; with several GPUs in the process,
    shard ``i`` takes GPU ``i mod count`` (so N local shard workers use N GPUs)."""
    if name in (None, "auto"):
        if not torch.cuda.is_available():
            return torch.device("cpu")
        count = torch.cuda.device_count()
        return torch.device(f"cuda:{shard[0] % count}" if count > 1 else "cuda")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} was asked for but CUDA is not available; use device=auto or cpu")
    return dev


def split_proxies(names: Iterable[str]) -> tuple[list[str], list[str]]:
    """(the proxies to score per network, the votes), by canonical name (a spec like
    ``wrcor(power=2)`` is normalised); a vote's components are scored too."""
    names = list(dict.fromkeys(names))
    aggregated = [n for n in names if proxies.is_aggregator(n)]
    votes = list(dict.fromkeys(proxies.get_aggregator(n).name for n in aggregated))
    scored = [proxies.get_proxy(n).name for n in names if n not in aggregated]  # unknown name -> the valid ones
    for v in votes:
        scored += [c for c in proxies.components_of(v) if c not in scored]
    return list(dict.fromkeys(scored)), votes


def archs_from_file(space, *, file: str, column: str, data_dir=None) -> list:
    """The architectures listed in a data file's column (e.g. the Suite-Zero subset of NB201)."""
    import pandas as pd

    from spaces.datafiles import data_file

    path = data_file(file, data_dir)
    return [space.parse(a) for a in dict.fromkeys(pd.read_csv(path, usecols=[column])[column].astype(str))]


def select_archs(space, *, select: str, n: int | None, seed: int, population: list | None = None) -> list:
    """``first`` n in official index order, a ``random`` sample of n (seeded), or ``all`` — of the
    whole space, or of ``population`` when given (e.g. the architectures of a data file).  An
    ``n`` larger than the population is a :class:`ConfigError` naming the largest allowed value."""
    if population is not None:
        population = list(population)
        order = {space.to_str(a): i for i, a in enumerate(population)}
        try:  # keep official index order where the space has one
            population.sort(key=lambda a: space.index(a))
        except (AttributeError, KeyError):
            population.sort(key=lambda a: order[space.to_str(a)])
    select = getattr(select, "value", select)
    if select == "all":
        return population if population is not None else list(space.enumerate())
    if select not in ("first", "random"):
        raise ConfigError(f"archs.select={select!r} is not allowed: one of first, random, all")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ConfigError(f"archs.n={n!r} is not allowed: a positive integer for archs.select={select}")
    if select == "first":
        out = []
        for arch in (population if population is not None else space.enumerate()):
            out.append(arch)
            if len(out) == n:
                return out
        _too_many(space, n, len(out), population is not None)
    population = population if population is not None else list(space.enumerate())
    if n > len(population):
        _too_many(space, n, len(population), True)
    # a prefix of one seeded permutation: the n=500 sample is part of the n=1000 one, so a
    # larger run reuses every stored score of a smaller one
    idx = np.random.default_rng(seed).permutation(len(population))[:n]
    return [population[i] for i in sorted(idx)]


def _too_many(space, n: int, available: int, from_file: bool) -> None:
    where = "the population of archs.file" if from_file else f"space {space.name!r}"
    raise ConfigError(f"archs.n={n} is not allowed: {where} has {available} architectures, so the largest "
                      f"allowed value is {available} (or archs.select=all)")


def parse_shard(text: Any) -> tuple[int, int]:
    """``"i/n"`` (0 <= i < n) -> (i, n); None -> (0, 1).

    >>> parse_shard("1/4"), parse_shard(None)
    ((1, 4), (0, 1))
    """
    if text in (None, "", "0/1"):
        return (0, 1)
    try:
        i, n = (int(v) for v in str(text).split("/"))
    except ValueError:
        raise ConfigError(f"shard={text!r} is not allowed: null or i/n with 0 <= i < n (e.g. 0/2)") from None
    if not 0 <= i < n:
        raise ConfigError(f"shard={text!r} is not allowed: null or i/n with 0 <= i < n (e.g. 0/2)")
    return (i, n)


def shard_store_path(shards_dir: str | Path, shard: tuple[int, int]) -> Path:
    """The per-shard store of ``shard=(i, n)`` under ``store.shards``: ``shard-<i>-of-<n>.sqlite``."""
    i, n = shard
    return Path(shards_dir) / f"shard-{i}-of-{n}.sqlite"


def open_store(cfg: RunConfig, shard: tuple[int, int]) -> tuple[ScoreStore | UnionStore, dict[str, int] | None]:
    """(the store a job scores through, the merge counts or None).

    Without ``store.shards``: the main store ``store.path`` (shards share it: fine on one
    machine).  With ``store.shards`` (a directory, e.g. on a cluster's shared filesystem, where
    one SQLite file must not be written by several nodes): a sharded job (n > 1) writes its own
    ``<store.shards>/shard-<i>-of-<n>.sqlite`` and looks scores up there and in the main store
    (opened read-only, when it exists), so nothing scored anywhere is computed again; an
    unsharded job first merges every ``<store.shards>/*.sqlite`` into the main store (a
    computed score beats a recorded failure, nothing else is replaced) and returns the counts."""
    store_path = Path(cfg.store.path)
    shards_dir = cfg.store.shards
    if not shards_dir:
        return ScoreStore(store_path), None
    if shard[1] > 1:
        write = ScoreStore(shard_store_path(shards_dir, shard))
        try:
            read_also = [ScoreStore(store_path, readonly=True)] if store_path.is_file() else []
        except BaseException:
            write.close()
            raise
        log.info("shard %d/%d writes %s%s", shard[0], shard[1], write.path,
                 f" and reads {store_path} too" if read_also else "")
        return UnionStore(write, read_also), None
    def logged(src: str, counts: dict[str, int] | None) -> None:
        if counts is not None:
            log.info("merged %s into %s: %s", src, store_path, " ".join(f"{k}={v}" for k, v in counts.items()))

    skipped: list[tuple[str, BaseException]] = []

    def unreadable(src: str, err: BaseException) -> None:
        skipped.append((src, err))
        log.error("shard store %s not merged: %s", src, err)

    sources = sorted(Path(shards_dir).glob("*.sqlite"))
    main = ScoreStore(store_path)
    try:
        merged = merge_stores(main, sources, logged, unreadable)
        log.info("merged %d shard stores from %s: %d added, %d replaced (failure -> score), %d kept",
                 merged["files"], shards_dir, merged["added"], merged["replaced"], merged["kept"])
        if skipped:
            raise StoreError(gather_error(store_path, shards_dir, merged, skipped), path=str(shards_dir),
                             cause="gather")
    except BaseException:
        main.close()
        raise
    return main, merged


def gather_error(store_path, shards_dir, merged: Mapping[str, int], skipped) -> str:
    """The message of a gather job that could not read every shard store: each one named with its
    cause, what was merged, and what to do."""
    names = "; ".join(f"[{i}] {err}" for i, (_, err) in enumerate(skipped, 1))  # each names its file
    return (f"gather: {len(skipped)} shard store(s) in {shards_dir} could not be read and were NOT merged -- "
            f"{names}. The {merged['files']} readable shard store(s) were merged into {store_path} "
            f"({merged['added']} added, {merged['replaced']} replaced, {merged['kept']} kept) and stay there. "
            "Restore or move aside each shard named above, then rerun the gather job: merging is idempotent "
            "and a job scores only what is still missing (a shard moved aside is scored again)")


def score_params(name: str, *, sampling: str, device: torch.device, space_kw: Mapping[str, Any],
                 resolution: int | None = None) -> str:
    """The canonical string of every other knob that changes a proxy's score (part of the key;
    ``resolution``, the batch's image side, only when set: the keys of the dataset's own size are
    those written before the setting existed)."""
    info = proxies.get_proxy(name)
    knobs = {"proxy": info.params, "sampling": sampling, "device": device.type, "init": "sha256(seed:arch)",
             "space": dict(space_kw)}
    if resolution is not None:
        knobs["resolution"] = int(resolution)
    if device.type == "cuda" and torch.backends.cudnn.allow_tf32:  # (tf32=true) rounds differently: its own key
        knobs["tf32"] = True
    return json.dumps(knobs, sort_keys=True, separators=(",", ":"))


def key_maker(*, space, proxy_names: list[str], dataset: str, seed: int, batch_size: int, input_kind: str,
              sampling: str, device: torch.device, space_kw: Mapping[str, Any],
              resolution: int | None = None) -> Callable[[str], dict[str, ScoreKey]]:
    """A function: arch string -> proxy -> the store key of that score (each proxy's params
    string computed once, not per architecture)."""
    params = {p: score_params(p, sampling=sampling, device=device, space_kw=space_kw, resolution=resolution)
              for p in proxy_names}

    def keys_of(arch_str: str) -> dict[str, ScoreKey]:
        return {p: ScoreKey(space=space.name, arch=arch_str, dataset=dataset, proxy=p, seed=seed,
                            batch_size=batch_size, input_kind=input_kind, code_version=SCORE_VERSION,
                            params=params[p]) for p in proxy_names}

    return keys_of


def score_keys(*, space, archs: list, **kw: Any) -> dict[str, dict[str, ScoreKey]]:
    """arch string -> proxy -> the store key of that score (the keywords of :func:`key_maker`)."""
    keys_of = key_maker(space=space, **kw)
    return {arch_str: keys_of(arch_str) for arch_str in map(space.to_str, archs)}


class NetworkScorer:
    """Scores one architecture's missing proxies on one batch and commits them to the store.

    The batch is loaded on first use (a job that finds everything stored never loads it).  A
    failure to build or score is recorded as an outcome for every missing proxy, never raised."""

    def __init__(self, *, space, store: ScoreStore, dataset: str, seed: int, batch_size: int, input_kind: str,
                 sampling: str, split: str, device: torch.device, data_dir=None, resolution: int | None = None) -> None:
        self.space, self.store, self.dataset, self.seed = space, store, dataset, seed
        self._batch_args = dict(kind=input_kind, split=split, sampling=sampling, data_dir=data_dir, device=device,
                                resolution=resolution)
        self.batch_size, self.device = batch_size, device
        self._batch = None

    def batch(self):
        if self._batch is None:
            self._batch = data.batch(self.dataset, self.batch_size, seed=self.seed, **self._batch_args)
        return self._batch

    def score(self, arch_str: str, keys: Mapping[str, ScoreKey], missing: Iterable[str]) -> dict[str, Record]:
        """Compute ``missing`` proxies of ``arch_str`` (keys by proxy), store them in one
        transaction, and return their records."""
        missing = list(missing)
        inputs, targets = self.batch()
        try:
            net = self.space.build(arch_str, data.num_classes(self.dataset),
                                   seed=seed_for(self.seed, arch_str)).to(self.device)
            outcomes = proxies.compute_outcomes(missing, net, inputs, targets, space=self.space,
                                                seed=seed_for(self.seed, f"{arch_str}:proxy"))
        except Exception as err:  # a build failure is recorded for every proxy of the arch
            msg = f"{type(err).__name__}: {err}"
            log.error("architecture %s failed: %s", arch_str, msg)
            outcomes = {p: proxies.ProxyOutcome(math.nan, "error", 0.0, 0, msg) for p in missing}
        records = {p: Record(keys[p], o.value, o.status, o.seconds, o.n_skipped, o.message)
                   for p, o in outcomes.items()}
        self.store.put_many(records.values())
        return records


def pass_seconds(names: Iterable[str], records: Mapping[str, Record]) -> float:
    """The proxy seconds of one architecture's ``names``: each distinct pass counted once (the
    proxies sharing a pass record that pass's seconds each)."""
    passes: dict[tuple, float] = {}
    for n in names:
        group = proxies.pass_group(proxies.get_proxy(n))
        passes[group] = max(passes.get(group, 0.0), records[n].seconds)
    return float(sum(passes.values()))


def engine_options(cfg: RunConfig) -> dict[str, Any] | None:
    """The ``engine`` config as :class:`proxies.engine.Engine` keywords, or None when disabled
    (``auto`` = the engine's device-dependent default)."""
    if not cfg.engine.enabled:
        return None
    auto = lambda v: None if v in (None, "auto") else int(v)  # noqa: E731
    return {"group_size": auto(cfg.engine.group), "workers": auto(cfg.engine.workers)}


def score_all(*, space, keys_for: Mapping[str, Mapping[str, ScoreKey]], store: ScoreStore, dataset: str,
              seed: int, batch_size: int, input_kind: str, sampling: str, split: str,
              device: torch.device, data_dir, retry_failed: bool, shard: tuple[int, int],
              engine: Mapping[str, Any] | None, progress_every: int = 25,
              resolution: int | None = None) -> dict[str, int]:
    """Score every key of ``keys_for`` missing from ``store``; return counts.  Records are
    committed in one transaction per architecture (one-architecture path) or per group (the
    engine) as soon as they are scored, so an interrupted job loses at most the group in flight
    and a re-run scores only what is missing.  Failed outcomes (error, oom) are stored like
    scores; ``retry_failed`` recomputes them (e.g. after freeing memory).

    With ``engine`` (:func:`engine_options`), the proxies the engine supports on this space (the
    response-correlation family on NB201) are scored by :class:`proxies.engine.Engine`, many
    architectures per pass; every other proxy by the one-architecture path.

    ``shard=(i, n)`` scores only the i-th of n interleaved slices of the architectures, so n
    workers can fill one store in parallel (the job that finds everything stored reports)."""
    from proxies.engine import supports

    from .builds import make_engine

    stored = store.get_many([k for ks in keys_for.values() for k in ks.values()])
    if retry_failed:
        stored = {k: r for k, r in stored.items() if not r.failed}
    i_shard, n_shard = shard
    todo = {a: ks for j, (a, ks) in enumerate(keys_for.items())
            if j % n_shard == i_shard and any(k not in stored for k in ks.values())}
    log.info("%d architectures: %d to score, the rest are stored", len(keys_for), len(todo))
    if not todo:
        return {"computed": 0, "cached": len(keys_for)}
    scorer = NetworkScorer(space=space, store=store, dataset=dataset, seed=seed, batch_size=batch_size,
                           input_kind=input_kind, sampling=sampling, split=split, device=device, data_dir=data_dir,
                           resolution=resolution)
    inputs, targets = scorer.batch()
    names = list(dict.fromkeys(p for ks in todo.values() for p in ks))
    by_engine = [p for p in names if engine is not None and supports(space, p)]
    if by_engine:
        eng, workers = make_engine(space, by_engine, num_classes=data.num_classes(dataset), device=device, **engine)
        jobs = [(a, seed_for(seed, a)) for a, ks in todo.items() if any(ks[p] not in stored for p in by_engine)]
        log.info("engine: %s for %d architectures, %d per group, %d build worker(s), on %s",
                 by_engine, len(jobs), eng.group_size, workers, device)
        with Progress(len(jobs), logger=log, verb="engine: scored", what="archs", every=progress_every) as bar:
            for group in eng.run(jobs, inputs, targets):
                store.put_many(Record(todo[a][p], o.value, o.status, o.seconds, o.n_skipped, o.message)
                               for a, outcomes in group for p, o in outcomes.items() if todo[a][p] not in stored)
                bar.update(len(group))
    rest = {a: [p for p, k in ks.items() if p not in by_engine and k not in stored] for a, ks in todo.items()}
    rest = {a: ps for a, ps in rest.items() if ps}
    with Progress(len(rest), logger=log, verb="scored", what="archs", every=progress_every) as bar:
        for arch_str, missing in rest.items():
            scorer.score(arch_str, todo[arch_str], missing)
            bar.update()
    return {"computed": len(todo), "cached": len(keys_for) - len(todo)}


def vote_records(space, archs, votes: list[str], records: Mapping[tuple[str, str], Record]) -> dict:
    """(arch, name + suffix) -> a Record for every aggregator (vote) over ``archs``, in each of
    its orderings (for a majority vote: ``vote``, the Copeland score, and ``vote@comparator``, the
    released notebooks' sort; see :mod:`proxies.aggregators`).  A vote's seconds are its
    components' distinct passes (components sharing a pass count it once)."""
    out = {}
    arch_strs = [space.to_str(a) for a in archs]
    for v in votes:
        agg = proxies.get_aggregator(v)
        comps = agg.leaves
        comp_scores = {c: np.array([records[(a, c)].value for a in arch_strs], dtype=float) for c in comps}
        per_arch = []  # (first component's key, seconds, message) of every arch
        for a in arch_strs:
            recs = {c: records[(a, c)] for c in comps}
            failed = [f"{c}: {r.message or r.status}" for c, r in recs.items() if r.failed]
            per_arch.append((recs[comps[0]].key, pass_seconds(comps, recs), "; ".join(failed)))
        for suffix, (ordering, _) in agg.orderings.items():
            values = agg.scores(comp_scores, ordering)
            for a, value, (key, seconds, message) in zip(arch_strs, values, per_arch):
                key = dataclasses.replace(key, proxy=v + suffix, params=f"{agg.rule} over {list(agg.components)}")
                out[(a, v + suffix)] = Record(key, float(value), "ok", seconds, 0, message)
    return out


def higher_is_better(name: str) -> bool:
    """The sign convention of a proxy, or of an aggregator's ordering (``vote@comparator``):
    aggregate scores are higher-is-better."""
    base = name.split("@", 1)[0]
    return True if proxies.is_aggregator(base) else proxies.get_proxy(base).higher_is_better


def _rows(space, archs, proxy_names, records, truth, dataset, seed):
    from harness.reports.scores import truth_column  # pandas/seaborn: imported when a scoring job reports, not by a search

    rows = []
    for j, arch in enumerate(archs):
        arch_str = space.to_str(arch)
        for p in proxy_names:
            r = records[(arch_str, p)]
            row = {"space": space.name, "dataset": dataset, "seed": seed, "arch_index": _index(space, arch),
                   "arch": arch_str, "proxy": p, "score": r.value, "status": r.status, "seconds": r.seconds,
                   "n_skipped": r.n_skipped, "message": r.message}
            for (ds, sp), vals in truth.items():
                row[truth_column(ds, sp)] = float(vals[j])
            rows.append(row)
    return rows


def _index(space, arch) -> int:
    """The benchmark's index of ``arch``, or -1 for a space/architecture without one."""
    try:
        return int(space.index(arch))
    except (AttributeError, KeyError):
        return -1


def compute_metrics(*, space, archs, proxy_names, records, truth, bench, dataset, seed) -> list[dict]:
    """One row per (target, proxy); ``truth`` maps each (dataset, split) target to the accuracies."""
    from harness.reports.metrics import rank_metrics  # scipy.stats: imported when needed, not by a search

    out = []
    arch_strs = [space.to_str(a) for a in archs]
    for (ds, sp), acc in truth.items():
        for p in proxy_names:
            recs = [records[(a, p)] for a in arch_strs]
            scores = np.array([r.value for r in recs], dtype=float)
            failed = sum(r.failed for r in recs)
            m = rank_metrics(scores, acc, higher_is_better=higher_is_better(p))
            secs = [r.seconds for r in recs if not r.failed]
            out.append({"space": space.name, "dataset": ds, "split": sp, "proxy": p, "seed": seed,
                        "image_dataset": dataset, "tau": m.tau, "rho": m.rho, "n_archs": m.n, "n_nan": m.n_nan,
                        "n_inf": m.n_inf, "n_failed": failed,
                        "sec_per_arch": float(np.mean(secs)) if secs else math.nan,
                        "protocol": bench.protocol(ds, sp)})
    return out


def space_from_cfg(cfg: RunConfig):
    """(the space, the keyword arguments that shape its networks: part of every score key)."""
    kwargs = space_kwargs(cfg.space)
    space = spaces.get_space(cfg.space.name, data_dir=cfg.data_dir, **kwargs)
    return space, {k: v for k, v in kwargs.items() if k not in SPACE_DATA_KEYS}


def targets_from_cfg(cfg: RunConfig, space) -> list[tuple[str, str]]:
    """The ground-truth targets: ``dataset.targets`` (by default the space's targets for the
    batch's image dataset); a space without ground truth for those images is an error."""
    if cfg.dataset.targets is None:
        raise ConfigError(f"dataset.targets=null is not allowed: space {space.name!r} has no ground-truth targets "
                          f"for images {cfg.dataset.images!r} (it has targets for {sorted(cfg.space.targets)}); "
                          "choose dataset= among those or set dataset.targets=[[dataset,split],...]")
    return [tuple(t) for t in cfg.dataset.targets]


def archs_from_cfg(cfg: RunConfig, space) -> list:
    """The job's architectures: ``archs.select``/``n``/``seed`` over the space, or over the
    population of ``archs.file``."""
    population = (archs_from_file(space, file=cfg.archs.file, column=cfg.archs.column, data_dir=cfg.data_dir)
                  if cfg.archs.file else None)
    return select_archs(space, select=cfg.archs.select, n=cfg.archs.n, seed=cfg.archs.seed, population=population)


def check_job(cfg: RunConfig) -> int:
    """Everything a scoring job checks before its work, without the work: the space, the
    selection, the targets and each proxy name; returns the number of architectures."""
    space, _ = space_from_cfg(cfg)
    split_proxies(requested(cfg))
    for t in targets_from_cfg(cfg, space):
        space.benchmark.protocol(*t)
    return len(archs_from_cfg(cfg, space))


def run(cfg: Any, *, tracker=None, output_dir: str | Path | None = None) -> dict[str, Any]:
    """Score, evaluate, record and track one job described by ``cfg`` (a composed Hydra config,
    a :class:`~harness.config.RunConfig`, or a nested mapping with its keys).  The configuration
    is validated first (:func:`harness.config.load`): a value that is not allowed is a
    :class:`~harness.config.ConfigError` before any work.  With a ``tracker`` the job's run is
    opened before the work and closed after it (see :mod:`harness.tracking`, "Run layout")."""
    cfg = load(cfg, RunConfig)
    if tracker is None:
        return _run(cfg, None, None, output_dir)
    with tracker.run(**_job_run(cfg, output_dir)) as job:
        return _run(cfg, tracker, job, output_dir)


def _run(cfg: RunConfig, tracker, job, output_dir: str | Path | None) -> dict[str, Any]:
    import pandas as pd  # harness layer: fine to import here

    data_dir = cfg.data_dir
    space, space_kw = space_from_cfg(cfg)
    names = requested(cfg)
    scored, votes = split_proxies(names)
    dataset = cfg.dataset.images
    targets = targets_from_cfg(cfg, space)
    seed, batch_size = cfg.seed, cfg.batch.size
    input_kind, sampling, split = cfg.batch.kind.value, cfg.batch.sampling.value, cfg.batch.split
    shard = parse_shard(cfg.shard)
    device = resolve_device(cfg.device, shard)
    archs = archs_from_cfg(cfg, space)
    bench = space.benchmark
    for t in targets:
        bench.protocol(*t)  # unknown (dataset, split) -> error listing the valid ones

    out_dir = Path(output_dir or ".")
    out_dir.mkdir(parents=True, exist_ok=True)
    keys_for = score_keys(space=space, archs=archs, proxy_names=scored, dataset=dataset, seed=seed,
                          batch_size=batch_size, input_kind=input_kind, sampling=sampling, device=device,
                          space_kw=space_kw, resolution=cfg.batch.resolution)
    store, merged = open_store(cfg, shard)
    with store:
        counts = score_all(space=space, keys_for=keys_for, store=store, dataset=dataset, seed=seed,
                           batch_size=batch_size, input_kind=input_kind, sampling=sampling, split=split,
                           device=device, data_dir=data_dir, retry_failed=cfg.retry_failed,
                           shard=shard, engine=engine_options(cfg), resolution=cfg.batch.resolution)
        if merged is not None:
            counts["merged"] = merged
        keys = {(k.arch, k.proxy): k for ks in keys_for.values() for k in ks.values()}
        got = store.get_many(keys.values())
    missing = [k for k in keys.values() if k not in got]
    if missing and shard[1] > 1:
        log.info("shard %d/%d done; %d scores still missing (other shards): no records written",
                 shard[0], shard[1], len(missing))
        return {"space": space.name, "dataset": dataset, "seed": seed, "n_archs": len(archs),
                "proxies": names, "shard": list(shard), **counts, "missing": len(missing), "metrics": []}
    if missing:
        raise RuntimeError(f"{len(missing)} scores are missing from the store after scoring (e.g. {missing[0]})")
    records = {sk: got[k] for sk, k in keys.items()}
    records.update(vote_records(space, archs, votes, records))
    proxy_names = [n for n in names if n not in votes] + [c for c in scored if c not in names]
    proxy_names += [v + suffix for v in votes for suffix in proxies.get_aggregator(v).orderings]

    truth = {t: bench.lookup_many(archs, *t) for t in targets}
    metrics = compute_metrics(space=space, archs=archs, proxy_names=proxy_names, records=records, truth=truth,
                              bench=bench, dataset=dataset, seed=seed)
    scores_df = pd.DataFrame(_rows(space, archs, proxy_names, records, truth, dataset, seed))
    metrics_df = pd.DataFrame(metrics)
    scores_path, metrics_path = out_dir / "scores.csv", out_dir / "metrics.csv"
    scores_df.to_csv(scores_path, index=False)
    metrics_df.to_csv(metrics_path, index=False)
    summary = {"space": space.name, "dataset": dataset, "seed": seed, "n_archs": len(archs),
               "proxies": proxy_names, "device": device.type, "shard": list(shard), **counts,
               "data_verify": verification(), "metrics": metrics}
    write_json(out_dir / "summary.json", summary)  # strict JSON: NaN/inf as null, counted under "nonfinite"
    for m in metrics:
        log.info("%-16s %-15s %-6s tau=%.4f rho=%.4f n=%d nan=%d inf=%d %.2f s/arch", m["proxy"], m["dataset"],
                 m["split"], m["tau"], m["rho"], m["n_archs"], m["n_nan"], m["n_inf"], m["sec_per_arch"])
    if job is not None:
        data_files = [getattr(bench, "relpath", None), data.DATASETS[dataset].file]
        _track(tracker, job, cfg, metrics, summary, [scores_path, metrics_path], out_dir,
               checksums([f for f in data_files if f], data_dir))
    return summary


def _job_run(cfg: RunConfig, output_dir: str | Path | None) -> dict[str, Any]:
    """The job's run, opened before its work: name, sweep parent, tags (provenance; the data
    hashes follow at the end)."""
    from ..tracking import ROLE_TAG, SWEEP_TAG, provenance_tags, run_name

    tags = provenance_tags(Path(__file__).resolve().parents[2], {})
    tags[ROLE_TAG] = "job"
    if cfg.tracking.parent_run_id:
        tags[SWEEP_TAG] = cfg.tracking.parent_run_id
    name = run_name(cfg.space.name, cfg.dataset.images, f"s{cfg.seed}", Path(output_dir or ".").resolve().name)
    return {"name": name, "parent_run_id": cfg.tracking.parent_run_id, "tags": tags}


def _proxy_params(name: str) -> dict[str, Any]:
    """A proxy's own parameters as params ``proxy.<key>`` (a spec's values over the registered
    defaults); a vote's components and rule.  Ordering suffixes (``vote_sjw@comparator``) are
    the vote's."""
    base = name.split("@", 1)[0]
    try:
        if proxies.is_aggregator(base):
            agg = proxies.get_aggregator(base)
            return {"proxy.components": ",".join(agg.components), "proxy.rule": agg.rule,
                    "proxy.ordering": name[len(base):].lstrip("@") or "default"}
        return {f"proxy.{k}": v for k, v in proxies.get_proxy(name).params.items()}
    except Exception:  # noqa: BLE001 -- a name the registry no longer knows: its name is the record
        return {}


def _track(tracker, job, cfg, metrics, summary, artifacts: Iterable[Path], out_dir: Path,
           data_checksums: Mapping[str, str]) -> None:
    """Log the finished job into its open run ``job`` and one child run per evaluated (space,
    proxy, dataset, split, seed)."""
    from harness.reports.artifacts import log_artifacts, log_job_figures

    from ..config import write_config
    from ..tracking import GROUP_TAG, ROLE_TAG, SWEEP_TAG, provenance_tags, run_name

    provenance = provenance_tags(Path(__file__).resolve().parents[2], data_checksums)
    if summary.get("data_verify") == "off":  # ZSNAS_DATA_VERIFY=0: the data files were not checked
        provenance[DATA_VERIFY_TAG] = "off"
    job.set_tags(provenance)
    common = {"space": summary["space"], "seed": summary["seed"], "n_archs": summary["n_archs"],
              "batch_size": cfg.batch.size, "batch_kind": cfg.batch.kind.value, "images": summary["dataset"]}
    job.log_params({**common, "proxies": ",".join(summary["proxies"]),
                    "archs_select": cfg.archs.select.value, "device": summary["device"], "profile": cfg.profile})
    job.log_metrics({"n_evaluations": len(metrics), "computed": summary["computed"], "cached": summary["cached"]})
    log_artifacts(job, [write_config(cfg, out_dir / "config.yaml"), *artifacts])
    log_job_figures(job, out_dir)
    tags = {**provenance, ROLE_TAG: "evaluation"}
    if cfg.tracking.parent_run_id:
        tags[SWEEP_TAG] = cfg.tracking.parent_run_id
    for m in metrics:
        group = run_name(m["proxy"], m["space"], f"{m['dataset']}/{m['split']}")
        with tracker.run(run_name(group, f"s{m['seed']}"), parent_run_id=job.run_id,
                         tags={**tags, GROUP_TAG: group, "protocol": m["protocol"]}) as handle:
            handle.log_params({**common, "proxy": m["proxy"], "dataset": m["dataset"], "split": m["split"],
                               **_proxy_params(m["proxy"])})
            handle.log_metrics({"kendall_tau": m["tau"], "spearman_rho": m["rho"], "n_nan": m["n_nan"],
                                "n_inf": m["n_inf"], "n_failed": m["n_failed"], "sec_per_arch": m["sec_per_arch"]})
