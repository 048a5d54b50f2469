"""The command line: ``harness <command>`` (also ``zsnas <command>`` and ``python -m harness <command>``).

``run`` and ``search`` are Hydra applications over the typed configuration
(:mod:`harness.config`); the other commands have their own options.  The configs are found from
the installed package (:func:`harness.config.config_dir`), so every command works from any
working directory; outputs (``runs/``, ``.cache/``, ``mlruns.db``) go under the working
directory unless a setting says otherwise.

This module is the only place that touches process-global state (threads, global seeds, cuDNN
flags); everything else lives in :func:`harness.scoring.run.run` and :func:`harness.search.run_search`,
which tests call on composed configs.
"""
from __future__ import annotations

import importlib
import json
import logging
import os
import re
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from .commands import COMMANDS, command_parser, output_name  # noqa: F401  (re-exported for the commands)

log = logging.getLogger("harness")

#: Hydra's own grammar functions (``seed=range(0,3)``); any other ``name(...)`` in a proxy or
#: objective override is a proxy spec, quoted so that Hydra reads it as a string
_HYDRA_FUNCTIONS = {"bool", "choice", "float", "glob", "int", "interval", "range", "shuffle", "sort", "str", "tag"}
_CALL = re.compile(r"([A-Za-z_][\w.]*)\(")
_SPEC_KEYS = re.compile(r"^[+~]{0,2}(proxies|aggregates|objective)=")


def quote_specs(arg: str) -> str:
    """``proxies=[wrcor(power=2)]`` -> ``proxies=[wrcor,"wrcor(power=2)"]``-style quoting of proxy
    and aggregate specs, which Hydra's override grammar would read as a call of an unknown
    function.  Only the values of ``proxies``, ``aggregates`` and ``objective`` are touched, and
    only when they hold no quotes; a spec may nest others (``logrank(wrcor(power=2),flops)``).

    >>> quote_specs("proxies=[wrcor,wrcor(power=2, weighting=linear)]")
    'proxies=[wrcor,"wrcor(power=2, weighting=linear)"]'
    >>> quote_specs("aggregates=[logrank(wrcor(power=2),-flops),vote_sjw]")
    'aggregates=["logrank(wrcor(power=2),-flops)",vote_sjw]'
    >>> quote_specs("seed=range(0,3)"), quote_specs("objective=choice(wrcor,synflow)")
    ('seed=range(0,3)', 'objective=choice(wrcor,synflow)')
    >>> quote_specs("objective=choice(wrcor(power=2),synflow)")
    'objective=choice("wrcor(power=2)",synflow)'
    """
    if not _SPEC_KEYS.match(arg) or "'" in arg or '"' in arg:
        return arg
    key, _, value = arg.partition("=")
    out, i = [], 0
    while i < len(value):
        m = _CALL.match(value, i) if i == 0 or value[i - 1] in "[(, " else None
        if m and m.group(1) in _HYDRA_FUNCTIONS:  # Hydra's own: keep it, quote the specs inside
            out.append(m.group(0))
            i = m.end()
            continue
        end = _closing(value, m.end() - 1) if m else None
        if end is None:
            out.append(value[i])
            i += 1
            continue
        out.append(f'"{value[i:end + 1]}"')
        i = end + 1
    return key + "=" + "".join(out)


def _closing(text: str, start: int) -> int | None:
    """The index of the parenthesis closing the one at ``start`` (None when unbalanced)."""
    depth = 0
    for j in range(start, len(text)):
        depth += (text[j] == "(") - (text[j] == ")")
        if depth == 0:
            return j
    return None


def _configure_process(cfg: Any) -> None:
    import random

    import numpy as np
    import torch

    random.seed(cfg.seed)
    np.random.seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = bool(cfg.tf32)
    if cfg.threads:
        torch.set_num_threads(int(cfg.threads))


def prepare_job(cfg: Any, schema: type) -> tuple[Any, str]:
    """(the typed, validated config, the job's output directory): validate ``cfg`` (a
    :class:`~harness.config.ConfigError` before any work), configure the process, and attach the
    job to its sweep's MLflow parent run (in a --multirun)."""
    from hydra.core.hydra_config import HydraConfig

    from .config import load
    from .tracking import parent_run_id_for

    typed = load(cfg, schema)
    _configure_process(typed)
    hc = HydraConfig.get()
    sweep_dir = hc.sweep.dir if hc.mode.name == "MULTIRUN" else None
    parent = parent_run_id_for(sweep_dir) if sweep_dir else None
    if parent:
        typed.tracking.parent_run_id = parent
    return typed, hc.runtime.output_dir


def hydra_app(command: str, config_name: str, schema: type, job: Callable[[Any, str], Any],
              argv: Sequence[str]) -> int:
    """Run ``job(typed config, output dir)`` as the Hydra application of ``command`` over ``argv``
    (Hydra overrides; ``--help`` prints the settings from the schema).  A setting that is not
    allowed ends the process with status 2 and one message naming it."""
    import hydra

    from .config import ConfigError, config_dir, register_schemas

    argv = [quote_specs(a) for a in argv]
    if "-h" in argv or "--help" in argv:
        print(command_help(command, config_name, [a for a in argv if a not in ("-h", "--help")]))
        return 0
    try:
        _check_profiles(argv)
    except ConfigError as err:
        print(f"harness {command}: {err}", file=sys.stderr, flush=True)
        return 2
    register_schemas()
    if "--dry-run" in argv:
        return dry_run(command, config_name, schema, [a for a in argv if a != "--dry-run"])

    from spaces.vocabulary import DataFileError

    from .errors import UserError
    from .tracking import SWEEP_DIRS, TrackingError

    @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)
    def _main(cfg) -> None:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.get().mode.name == "MULTIRUN":  # one job of a sweep: its failure is recorded, not raised
            return sweep_job(lambda: job(*prepare_job(cfg, schema)))
        try:
            typed, out_dir = prepare_job(cfg, schema)
            job(typed, out_dir)
        except (UserError, TrackingError, DataFileError) as err:  # one line naming it; exit 2
            print(f"harness {command}: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    saved = sys.argv
    sys.argv = [f"harness {command}", *argv]
    n_sweeps, status = len(SWEEP_DIRS), 0
    try:
        _main()
    except SystemExit as err:
        status = err.code if isinstance(err.code, int) else 1
        if len(SWEEP_DIRS) == n_sweeps or status == 2 and not _job_records(SWEEP_DIRS[-1]):
            raise  # not a sweep, or refused before any job (the message is out)
    finally:
        sys.argv = saved
    if len(SWEEP_DIRS) > n_sweeps:
        return sweep_summary(command, config_name, argv, SWEEP_DIRS[-1], status)
    return status


# ------------------------------------------------------------------------------------------------
# sweeps: a failed or killed job never aborts its siblings


#: a sweep job's record, in its directory: {"status": running|done|failed|interrupted, "job": N,
#: "overrides": [...], "pid": ..., "cause": ...}
JOB_STATUS_FILE = "job_status.json"


def _write_job_status(job_dir: Path, record: dict[str, Any]) -> None:
    job_dir.mkdir(parents=True, exist_ok=True)
    target = job_dir / JOB_STATUS_FILE
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, target)


def _read_job_status(job_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((job_dir / JOB_STATUS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _job_records(sweep_dir: Path) -> dict[int, tuple[Path, dict[str, Any]]]:
    """{job number: (its directory, its status record)} of the jobs of a sweep that started."""
    out = {}
    for path in sorted(Path(sweep_dir).glob(f"*/{JOB_STATUS_FILE}")):
        record = _read_job_status(path.parent)
        if record is not None and isinstance(record.get("job"), int):
            out[record["job"]] = (path.parent, record)
    return out


def _user_fault(err: BaseException) -> bool:
    """Whether ``err`` is a fault of the input or the environment (one line, no traceback)."""
    from spaces.vocabulary import DataFileError

    from .errors import UserError
    from .tracking import TrackingError

    return isinstance(err, (UserError, TrackingError, DataFileError))


def _failure_cause(err: BaseException) -> str:
    """One line naming why a job failed."""
    if isinstance(err, SystemExit):
        return f"it exited with status {err.code}"
    text = " ".join(str(err).split())
    if not _user_fault(err):
        text = f"{type(err).__name__}: {text}" if text else type(err).__name__
    return text if len(text) <= 500 else text[:497] + "..."


def _run_recorded(work: Callable[[], Any], job_dir: Path, base: dict[str, Any]) -> bool:
    """Run one sweep job's ``work`` here, its outcome in ``job_status.json``; True when done.  A
    failure is logged with its traceback (the job's log) and recorded, never raised."""
    _write_job_status(job_dir, {**base, "status": "running", "pid": os.getpid(), "started": time.time()})
    try:
        work()
    except KeyboardInterrupt:
        _write_job_status(job_dir, {**base, "status": "interrupted", "pid": os.getpid(), "cause": "interrupted (Ctrl-C)"})
        raise
    except BaseException as err:  # noqa: BLE001 -- a job's failure must not abort its siblings
        cause = _failure_cause(err)
        if not isinstance(err, SystemExit):  # a fault of the input or environment: its message says it all
            log.error("job %s failed: %s", base["job"], cause, exc_info=None if _user_fault(err) else err)
        print(f"harness: job {base['job']} ({' '.join(base['overrides'])}) failed: {cause}", file=sys.stderr, flush=True)
        _write_job_status(job_dir, {**base, "status": "failed", "pid": os.getpid(), "cause": cause})
        return False
    _write_job_status(job_dir, {**base, "status": "done", "pid": os.getpid(), "ended": time.time()})
    return True


def _in_child(work: Callable[[], Any], job_dir: Path, base: dict[str, Any]) -> None:
    import multiprocessing

    proc = multiprocessing.get_context("fork").Process(target=_run_recorded, args=(work, job_dir, base),
                                                      name=f"job{base['job']}")
    proc.start()
    proc.join()
    record = _read_job_status(job_dir) or {}
    if record.get("status") in ("done", "failed"):
        return
    code = proc.exitcode
    if code is not None and code < 0:
        import signal

        name = signal.Signals(-code).name if -code in {s.value for s in signal.Signals} else f"signal {-code}"
        cause = f"its process ({record.get('pid', proc.pid)}) was killed by {name}"
        if name == "SIGKILL":
            cause += " (out of memory, or kill -9)"
    else:
        cause = f"its process ({record.get('pid', proc.pid)}) ended with status {code} and no result"
    print(f"harness: job {base['job']} ({' '.join(base['overrides'])}) failed: {cause}", file=sys.stderr, flush=True)
    _write_job_status(job_dir, {**base, "status": "failed", "pid": record.get("pid", proc.pid), "cause": cause})


def sweep_job(work: Callable[[], Any]) -> None:
    """One job of a --multirun sweep: ``work()`` with its outcome recorded in its directory's
    ``job_status.json`` and never raised, so that a failed job does not abort its siblings.  Under
    the joblib launcher the job runs in a process of its own (forked from the worker), so that a job
    killed (out of memory, kill -9) ends as a recorded failure instead of breaking the worker pool
    and every job in it."""
    from hydra.core.hydra_config import HydraConfig

    hc = HydraConfig.get()
    job_dir = Path(hc.runtime.output_dir)
    base = {"job": int(hc.job.num), "overrides": [str(o) for o in hc.overrides.task]}
    if "joblib" in str(hc.runtime.choices.get("hydra/launcher", "")):
        _in_child(work, job_dir, base)
    else:
        _run_recorded(work, job_dir, base)


def _rerun_command(command: str, argv: Sequence[str], jobs: Sequence[Sequence[str]]) -> str:
    """The command that runs exactly ``jobs`` (override lists) again: the command line's fixed
    overrides and flags, and the failed jobs' swept values, as one --multirun when they form a
    product (one swept key, or one job), else one command per job joined by ``;``."""
    import itertools
    import shlex

    from hydra.core.override_parser.overrides_parser import OverridesParser

    args = [a for a in argv if a not in ("-m", "--multirun")]
    flags = [a for a in args if a.startswith("-")]
    parsed = OverridesParser.create().parse_overrides([a for a in args if not a.startswith("-")])
    fixed = [o.input_line for o in parsed if not o.is_sweep_override()]
    fixed_keys = {o.get_key_element() for o in parsed if not o.is_sweep_override()}
    # a sweep directory given on the command line: the re-run's jobs go beside it, not over its jobs
    fixed = [f"{o}-rerun" if o.split("=", 1)[0] == "hydra.sweep.dir" else o for o in fixed]
    per_job = [[o for o in job if o.split("=", 1)[0] not in fixed_keys] for job in jobs]
    keys = list(dict.fromkeys(o.split("=", 1)[0] for job in per_job for o in job))
    values = {k: list(dict.fromkeys(o.split("=", 1)[1] for job in per_job for o in job if o.split("=", 1)[0] == k))
              for k in keys}
    wanted = {tuple(sorted(job)) for job in per_job}
    product = {tuple(sorted(f"{k}={v}" for k, v in zip(keys, combo))) for combo in itertools.product(*values.values())}
    head = ["harness", command, *flags, "--multirun"]
    if product == wanted:
        swept = [f"{k}={','.join(values[k])}" for k in keys]
        return shlex.join([*head, *fixed, *swept])
    return " ; ".join(shlex.join([*head, *fixed, *job]) for job in per_job)


def sweep_summary(command: str, config_name: str, argv: Sequence[str], sweep_dir: Path, status: int) -> int:
    """After a --multirun sweep: the failed, killed or never-run jobs (overrides, cause) and the
    command that re-runs only them; the jobs not logged to MLflow and the command that logs them.
    Prints nothing when every job is done and tracked.  Returns the exit status: 1 when a job is
    not done (or ``status`` when the sweep itself ended with one)."""
    from .tracking import read_tracking_record

    records = _job_records(sweep_dir)
    try:
        from hydra import initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra

        from .config import config_dir

        GlobalHydra.instance().clear()
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            jobs = _job_overrides(config_name, argv)
    except Exception as err:  # noqa: BLE001 -- the records alone still say which jobs failed
        log.debug("could not expand the sweep's jobs: %s", err)
        jobs = [rec["overrides"] for _, (_, rec) in sorted(records.items())]
    lines, failed, untracked = [], [], []
    try:
        from hydra.core.override_parser.overrides_parser import OverridesParser

        fixed_keys = {o.get_key_element() for o in OverridesParser.create().parse_overrides(
            [a for a in argv if not a.startswith("-")]) if not o.is_sweep_override()}
    except Exception:  # noqa: BLE001 -- then every override is shown
        fixed_keys = set()
    for num, overrides in enumerate(jobs):
        job_dir, rec = records.get(num, (None, None))
        state = (rec or {}).get("status")
        if state == "done":
            tracked = read_tracking_record(job_dir) if job_dir is not None else None
            if tracked is not None and tracked.get("tracked") is False:
                untracked.append(job_dir)
            continue
        if state is None:
            cause = "not run: the sweep stopped before it" if status else "not run"
        elif state == "running":
            cause = "its process ended without a result (the sweep's worker pool was stopped)"
        else:
            cause = rec.get("cause") or state
        where = f"  [{job_dir}]" if job_dir is not None else ""
        own = [o for o in overrides if o.split("=", 1)[0] not in fixed_keys]  # what sets this job apart
        lines.append(f"  job {num}: {' '.join(own or overrides) or '(defaults)'}\n      {cause}{where}")
        failed.append(list(overrides))
    out = []
    if failed:
        out += [f"\nsweep {sweep_dir}: {len(jobs) - len(failed)} of {len(jobs)} jobs done, {len(failed)} failed:", *lines,
                "re-run only the failed jobs (the score store skips what is done):",
                f"  {_rerun_command(command, argv, failed)}"]
    if untracked:
        out += [f"{len(untracked)} job(s) not logged to MLflow (tracking.on_error=warn); log them later:",
                "  harness track " + " ".join(str(d) for d in untracked)]
    if out:
        print("\n".join(out), file=sys.stderr, flush=True)
    if failed:
        return status or 1
    return status


def _job_overrides(config_name: str, argv: Sequence[str]) -> list[list[str]]:
    """The override list of every job the command would run: one (``argv``) without
    ``--multirun``; with it, Hydra's own expansion of the command line's sweeps and the
    config's ``hydra.sweeper.params`` (an experiment's sweep), in Hydra's order."""
    from hydra import compose
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    multirun = any(a in ("-m", "--multirun") for a in argv)
    overrides = [a for a in argv if a not in ("-m", "--multirun")]
    if not multirun:
        return [overrides]
    parser = OverridesParser.create()
    fixed = [o.input_line for o in parser.parse_overrides(overrides) if not o.is_sweep_override()]
    params = compose(config_name, overrides=fixed, return_hydra_config=True).hydra.sweeper.get("params") or {}
    swept = [f"{key}={value}" for key, value in params.items()]
    parsed = parser.parse_overrides(swept + overrides)
    return [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]


def dry_run(command: str, config_name: str, schema: type, argv: Sequence[str]) -> int:
    """``harness run|search ... --dry-run``: compose and validate every job the command line
    would run (a --multirun sweep expanded as Hydra expands it) and print what each would do;
    nothing is computed, stored, tracked or written.  Status 2 at the first job not allowed."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from spaces.vocabulary import UnknownNameError

    from .config import ConfigError, config_dir, load
    from .scoring.run import check_job

    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            jobs = _job_overrides(config_name, argv)
            for i, overrides in enumerate(jobs, 1):
                typed = load(compose(config_name, overrides=overrides), schema)
                n_archs = check_job(typed) if command == "run" else None
                print(f"job {i}/{len(jobs)}: {' '.join(overrides) or '(defaults)'}\n"
                      f"    {_job_line(command, typed, n_archs)}")
    except (ConfigError, UnknownNameError, HydraException, OmegaConfBaseException) as err:
        cause = str(err.__cause__ or "").strip()  # Hydra's "Error merging override x=y" names no reason
        reason = f"\n{cause}" if cause and cause not in str(err) else ""
        print(f"harness {command}: {err}{reason}", file=sys.stderr, flush=True)
        return 2
    print(f"harness {command} --dry-run: {len(jobs)} job(s), every setting allowed; nothing was run")
    return 0


def _job_line(command: str, cfg: Any, n_archs: int | None) -> str:
    """One line saying what a validated job would do (``n_archs``: its selection's size)."""
    space = cfg.space.name
    images = cfg.dataset.images
    if command == "search":
        return (f"{cfg.search.name} search in {space} guided by {cfg.objective}, budget {cfg.budget}, "
                f"seed {cfg.seed}, {images} images")
    archs = f"{n_archs} {space} archs ({cfg.archs.select.name}{' from ' + cfg.archs.file if cfg.archs.file else ''})"
    import proxies

    aggs = [proxies.canonical(a) for a in cfg.aggregates]
    return (f"{len(cfg.proxies)} proxies ({', '.join(cfg.proxies)})"
            + (f" and {len(aggs)} aggregate{'s' * (len(aggs) > 1)} ({', '.join(aggs)})" if aggs else "")
            + f" on {archs}, {cfg.batch.size} {cfg.batch.kind.name} {images} images, seed {cfg.seed}"
            + (f", shard {cfg.shard}" if cfg.shard else ""))


def _check_profiles(argv: Sequence[str]) -> None:
    """``profile=`` names the run directory, which Hydra makes before a job starts: a value that
    would leave runs/ (``../x``, ``/tmp/x``) is refused here, before Hydra resolves it."""
    from .config import safe_name

    for arg in argv:
        m = re.match(r"^[+~]{0,2}profile=(.*)$", arg)
        if m and "${" not in m.group(1):
            for value in m.group(1).split(","):  # a sweep: profile=a,b
                safe_name(value.strip().strip("'\""), "profile")


# ------------------------------------------------------------------------------------------------
# help generated from the schema


def _groups(config_name: str) -> list[str]:
    if config_name == "search_run":  # a search scores its objective's proxies, not a proxy_set
        return ["experiment", "search", "space", "dataset", "tracking"]
    return ["experiment", "space", "dataset", "proxy_set", "tracking"]


def _options(group: str, config_name: str) -> list[str]:
    """The options of ``group``; experiments named ``search_*`` are the search's, the others the
    scoring job's."""
    from hydra.core.config_store import ConfigStore

    from .config import config_dir

    names = {p.stem for p in (config_dir() / group).glob("*.yaml")}
    if group == "experiment":
        names = {n for n in names if n.startswith("search_") == (config_name == "search_run")}
    try:  # a plugin's space or strategy without a YAML file
        names |= {n.removesuffix(".yaml") for n in ConfigStore.instance().list(group) if n.endswith(".yaml")}
    except OSError:
        pass
    return sorted(names, key=str.lower)


def _rule_text(key: str, search: bool) -> str:
    from .config import RULES, SEARCH_RULES

    return next((rule.text() for rule in RULES + (SEARCH_RULES if search else []) if rule.key == key), "")


def settings_table(config_name: str, overrides: Sequence[str], *, keys: Sequence[str] | None = None,
                   width: int = 100) -> tuple[list[str], dict[str, str]]:
    """(lines describing every setting: ``key = default  [allowed]`` and its meaning; the
    chosen option of each group), from the composed configuration and the schema."""
    import dataclasses

    from omegaconf import OmegaConf, open_dict

    from .config import ConfigError, SearchConfig, compose, describe_type, describe_value, load

    cfg = compose(config_name, list(overrides), return_hydra_config=True)
    choices = {k: ("null" if v is None else str(v)) for k, v in cfg.hydra.runtime.choices.items()}
    with open_dict(cfg):
        del cfg["hydra"]  # the job's settings only
    raw = OmegaConf.to_container(cfg, resolve=False)
    try:
        typed = load(cfg)
    except ConfigError:  # the help still shows the settings as given
        typed = OmegaConf.to_object(cfg)
    search = isinstance(typed, SearchConfig)
    lines: list[str] = []

    def raw_at(path: str) -> Any:
        node: Any = raw
        for part in path.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        return node

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            key = f"{prefix}{f.name}"
            value = getattr(obj, f.name)
            if key in ("space.targets", "space.search_targets", "space.valacc12") or f.name == "parent_run_id":
                continue
            if dataclasses.is_dataclass(value):
                walk(value, key + ".")
                continue
            if keys is not None and key not in keys or search and (key == "proxies" or key.startswith("archs.")):
                continue
            shown = describe_value(value)
            rawv = raw_at(key)
            if isinstance(rawv, str) and rawv.startswith("${oc.env:"):
                env = rawv[len("${oc.env:"):].split(",", 1)[0]
                shown += f" (${env} if set)"
            allowed = _rule_text(key, search) or describe_type(f.type)
            help_text = f.metadata.get("help", "")
            head = f"  {key} = {shown}"
            lines.append(head)
            body = " ".join(t for t in (f"[{allowed}]" if allowed else "", help_text) if t)
            if body:
                lines.extend(textwrap.wrap(body, width=width, initial_indent=" " * 6, subsequent_indent=" " * 6))

    walk(typed, "")
    return lines, choices


def command_help(command: str, config_name: str, overrides: Sequence[str]) -> str:
    """``harness run --help`` / ``harness search --help``: the groups with their options and
    every setting with its default, allowed values and meaning, from the schema (with the given
    overrides applied, e.g. ``harness run space=darts --help`` shows DARTS's settings)."""
    from .config import config_dir

    try:
        lines, choices = settings_table(config_name, overrides)
    except Exception as err:  # noqa: BLE001 -- the help must still say how to fix the overrides
        lines, choices = [f"  (the settings could not be composed with {list(overrides)}: {err})"], {}
    what = COMMANDS[command][1]
    out = [f"usage: harness {command} [--multirun] [GROUP=OPTION ...] [KEY=VALUE ...]", "", f"{what}.", "",
           "Overrides are Hydra's: key=value, a group's option (space=darts), experiment=NAME (a paper table,",
           "conf/experiment/NAME.yaml); --multirun sweeps comma-separated values (seed=0,1,2). Proxy specs",
           "need no quotes beyond the shell's: 'proxies=[wrcor,wrcor(power=2)]'.",
           f"Configs: {config_dir()}   Hydra's own help: harness {command} --hydra-help", "",
           "Groups (* = chosen):"]
    for group in _groups(config_name):
        chosen = choices.get(group, "null")
        opts = _options(group, config_name)
        shown = [o + ("*" if o == chosen else "") for o in opts]
        if group == "experiment":
            shown = ["null*" if chosen == "null" else "null"] + shown
        out.extend(textwrap.wrap(" | ".join(shown), width=100, initial_indent=f"  {group:<11} ",
                                 subsequent_indent=" " * 14))
    out += ["", "Settings (key = default [allowed] meaning):", *lines, ""]
    if command == "search":
        out.append("Example: harness search search=evolution objective=vote_sjw budget=1000 seed=0")
    else:
        out.append("Example: harness run experiment=nb201_quick archs.n=20 tracking=none")
    return "\n".join(out)


def top_help() -> str:
    """``harness --help``: the commands and the main settings of ``run`` and ``search``."""
    lines = ["usage: harness <command> [args]   (also: zsnas <command>, python -m harness <command>)", "",
             "zsnas-bench: how well a training-free proxy ranks architectures, how fast it is, and what a",
             "search guided by it finds.", "", "Commands:"]
    width = max(14, *map(len, COMMANDS))
    lines += [f"  {name:<{width}} {what}" for name, (_, what) in COMMANDS.items()]
    lines += ["", "`harness <command> --help` lists a command's options; run and search list every setting.", ""]
    try:
        main_run = ["seed", "archs.select", "archs.n", "batch.size", "batch.kind", "device", "engine.group"]
        run_lines, run_choices = settings_table("config", [], keys=main_run)
        main_search = ["objective", "budget", "score_seed"]
        search_lines, search_choices = settings_table("search_run", [], keys=main_search)
        groups = ", ".join(f"{g}={run_choices.get(g, 'null')}" for g in ("space", "dataset", "proxy_set"))
        lines += [f"Main settings of run (groups: {groups}, experiment=NAME):", *run_lines, "",
                  f"Main settings of search (search={search_choices.get('search')}):", *search_lines]
    except Exception as err:  # noqa: BLE001
        lines.append(f"(the settings could not be listed: {err})")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------------
# entry points


def _store_entry(cfg: Any) -> tuple[str, str, str]:
    """The outputs entry of the score store a job wrote (a shard's own store under store.shards)."""
    from .scoring.run import parse_shard, shard_store_path

    shard = parse_shard(getattr(cfg, "shard", None))
    path = cfg.store.path
    if getattr(cfg.store, "shards", None) and shard[1] > 1:
        path = shard_store_path(cfg.store.shards, shard)
    path = Path(path).resolve()
    return ("store", str(path), f"the score cache; harness store count {path}")


def _run_job(cfg: Any, out_dir: str) -> None:
    from .progress import metrics_table, print_outputs
    from .scoring.run import run
    from .tracking import tracking_entry

    tracker = _job_tracker(cfg, out_dir)
    summary = run(cfg, tracker=tracker, output_dir=out_dir)
    if summary.get("metrics"):
        print(metrics_table(summary["metrics"]) + "\n", flush=True)
    if summary.get("missing"):  # a shard whose siblings are not done: scores stored, no records yet
        records = ("records", out_dir, f"none yet: {summary['missing']} scores are other shards'; the unsharded "
                                       "run writes the records once every shard is done")
    else:
        records = ("records", out_dir, f"scores.csv, metrics.csv, summary.json; tables and figures: "
                                       f"harness report --records {out_dir}")
    print_outputs([records, _store_entry(cfg),
                   tracking_entry(cfg.tracking.enabled, cfg.tracking.uri, cfg.tracking.experiment, tracker=tracker)])


def _job_tracker(cfg: Any, out_dir: str) -> Any:
    """The job's tracker (its records' directory ``out_dir`` gets ``tracking.json``), checked now,
    before any work: an unreachable, silent or unwritable store is a TrackingError within
    ``tracking.timeout_s`` (``on_error=warn``: a warning, and the job goes on untracked)."""
    from .tracking import MlflowTracker, make_tracker

    tracker = make_tracker(cfg.tracking, run_dir=out_dir)
    if isinstance(tracker, MlflowTracker):
        tracker.check()
    return tracker


def run_command(argv: Sequence[str] | None = None) -> int:
    """``harness run [overrides]``: a scoring job (or a --multirun sweep of them)."""
    from .config import RunConfig

    return hydra_app("run", "config", RunConfig, _run_job, list(sys.argv[1:] if argv is None else argv))


#: the files of a search's run directory (harness.search.run)
SEARCH_FILES = ("search.json", "trajectory.csv", "trajectory.png", "trajectory.pdf", "genotype.py")


def _search_job(cfg: Any, out_dir: str) -> None:
    from .progress import print_outputs
    from .search import OPTIONAL_SUMMARY_KEYS, SUMMARY_KEYS, json_safe, run_search
    from .tracking import tracking_entry

    tracker = _job_tracker(cfg, out_dir)
    summary = run_search(cfg, tracker=tracker, output_dir=out_dir)
    files = ", ".join(p.name for p in sorted(Path(out_dir).glob("*")) if p.name in SEARCH_FILES)
    entries = [("records", out_dir, f"{files}; tables and figures: harness search-report --records {out_dir} "
                                    "--name NAME")]
    if summary.get("score_seed") is not None:  # valacc12 reads the benchmark, no store
        entries.append(_store_entry(cfg))
    entries.append(tracking_entry(cfg.tracking.enabled, cfg.tracking.uri, cfg.tracking.experiment, tracker=tracker))
    if summary.get("genotype_file"):  # the found network in the form the space's own training reads
        entries.append(("genotype", summary["genotype_file"], f"{summary['genotype_name']}: {summary['genotype_use']}"))
    print_outputs(entries, file=sys.stderr)  # stdout's last line is the summary
    print(json.dumps(json_safe({k: summary[k] for k in (*SUMMARY_KEYS, *OPTIONAL_SUMMARY_KEYS) if k in summary})),
          flush=True)


def search_command(argv: Sequence[str] | None = None) -> int:
    """``harness search [overrides]``: one zero-shot search (or a --multirun sweep); the last line
    of standard output is its summary as one JSON object."""
    from .config import SearchConfig

    return hydra_app("search", "search_run", SearchConfig, _search_job,
                     list(sys.argv[1:] if argv is None else argv))


# ------------------------------------------------------------------------------------------------
# harness track: log run directories to MLflow later


_TRACK_KEYS = re.compile(r"^tracking\.(uri|experiment|artifact_root|timeout_s|retries)=(.*)$")


def _run_kind(path: Path) -> str | None:
    """``run`` (a scoring job's records), ``search``, ``sweep`` (job directories with records) or None."""
    if (path / "summary.json").is_file() and (path / "metrics.csv").is_file():
        return "run"
    if (path / "search.json").is_file():
        return "search"
    if path.is_dir() and any(_run_kind(d) in ("run", "search") for d in path.iterdir() if d.is_dir()):
        return "sweep"
    return None


def _recorded_config(run_dir: Path, kind: str) -> Any:
    """The typed configuration a run directory's job ran with (its ``config.yaml``, else Hydra's
    ``.hydra/config.yaml``)."""
    from omegaconf import OmegaConf

    from .config import ConfigError, RunConfig, SearchConfig, load

    for path in (run_dir / "config.yaml", run_dir / ".hydra" / "config.yaml"):
        if path.is_file():
            return load(OmegaConf.load(path), SearchConfig if kind == "search" else RunConfig)
    raise ConfigError(f"{run_dir} has no config.yaml (nor .hydra/config.yaml): the job's settings are unknown")


def _none_to_nan(mapping: dict[str, Any], keys: Any = None) -> dict[str, Any]:
    """Strict JSON records write NaN/inf as null: read back, the values a live job logged as floats."""
    import math

    return {k: (math.nan if v is None and (keys is None or k in keys) else v) for k, v in mapping.items()}


def _number(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text) if text != "" else float("nan")
        except ValueError:
            return text


def track_dir(run_dir: Path, kind: str, settings: dict[str, Any], parent_run_id: str | None = None) -> Any:
    """Log one job's or search's run directory to MLflow with the live job's own code
    (:func:`harness.scoring.run._track`, :func:`harness.search.run._track`): same experiment, run
    name, params, metrics, tags and artifacts.  ``settings``: tracking keys over the recorded ones.
    Returns the tracker (its ``_job_run_id`` is the job's run)."""
    from . import data
    from .tracking import make_tracker

    cfg = _recorded_config(run_dir, kind)
    for key, value in settings.items():
        setattr(cfg.tracking, key, value)
    cfg.tracking.enabled, cfg.tracking.on_error, cfg.tracking.parent_run_id = True, "fail", parent_run_id
    tracker = make_tracker(cfg.tracking, run_dir=run_dir)
    tracker.check()
    config_file = run_dir / "config.yaml"
    recorded = config_file.read_bytes() if config_file.is_file() else None
    later = {"zsnas.logged_later": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    try:
        if kind == "run":
            from spaces.datafiles import checksums

            from .scoring.run import _job_run, _track, space_from_cfg

            summary = json.loads((run_dir / "summary.json").read_text())
            metrics = [_none_to_nan(m) for m in summary["metrics"]]
            bench = space_from_cfg(cfg)[0].benchmark
            files = [getattr(bench, "relpath", None), data.DATASETS[summary["dataset"]].file]
            with tracker.run(**_job_run(cfg, run_dir)) as job:
                job.set_tags(later)
                _track(tracker, job, cfg, metrics, summary, [run_dir / "scores.csv", run_dir / "metrics.csv"], run_dir,
                       checksums([f for f in files if f], cfg.data_dir))
        else:
            import csv

            from .scoring.run import space_from_cfg
            from .search.run import _search_run, _track as _track_search, judged_on

            summary = json.loads((run_dir / "search.json").read_text())
            summary = {**summary, **_none_to_nan({k: v for k, v in summary.items() if v is None and k not in
                                                  ("target", "score_seed", "genotype_file", "accuracy_note")})}
            with open(run_dir / "trajectory.csv", newline="") as fh:
                steps = [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]
            artifacts = [run_dir / name for name in SEARCH_FILES[:4] if (run_dir / name).is_file()]
            if summary.get("genotype_file") and Path(summary["genotype_file"]).is_file():
                artifacts.append(Path(summary["genotype_file"]))
            with tracker.run(**_search_run(cfg, run_dir, judged_on(cfg, space_from_cfg(cfg)[0]))) as job:
                job.set_tags(later)
                _track_search(job, cfg, summary, steps, artifacts)
    finally:
        if recorded is not None:
            config_file.write_bytes(recorded)  # the records stay as the job wrote them
    return tracker


def track_command(argv: Sequence[str]) -> int:
    """``harness track RUN_DIR [RUN_DIR ...]``: log run directories to MLflow later."""
    from spaces.vocabulary import DataFileError

    from .config import ConfigError
    from .errors import UserError
    from .progress import print_outputs
    from .tracking import TrackingError, close_sweep_run, make_tracker, open_sweep_run, read_tracking_record, \
        tracking_entry

    parser = command_parser("track", epilog=(
        "Each RUN_DIR is a scoring job's or a search's run directory (runs/<profile>/<time>_<suffix>), or a\n"
        "sweep's (runs/<profile>/sweep_...: every job in it, under a new sweep run). The runs are logged as a\n"
        "live job logs them (the job's own logging code): same experiment, names, params, metrics, tags and\n"
        "artifacts, plus the tag zsnas.logged_later. Settings: --uri or tracking.uri=URI (default: the uri the\n"
        "job was configured with), tracking.experiment=, tracking.timeout_s=. A directory whose tracking.json\n"
        "says it was logged is skipped (--force logs it again)."))
    parser.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories to log")
    parser.add_argument("--uri", default=None, help="the MLflow store (a SQLite file, sqlite:///... or http://...)")
    parser.add_argument("--experiment", default=None, help="the MLflow experiment (default: the job's own)")
    parser.add_argument("--force", action="store_true", help="log directories already logged again")
    settings: dict[str, Any] = {}
    rest = []
    for arg in argv:
        m = _TRACK_KEYS.match(arg)
        if m:
            settings[m.group(1)] = m.group(2)
        else:
            rest.append(arg)
    args = parser.parse_args(rest)
    if args.uri:
        settings["uri"] = args.uri
    if args.experiment:
        settings["experiment"] = args.experiment
    for key, kind in (("timeout_s", float), ("retries", int)):
        if key in settings:
            settings[key] = kind(settings[key])
    status, entries = 0, []
    for arg in args.run_dirs:
        run_dir = Path(arg).resolve()
        kind = _run_kind(run_dir)
        try:
            if kind is None:
                raise ConfigError(f"{arg}: no records to log (summary.json and metrics.csv of a scoring job, "
                                  "search.json of a search, or a sweep's job directories)")
            dirs = [run_dir] if kind != "sweep" else sorted(
                (d for d in run_dir.iterdir() if d.is_dir() and _run_kind(d) in ("run", "search")),
                key=lambda d: (len(d.name), d.name))
            todo = [d for d in dirs if args.force or not (read_tracking_record(d) or {}).get("tracked")]
            for d in sorted(set(dirs) - set(todo)):
                print(f"{d}: already logged to MLflow ({read_tracking_record(d).get('uri')}); --force logs it again",
                      file=sys.stderr)
            if not todo:
                continue
            parent = sweep_tracker = None
            if kind == "sweep":
                first = _recorded_config(todo[0], _run_kind(todo[0]))
                for key, value in settings.items():
                    setattr(first.tracking, key, value)
                first.tracking.on_error = "fail"
                sweep_tracker = make_tracker(first.tracking)
                sweep_tracker.check()
                overrides = None
                if (run_dir / "multirun.yaml").is_file():
                    from omegaconf import OmegaConf

                    overrides = OmegaConf.select(OmegaConf.load(run_dir / "multirun.yaml"), "hydra.overrides.task")
                parent = open_sweep_run(sweep_tracker, run_dir, overrides, "search" if _run_kind(todo[0]) == "search"
                                        else "run").run_id
            for d in todo:
                tracker = track_dir(d, _run_kind(d), settings, parent)
                print(f"{d}: logged to {tracker.tracking_uri}, experiment {tracker.experiment}, run {tracker._job_run_id}",
                      file=sys.stderr, flush=True)
                entries.append(tracking_entry(True, tracker.tracking_uri, tracker.experiment))
            if sweep_tracker is not None and parent:
                close_sweep_run(sweep_tracker, parent, run_dir, name=str(getattr(first, "profile", "sweep")))
        except (UserError, TrackingError, DataFileError) as err:
            print(f"harness track: {err}", file=sys.stderr, flush=True)
            status = 2
    if entries:
        print_outputs(list(dict.fromkeys(entries)))
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """``harness <command> [args]``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(top_help())
        return 0
    command, rest = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"harness: unknown command {command!r}; commands: {', '.join(COMMANDS)} (harness --help)",
              file=sys.stderr)
        return 2
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if command == "run":
        return run_command(rest)
    if command == "search":
        return search_command(rest)
    if command == "track":
        return track_command(rest)
    entry = importlib.import_module(COMMANDS[command][0]).main
    saved = sys.argv[0]
    sys.argv[0] = f"harness {command}"  # argparse's prog
    try:
        return int(entry(rest) or 0)
    finally:
        sys.argv[0] = saved


if __name__ == "__main__":  # python -m harness.cli [overrides] = harness run [overrides]
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    raise SystemExit(run_command())
