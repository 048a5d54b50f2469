"""The typed configuration: one schema, its rules, and the door every job goes through.

The schema is a set of Hydra structured configs (dataclasses in Hydra's ConfigStore), so Hydra
checks every value's type while it composes the configuration (``archs.n=2.5`` is refused
before anything runs, naming the key).  ``conf/config.yaml`` (scoring) and
``conf/search_run.yaml`` (search) pick the schema ``schema=run`` / ``schema=search`` and the
groups; the YAML files under ``conf/`` hold group options and experiments, never a second copy
of a default:

* the harness's own settings and their defaults: :class:`RunConfig`, :class:`SearchConfig` here;
* a space's network settings (``space.channels`` ...): the keyword arguments of the space's
  constructor, read from its signature (:func:`space_schema`);
* a search strategy's settings (``search.population`` ...): its constructor's keyword arguments
  (:func:`strategy_schema`);
* a proxy's parameters (``wrcor(power=2)``): its registration (:mod:`proxies.registry`).

The range rules (:data:`RULES`) sit beside the schema and run once, in :func:`load`, before any
work; every refusal is a :class:`ConfigError` naming the key, the value given and what is
allowed.  The harness then reads typed objects (``cfg.batch.size``), never ``cfg.get(...)``.
"""
import dataclasses
import enum
import inspect
import math
import re
import secrets
import time
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

import proxies
import spaces

from . import data
from .errors import UserError
from proxies.vote import DEFAULT_RULE, DEFAULT_TIES, TIES
from proxies.vote import SEARCH_RULES as VOTE_RULES

from .registry import list_strategies, strategy_class

__all__ = ["ConfigError", "RunConfig", "SearchConfig", "ConstraintsConfig", "config_dir", "compose", "load", "validate", "safe_name",
           "space_schema", "strategy_schema", "space_kwargs", "strategy_params", "to_plain", "RULES",
           "SEARCH_RULES", "register_schemas"]


class ConfigError(UserError, ValueError):
    """A setting that is not allowed: the message names the key, the value given and what is allowed."""


def config_dir() -> Path:
    """The directory of the Hydra configs, found from the installed package (never from the
    working directory): ``harness/conf`` inside a built wheel, ``<project>/conf`` beside the
    package in a source checkout or an editable install."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "conf", here.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"the harness's configs (conf/config.yaml) are neither in {here / 'conf'} nor in "
                            f"{here.parent / 'conf'}: reinstall the project (make install)")


# ------------------------------------------------------------------------------------------------
# names that become paths


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


def safe_name(value: Any, key: str) -> str:
    """``value`` as a file or directory name that stays inside its output root: letters, digits
    and ``_ . + -``, not starting with a dot; ``../x`` or an absolute path is a ConfigError.

    >>> safe_name("nb201_quick", "profile")
    'nb201_quick'
    >>> safe_name("../../x", "--name")
    Traceback (most recent call last):
    ...
    harness.config.ConfigError: --name='../../x' is not allowed: a plain name (letters, digits and _ . + -, not starting with a dot) that stays inside its output directory, not a path
    """
    text = str(value)
    if not _NAME.match(text) or ".." in text:
        raise ConfigError(f"{key}={text!r} is not allowed: a plain name (letters, digits and _ . + -, not starting "
                          "with a dot) that stays inside its output directory, not a path")
    return text


def _resolve_name(value: Any) -> str:
    return safe_name(value, "profile")


def _stamp() -> str:
    """A run directory's name: the time to the second and a random suffix, so two jobs started in
    the same second never share a directory (cached per configuration, and Hydra copies the cache
    into every job of a sweep, so the jobs of one sweep agree)."""
    return time.strftime("%Y-%m-%d_%H-%M-%S") + "_" + secrets.token_hex(3)


# ------------------------------------------------------------------------------------------------
# the schema


def knob(default: Any = MISSING, help: str = "", *, factory: Callable[[], Any] | None = None) -> Any:  # noqa: A002
    """A schema field with its help text (shown by ``--help``)."""
    if factory is not None:
        return field(default_factory=factory, metadata={"help": help})
    return field(default=default, metadata={"help": help})


def choices(name: str, values: Sequence[str]) -> type[enum.Enum]:
    """A string enum of ``values`` (Hydra refuses any other value while composing; a member
    compares equal to its string)."""
    return enum.Enum(name, {v: v for v in values}, type=str)


Select = choices("Select", ("first", "random", "all"))
BatchKind = choices("BatchKind", data.KINDS)
Sampling = choices("Sampling", data.SAMPLINGS)
VoteRule = choices("VoteRule", VOTE_RULES)
Ties = choices("Ties", TIES)
Accounting = choices("Accounting", ("in_budget", "released"))


@dataclass
class ArchsConfig:
    select: Select = knob(Select.first, "first = official index order; random = a seeded sample; all = every one")
    n: Optional[int] = knob(100, "how many architectures (not used by select=all)")
    seed: int = knob(0, "the random sample's seed (select=random)")
    file: Optional[str] = knob(None, "a data file (relative to the data dir) listing the population to select from")
    column: str = knob("arch_str", "that file's column of architecture strings")


@dataclass
class BatchConfig:
    size: int = knob(64, "images in the proxies' batch")
    kind: BatchKind = knob(BatchKind.real, "real images, or noise (Gaussian inputs, random labels)")
    sampling: Sampling = knob(Sampling.random, "random = images chosen by the seed; first = file order "
                                               "(the golden protocol)")
    split: str = knob("train", "the image file's split the batch is drawn from")
    resolution: Optional[int] = knob(None, "the images' side in pixels: null = the dataset's own (32 CIFAR, 16 the "
                                           "ImageNet16-120 stand-in); N = real images resized bilinearly to NxN, "
                                           "noise drawn at NxN (the released MobileNetV2 search: 320 crops)")


@dataclass
class EngineConfig:
    enabled: bool = knob(True, "score the WRCor family on NB201 many architectures per stacked pass "
                               "(false: every proxy one network at a time)")
    group: Any = knob("auto", "architectures per stacked pass (auto: 32 on a GPU, 1 on the CPU)")
    workers: Any = knob("auto", "processes building networks ahead of the device (auto: 0 on the CPU, "
                                "<= 8 on a GPU)")


@dataclass
class StoreConfig:
    path: str = knob("${oc.env:ZSNAS_STORE,.cache/scores.sqlite}",
                     "the durable score cache (SQLite; a stored score is never recomputed)")
    shards: Optional[str] = knob(None, "a directory of per-shard stores: a job with shard=i/n writes "
                                       "<shards>/shard-<i>-of-<n>.sqlite; a job without shard merges them")


OnError = choices("OnError", ("fail", "warn"))


@dataclass
class TrackingConfig:
    enabled: bool = knob(True, "log the job to MLflow (tracking=none turns it off)")
    uri: str = knob("${oc.env:ZSNAS_MLFLOW_URI,mlruns.db}", "MLflow store: a SQLite file, sqlite:///... or http://...")
    experiment: str = knob("zsnas-bench", "the MLflow experiment")
    artifact_root: Optional[str] = knob(None, "where artifacts go (null: mlartifacts/ beside the database)")
    timeout_s: float = knob(5.0, "seconds an MLflow server has to accept a connection and to answer each request "
                                 "(the check before any work, and every call after it)")
    retries: int = knob(2, "retries of a failed MLflow server request (with backoff) before it counts as a failure")
    on_error: OnError = knob(OnError.fail, "a tracker that cannot be reached or fails: fail = stop before any work "
                                           "(or end the job with the error); warn = warn once and go on with the "
                                           "local records only (log them later: harness track RUN_DIR)")
    parent_run_id: Optional[str] = knob(None, "set by the entry point inside a --multirun sweep")


@dataclass
class DatasetConfig:
    images: str = knob(MISSING, "the image dataset of the proxies' batch")
    targets: Optional[List[List[str]]] = knob("${oc.select:space.targets.${dataset.images},null}",
                                              "ground-truth [dataset, split] pairs the scores are ranked against "
                                              "(default: the space's targets for these images)")
    search_target: Optional[List[str]] = knob("${oc.select:space.search_targets.${dataset.images},null}",
                                              "the [dataset, split] a search's result is judged on (default: the "
                                              "space's search target for these images)")


@dataclass
class ValAcc12Config:
    """The 12-epoch accuracy baseline (search ``objective=valacc12``): per image dataset, the
    table's accuracy column and the factor turning ``cost_column`` (a training time in seconds)
    into that dataset's 12-epoch training time; ``cost_note`` says how the factors were derived."""

    columns: Dict[str, str] = field(default_factory=dict)
    cost_column: str = MISSING
    cost_scales: Dict[str, float] = field(default_factory=dict)
    cost_note: str = ""


@dataclass
class SpaceMeta:
    """What every space's config carries besides its constructor's arguments: its name and the
    benchmark's ground-truth targets per image dataset."""

    name: str = knob(MISSING, "the registered space")
    targets: Dict[str, List[List[str]]] = knob(help="per image dataset: the ground-truth [dataset, split] pairs",
                                               factory=dict)
    search_targets: Dict[str, List[str]] = knob(help="per image dataset: the [dataset, split] a search is judged on",
                                                factory=dict)
    valacc12: Optional[ValAcc12Config] = knob(None, "the 12-epoch accuracy baseline's columns (search objective=valacc12)")


@dataclass
class StrategyMeta:
    name: str = knob(MISSING, "the registered search strategy")


@dataclass
class RunConfig:
    """A scoring job (``harness run``)."""

    profile: str = knob("default", "names the run directory (runs/<profile>/...) and the report")
    proxies: List[str] = knob(MISSING, "proxies to score: registered names or specs name(key=value, ...); "
                                       "set by proxy_set=")
    aggregates: List[str] = knob(help="rank aggregations reported beside the proxies: registered aggregators "
                                      "(vote_sjw, az_nas, ...) or specs rule(proxy, -proxy, ...) with rule "
                                      "logrank, ranksum, lexicographic or majority, e.g. "
                                      "'aggregates=[logrank(wrcor,az_trainability,flops)]'",
                                 factory=list)
    seed: int = knob(0, "the batch choice and each network's initialisation (per arch: sha256(seed:arch))")
    archs: ArchsConfig = knob(factory=ArchsConfig)
    batch: BatchConfig = knob(factory=BatchConfig)
    device: str = knob("auto", "where networks run")
    threads: Optional[int] = knob(None, "torch threads (null: torch's default)")
    tf32: bool = knob(False, "GPU: TensorFloat-32 convolutions/matmuls (faster; ~1e-3 relative rounding)")
    data_dir: Optional[str] = knob("${oc.env:ZSNAS_DATA_DIR,null}", "the benchmark data (null: ../shared/data "
                                                                     "beside the project)")
    shard: Optional[str] = knob(None, "score only the i-th of n interleaved slices (parallel workers)")
    engine: EngineConfig = knob(factory=EngineConfig)
    retry_failed: bool = knob(False, "recompute stored failures (status error/oom); scores are never recomputed")
    store: StoreConfig = knob(factory=StoreConfig)
    tracking: TrackingConfig = knob(factory=TrackingConfig)
    space: Any = knob(MISSING, "the search space (space=<name>): its own settings below")
    dataset: DatasetConfig = knob(factory=DatasetConfig)


def _search_tracking() -> TrackingConfig:
    return TrackingConfig(experiment="zsnas-bench-search")


def _search_engine() -> EngineConfig:
    """A search scores one network at a time unless asked (the one-network path's numbers)."""
    return EngineConfig(enabled=False)


def _objective_default(name: str) -> str:
    """A vote setting's default: the one :mod:`proxies.vote` declares (and
    :class:`harness.search.Objective` takes)."""
    return {"rule": DEFAULT_RULE, "ties": DEFAULT_TIES}[name]


@dataclass
class VoteConfig:
    rule: VoteRule = knob(VoteRule(_objective_default("rule")), "absolute: a side must win more than half of all "
                          "components (the released code); relative: more than the other side; rank_sum: "
                          "the higher sum of per-component ranks among every architecture told so far "
                          "(transitive, unlike a majority)")
    ties: Ties = knob(Ties(_objective_default("ties")), "a tie keeps the incumbent, or goes to the candidate "
                      "(the released search)")


@dataclass
class ConstraintsConfig:
    """A search's resource limits (:mod:`harness.search.constraints`): every candidate is within
    them, by the released WRCor search's rule (a sample over a limit is drawn anew, a mutated
    child over it is mutated again from the same parent).  A limit needs a space that counts that
    resource (``space.flops(arch)`` ...: :class:`spaces.base.ResourceSpace`)."""

    flops_max: Optional[float] = knob(None, "the most FLOPs a candidate may have, as the space counts them "
                                            "(space.flops(arch); mobilenetv2: multiply-adds, the released "
                                            "code's count; the released search: 600e6); null = no limit")
    params_max: Optional[float] = knob(None, "the most parameters a candidate may have (space.params(arch)); "
                                             "null = no limit")
    latency_max: Optional[float] = knob(None, "the longest latency in seconds (needs a space with "
                                              "latency(arch); none has one yet); null = no limit")
    max_redraws: int = knob(10_000, "rejected draws allowed per candidate before the search stops with an "
                                    "error (a limit too tight for the space)")


@dataclass
class SearchConfig(RunConfig):
    """A zero-shot search (``harness search``); ``proxies`` and ``archs`` are not used."""

    profile: str = knob("search", "names the run directory (runs/<profile>/...)")
    proxies: List[str] = knob(help="not used by a search", factory=list)
    seed: int = knob(0, "the strategy's seed")
    objective: str = knob("wrcor", "a proxy, a vote (vote_sjw, vote_spw) or valacc12 (12-epoch accuracy)")
    budget: int = knob(1000, "architectures asked for (repeats included); the cost counts distinct ones")
    accounting: Accounting = knob(Accounting.in_budget,
                                  "in_budget: the strategy's initial samples (evolution's population, REINFORCE's "
                                  "warm-up) are part of the budget; released: as the WRCor search.py, they come on "
                                  "top of it (evolution: costed and candidates; REINFORCE: neither)")
    ask_batch: int = knob(1, "architectures asked for at once, their unscored ones scored together (in stacked "
                             "passes with engine.enabled=true; random: the same search for any value; evolution/"
                             "reinforce: a batch comes from one population/policy, so another value is another "
                             "search)")
    score_seed: int = knob(0, "the proxies' batch and initialisation (fixed: every search seed shares the scores)")
    signs: Optional[List[float]] = knob(None, "per-component direction override, e.g. [1,-1,1]")
    vote: VoteConfig = knob(factory=VoteConfig)
    constraints: ConstraintsConfig = knob(factory=ConstraintsConfig)
    progress_every: int = knob(100, "off a terminal, a progress line every N steps or 30 s (stderr; on a terminal: a bar)")
    figure: bool = knob(True, "draw trajectory.png in the run directory")
    wall_per_candidate: bool = knob(False, "add each candidate's wall seconds (build + init + batch + proxies, "
                                           "when scored now) to trajectory.csv as eval_wall_s (off: a replayed "
                                           "search's trajectory equals the original; the summary always has "
                                           "their mean, cost_per_candidate_s, and the device)")
    engine: EngineConfig = knob(factory=_search_engine)
    tracking: TrackingConfig = knob(factory=_search_tracking)
    search: Any = knob(MISSING, "the search strategy (search=<name>): its own settings below")


# ------------------------------------------------------------------------------------------------
# schemas read from constructors (spaces, strategies)


_SUPPORTED = (int, float, bool, str)


def _field_type(annotation: Any) -> Any:
    """A constructor annotation as a type OmegaConf checks (``X | None`` -> ``Optional[X]``);
    anything else is ``Any``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and args[0] in _SUPPORTED and len(typing.get_args(annotation)) == 2:
            return Optional[args[0]]
        return Any
    return annotation if annotation in _SUPPORTED else Any


def constructor_settings(factory: Callable[..., Any], *, skip: tuple[str, ...]) -> list[tuple[str, Any, Any]]:
    """``(name, type, default)`` of each keyword argument with a default of ``factory``'s
    signature (the settings of a space or strategy), less ``skip``."""
    target = factory.__init__ if inspect.isclass(factory) else factory
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # noqa: BLE001 -- an unresolvable annotation: the setting is untyped
        hints = {}
    out = []
    for p in inspect.signature(target).parameters.values():
        if p.name in skip or p.name == "self" or p.default is inspect.Parameter.empty:
            continue
        if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        out.append((p.name, _field_type(hints.get(p.name, Any)), p.default))
    return out


def _schema(cls_name: str, name: str, factory: Callable[..., Any], base: type, skip: tuple[str, ...]) -> type:
    helps = getattr(factory, "settings_help", {})
    fields = [("name", str, knob(name, base.__dataclass_fields__["name"].metadata["help"]))]
    for key, typ, default in constructor_settings(factory, skip=skip):
        fields.append((key, typ, knob(default, helps.get(key, ""))))
    return dataclasses.make_dataclass(cls_name, fields, bases=(base,))


#: constructor arguments a space takes that are not settings of its config
SPACE_SKIP = ("data_dir",)
#: a space's settings that choose a data file, not the network (left out of the score keys)
SPACE_DATA_KEYS = ("table",)
#: constructor arguments of a strategy given by the runner
STRATEGY_SKIP = ("space", "objective", "seed")


def space_schema(name: str) -> type:
    """The config schema of space ``name``: :class:`SpaceMeta` and the keyword arguments of its
    constructor (types and defaults from the signature)."""
    return _schema(f"SpaceConfig_{name}", name, spaces.space_factory(name), SpaceMeta, SPACE_SKIP)


def strategy_schema(name: str) -> type:
    """The config schema of search strategy ``name`` (its constructor's keyword arguments)."""
    return _schema(f"StrategyConfig_{name}", name, strategy_class(name), StrategyMeta, STRATEGY_SKIP)


def space_kwargs(space_cfg: Any) -> dict[str, Any]:
    """A space config's constructor arguments (every field that is not :class:`SpaceMeta`'s)."""
    meta = {f.name for f in dataclasses.fields(SpaceMeta)}
    return {f.name: getattr(space_cfg, f.name) for f in dataclasses.fields(space_cfg) if f.name not in meta}


def strategy_params(search_cfg: Any) -> dict[str, Any]:
    """A strategy config's constructor arguments (every field but ``name``)."""
    return {f.name: getattr(search_cfg, f.name) for f in dataclasses.fields(search_cfg) if f.name != "name"}


_REGISTERED: set[tuple[str, str]] = set()


def register_schemas() -> None:
    """Put the schemas in Hydra's ConfigStore (again after a plugin added a space or strategy):
    ``schema/run``, ``schema/search``, ``schema/space/<name>`` and ``schema/strategy/<name>``
    (which the YAML options under ``conf/space`` and ``conf/search`` extend), and, for a
    plugin's space or strategy with no YAML file, the group option itself (``space=<name>``)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    conf = config_dir()
    if ("schema", "run") not in _REGISTERED:
        cs.store(group="schema", name="run", node=RunConfig, package="_global_")
        cs.store(group="schema", name="search", node=SearchConfig, package="_global_")
        _REGISTERED.update({("schema", "run"), ("schema", "search")})
    for group, yaml_group, names, make in (("space", "space", spaces.list_spaces(), space_schema),
                                           ("strategy", "search", list_strategies(), strategy_schema)):
        for name in names:
            if (group, name) in _REGISTERED:
                continue
            node = make(name)
            cs.store(group=f"schema/{group}", name=name, node=node)
            if not (conf / yaml_group / f"{name}.yaml").is_file():
                cs.store(group=yaml_group, name=name, node=node)
            _REGISTERED.add((group, name))


def _register_resolvers() -> None:
    if not OmegaConf.has_resolver("zsnas.name"):
        OmegaConf.register_new_resolver("zsnas.name", _resolve_name)
    if not OmegaConf.has_resolver("zsnas.stamp"):
        OmegaConf.register_new_resolver("zsnas.stamp", _stamp, use_cache=True)


_register_resolvers()


def compose(config_name: str = "config", overrides: list[str] | tuple[str, ...] = (), **kw: Any) -> DictConfig:
    """The composed configuration (as ``harness run``/``harness search`` would build it), for
    tests and the bench: ``config_name`` = ``config`` (scoring) or ``search_run``."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    register_schemas()
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides), **kw)


# ------------------------------------------------------------------------------------------------
# the rules


@dataclass(frozen=True)
class Rule:
    """``check(value, cfg)`` is true for an allowed value; ``allowed`` says what is (a string, or
    a function returning one when the allowed values come from a registry)."""

    key: str
    allowed: str | Callable[[], str]
    check: Callable[[Any, Any], bool]

    def text(self) -> str:
        return self.allowed() if callable(self.allowed) else self.allowed


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _auto_or(minimum: int) -> Callable[[Any, Any], bool]:
    def check(v: Any, cfg: Any) -> bool:
        if v == "auto":
            return True
        try:
            return int(str(v)) >= minimum and str(int(str(v))) == str(v).strip()
        except ValueError:
            return False

    return check


def _shard_ok(v: Any, cfg: Any) -> bool:
    if v in (None, ""):
        return True
    m = re.fullmatch(r"(\d+)/(\d+)", str(v))
    return bool(m) and int(m.group(1)) < int(m.group(2))


def _device_ok(v: Any, cfg: Any) -> bool:
    return bool(re.fullmatch(r"auto|cpu|cuda(:\d+)?|mps", str(v)))


def _name_ok(v: Any, cfg: Any) -> bool:
    try:
        safe_name(v, "profile")
        return True
    except ConfigError:
        return False


def _split_ok(v: Any, cfg: Any) -> bool:
    from . import data

    try:
        return v in data.splits(cfg.dataset.images)
    except KeyError:
        return True  # the dataset rule reports it


def _dataset_ok(v: Any, cfg: Any) -> bool:
    from . import data

    return v in data.DATASETS


def _dataset_allowed() -> str:
    from . import data

    return "one of " + ", ".join(data.DATASETS)


def _proxies_allowed() -> str:
    return ("registered proxies or specs name(key=value, ...): " + ", ".join(proxies.list_proxies())
            + "; or aggregators (votes): " + ", ".join(proxies.list_aggregators()))


#: the rules of a scoring job (and of a search: it shares these settings)
RULES: list[Rule] = [
    Rule("proxies", _proxies_allowed, lambda v, c: True),  # checked by _check_proxies (messages per spec)
    Rule("profile", "a plain name (letters, digits and _ . + -), not a path", _name_ok),
    Rule("seed", "an integer >= 0", lambda v, c: v >= 0),
    Rule("archs.n", "a positive integer (or null with archs.select=all)",
         lambda v, c: (v is None and c.archs.select == Select.all) or (_int(v) and v >= 1)),
    Rule("archs.seed", "an integer >= 0", lambda v, c: v >= 0),
    Rule("batch.size", "an integer >= 2 (a correlation over one sample is meaningless)", lambda v, c: v >= 2),
    Rule("batch.resolution", "null (the dataset's own size) or an integer >= 8 (the images' side in pixels)",
         lambda v, c: v is None or (_int(v) and v >= 8)),
    Rule("batch.split", "a split of the image dataset (cifar10/cifar100: train, test; ImageNet16-120: train, all)",
         _split_ok),
    Rule("dataset.images", _dataset_allowed, _dataset_ok),
    Rule("device", "auto, cpu, cuda or cuda:N", _device_ok),
    Rule("threads", "a positive integer or null", lambda v, c: v is None or v >= 1),
    Rule("shard", "null or i/n with 0 <= i < n (e.g. 0/2)", _shard_ok),
    Rule("engine.group", "a positive integer or auto", _auto_or(1)),
    Rule("engine.workers", "an integer >= 0 or auto", _auto_or(0)),
    Rule("tracking.timeout_s", "a number of seconds > 0 and <= 600",
         lambda v, c: not isinstance(v, bool) and math.isfinite(v) and 0 < v <= 600),
    Rule("tracking.retries", "an integer from 0 to 10", lambda v, c: _int(v) and 0 <= v <= 10),
]

#: the rules a search adds
SEARCH_RULES: list[Rule] = [
    Rule("objective", lambda: _proxies_allowed().replace("registered proxies", "a registered proxy, a vote")
         + "; or valacc12 (the 12-epoch accuracy baseline)", lambda v, c: True),  # checked by _check_search
    Rule("budget", "a positive integer", lambda v, c: v >= 1),
    Rule("ask_batch", "a positive integer", lambda v, c: v >= 1),
    Rule("score_seed", "an integer >= 0", lambda v, c: v >= 0),
    Rule("progress_every", "a positive integer", lambda v, c: v >= 1),
    *(Rule(f"constraints.{key}", "a positive number or null (no limit)", lambda v, c: _limit_ok(v))
      for key in ("flops_max", "params_max", "latency_max")),
    Rule("constraints.max_redraws", "an integer >= 0", lambda v, c: _int(v) and v >= 0),
]


def _limit_ok(v: Any) -> bool:
    """A resource limit: null, or a positive finite number."""
    return v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0)


def _select(cfg: Any, key: str) -> Any:
    node = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) and not isinstance(value, enum.Enum) else describe_value(value)


def _refusal(key: str, value: Any, allowed: str) -> str:
    return f"{key}={_show(value)} is not allowed: {allowed}"


def _check_rules(cfg: Any, rules: list[Rule]) -> list[str]:
    problems = []
    for rule in rules:
        value = _select(cfg, rule.key)
        try:
            ok = rule.check(value, cfg)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            problems.append(_refusal(rule.key, value, rule.text()))
    return problems


def _check_proxies(cfg: RunConfig) -> list[str]:
    problems = []
    if not cfg.proxies and not isinstance(cfg, SearchConfig):
        problems.append("proxies=[] is not allowed: at least one proxy (e.g. proxies=[wrcor] or proxy_set=all)")
    for spec in cfg.proxies:
        try:
            proxies.components_of(spec)
        except (KeyError, ValueError) as err:
            problems.append(f"proxies: {spec!r} is not allowed: {err.args[0] if err.args else err}")
    for spec in cfg.aggregates:
        try:
            if not proxies.is_aggregator(spec):
                problems.append(f"aggregates: {spec!r} is not allowed: not an aggregation; a registered aggregator "
                                f"({', '.join(proxies.list_aggregators())}) or a spec rule(proxy, ...) with rule "
                                f"{', '.join(proxies.aggregators.list_rules())}")
        except (KeyError, ValueError) as err:
            problems.append(f"aggregates: {spec!r} is not allowed: {err.args[0] if err.args else err}")
    return problems


def requested(cfg: RunConfig) -> list[str]:
    """The canonical names a scoring job reports: ``proxies`` then ``aggregates``, each once."""
    return list(dict.fromkeys(proxies.canonical(n) for n in [*cfg.proxies, *cfg.aggregates]))


def _check_search(cfg: SearchConfig) -> list[str]:
    problems = []
    if cfg.objective != "valacc12":
        try:
            comps = proxies.components_of(cfg.objective)
        except (KeyError, ValueError) as err:
            problems.append(f"objective={cfg.objective!r} is not allowed: {err.args[0] if err.args else err}; "
                            "or valacc12 (the 12-epoch accuracy baseline)")
            comps = ()
        if cfg.signs is not None and comps and (
                len(cfg.signs) != len(comps) or any(s not in (1.0, -1.0) for s in cfg.signs)):
            problems.append(f"signs={list(cfg.signs)} is not allowed: +1 or -1 for each of {list(comps)}")
        agg = proxies.get_aggregator(cfg.objective) if comps and proxies.is_aggregator(cfg.objective) else None
        if agg is not None and agg.rule != "majority" and cfg.vote.rule.value != "rank_sum":
            problems.append(f"objective={cfg.objective!r} with vote.rule={cfg.vote.rule.value} is not allowed: "
                            f"its rule {agg.rule} ranks a whole population and has no pairwise form; a search "
                            f"compares as it goes: add vote.rule=rank_sum (the sum of the components' ranks "
                            f"over the search's history)")
    elif cfg.signs is not None and (len(cfg.signs) != 1 or cfg.signs[0] not in (1.0, -1.0)):
        problems.append(f"signs={list(cfg.signs)} is not allowed: +1 or -1 for valacc12")
    what = strategy_class(cfg.search.name).initial_samples_setting
    initial = int(getattr(cfg.search, what)) if what else 0
    if initial and cfg.budget <= initial and cfg.accounting == Accounting.in_budget:  # released: N on top
        problems.append(f"budget={cfg.budget} is not allowed: search={cfg.search.name} spends its first {initial} "
                        f"asks on uniform samples (search.{what}={initial}), so a budget of at most {initial} is "
                        f"random search; give budget >= {initial + 1} or a smaller search.{what}")
    return problems


def validate(cfg: RunConfig) -> RunConfig:
    """Check ``cfg`` against :data:`RULES` (and :data:`SEARCH_RULES` for a search) and the proxy
    specs; raise one :class:`ConfigError` listing every refusal.  Returns ``cfg``."""
    problems = _check_rules(cfg, RULES)
    problems += _check_proxies(cfg)
    if isinstance(cfg, SearchConfig):
        problems += _check_rules(cfg, SEARCH_RULES)
        problems += _check_search(cfg)
    if problems:
        raise ConfigError("\n".join(problems) if len(problems) == 1
                          else f"{len(problems)} settings are not allowed:\n  " + "\n  ".join(problems))
    return cfg


def _typed_group(node: Any, make: Callable[[str], type], key: str) -> Any:
    """A space or strategy node given as a plain mapping, typed by its name's schema."""
    if dataclasses.is_dataclass(node) or node is None:
        return node
    name = node.get("name") if isinstance(node, dict) else None
    if name is None:
        raise ConfigError(f"{key} has no name: choose one with {key.split('.')[0]}=<name>")
    try:
        merged = OmegaConf.merge(OmegaConf.structured(make(str(name))), node)
    except OmegaConfBaseException as err:
        raise ConfigError(f"{key}: {err}") from None
    return OmegaConf.to_object(merged)


def typed(node: Any, schema: type, key: str) -> Any:
    """``node`` (a config node or mapping with the keys of dataclass ``schema``; None stays None)
    as a ``schema`` object, its values type-checked."""
    if node is None or isinstance(node, schema):
        return node
    try:
        return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema), node))
    except OmegaConfBaseException as err:
        raise ConfigError(f"{key}: {_omegaconf_message(err)}") from None


def unknown_keys(cfg: DictConfig, prefix: str = "") -> list[str]:
    """Keys of ``cfg`` that no schema declares (``+foo=1`` slips past Hydra's struct mode), each
    with the closest declared keys."""
    import difflib

    out = []
    kind = OmegaConf.get_type(cfg)
    declared = {f.name for f in dataclasses.fields(kind)} if dataclasses.is_dataclass(kind) else None
    for key in cfg.keys():
        path = f"{prefix}{key}"
        if declared is not None and key not in declared:
            near = difflib.get_close_matches(str(key), sorted(declared), n=2)
            out.append(f"{path} is not a setting" + (f" (did you mean {' or '.join(prefix + n for n in near)}?)"
                                                     if near else f" of {kind.__name__}"))
            continue
        node = cfg._get_node(key)
        if isinstance(node, DictConfig) and not node._is_missing() and not node._is_none():
            out += unknown_keys(node, f"{path}.")
    return out


def load(cfg: Any, schema: type[RunConfig] | None = None) -> RunConfig:
    """The typed, validated configuration of a job: ``cfg`` is a composed Hydra config, a plain
    mapping with the keys of the schema, or a :class:`RunConfig`/:class:`SearchConfig` already.
    Raises :class:`ConfigError` before any work when a value is not allowed."""
    if isinstance(cfg, RunConfig):
        typed = cfg
    else:
        try:
            if isinstance(cfg, DictConfig):
                if schema is not None and OmegaConf.get_type(cfg) is dict:
                    cfg = OmegaConf.merge(OmegaConf.structured(schema), cfg)
                extra = unknown_keys(cfg)
                if extra:
                    raise ConfigError("; ".join(extra) + " (--help lists the settings)")
                typed = OmegaConf.to_object(cfg)
            else:
                typed = OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(schema or RunConfig), dict(cfg)))
        except OmegaConfBaseException as err:
            raise ConfigError(_omegaconf_message(err)) from None
        if not isinstance(typed, RunConfig):
            raise ConfigError(f"not a job configuration (it has no schema): {type(typed).__name__}")
    if not isinstance(typed.space, SpaceMeta):
        typed.space = _typed_group(typed.space, space_schema, "space")
    if isinstance(typed, SearchConfig) and not isinstance(typed.search, StrategyMeta):
        typed.search = _typed_group(typed.search, strategy_schema, "search")
    return validate(typed)


def _omegaconf_message(err: OmegaConfBaseException) -> str:
    key = getattr(err, "full_key", None)
    msg = str(err).split("\n")[0]
    if "Missing mandatory value" in msg and key:
        return f"{key} is not set (it has no default): give {key}=..."
    return f"{key}: {msg}" if key else msg


def to_plain(cfg: Any) -> dict:
    """A typed configuration as plain containers (enums as their values), for logging."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, enum.Enum):
            return v.value
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(cfg)


def write_config(cfg: Any, path: str | Path) -> Path:
    """Write a typed configuration (:func:`to_plain`) as YAML to ``path`` (a job's
    ``config.yaml``, logged with its records); return the path."""
    from omegaconf import OmegaConf

    path = Path(path)
    path.write_text(OmegaConf.to_yaml(OmegaConf.create(to_plain(cfg))))
    return path


def describe_value(value: Any) -> str:
    """A value as ``--help`` shows it (as it would be written in an override).

    >>> describe_value([["cifar10-valid", "valid"], ["cifar10", "test"]]), describe_value(True)
    ('[[cifar10-valid,valid],[cifar10,test]]', 'true')
    """
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(describe_value(v) for v in value) + "]"
    return str(value)


def describe_type(annotation: Any) -> str:
    """A field's type as ``--help`` shows it when no rule says more."""
    optional = typing.get_origin(annotation) is typing.Union and type(None) in typing.get_args(annotation)
    if optional:
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if inspect.isclass(annotation) and issubclass(annotation, enum.Enum):
        text = " | ".join(m.value for m in annotation)
    else:
        origin = typing.get_origin(annotation)
        text = {int: "an integer", float: "a number", bool: "true | false", str: "text"}.get(
            annotation, "a list" if origin in (list, List) else "")
    return f"{text} or null" if optional and text else text
