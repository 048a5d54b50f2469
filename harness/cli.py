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
from pathlib import Path
from typing import Any, Callable, Sequence

from .commands import COMMANDS, command_parser, output_name  # noqa: F401  (re-exported for the commands)

log = logging.getLogger("harness")

#: Hydra's own grammar functions (``seed=range(0,3)``); any other ``name(...)`` in a proxy or
#: objective override is a proxy spec, quoted so that Hydra reads it as a string
_HYDRA_FUNCTIONS = {"bool", "choice", "float", "glob", "int", "interval", "range", "shuffle", "sort", "str", "tag"}
_SPEC = re.compile(r"([A-Za-z_][\w.]*)\(([^()]*)\)")
_SPEC_KEYS = re.compile(r"^[+~]{0,2}(proxies|objective)=")


def quote_specs(arg: str) -> str:
    """``proxies=[wrcor(power=2)]`` -> ``proxies=[wrcor,"wrcor(power=2)"]``-style quoting of proxy
    specs, which Hydra's override grammar would read as a call of an unknown function.  Only the
    values of ``proxies`` and ``objective`` are touched, and only when they hold no quotes.

    >>> quote_specs("proxies=[wrcor,wrcor(power=2, weighting=linear)]")
    'proxies=[wrcor,"wrcor(power=2, weighting=linear)"]'
    >>> quote_specs("seed=range(0,3)"), quote_specs("objective=choice(wrcor,synflow)")
    ('seed=range(0,3)', 'objective=choice(wrcor,synflow)')
    """
    if not _SPEC_KEYS.match(arg) or "'" in arg or '"' in arg:
        return arg
    key, _, value = arg.partition("=")
    return key + "=" + _SPEC.sub(lambda m: m.group(0) if m.group(1) in _HYDRA_FUNCTIONS else f'"{m.group(0)}"', value)


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

    @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name=config_name)
    def _main(cfg) -> None:
        try:
            typed, out_dir = prepare_job(cfg, schema)
            job(typed, out_dir)
        except ConfigError as err:
            print(f"harness {command}: {err}", file=sys.stderr, flush=True)
            raise SystemExit(2) from None

    saved = sys.argv
    sys.argv = [f"harness {command}", *argv]
    try:
        _main()
    finally:
        sys.argv = saved
    return 0


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
    return (f"{len(cfg.proxies)} proxies ({', '.join(cfg.proxies)}) on {archs}, "
            f"{cfg.batch.size} {cfg.batch.kind.name} {images} images, seed {cfg.seed}"
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
    from .tracking import make_tracker, tracking_entry

    summary = run(cfg, tracker=make_tracker(cfg.tracking), output_dir=out_dir)
    if summary.get("metrics"):
        print(metrics_table(summary["metrics"]) + "\n", flush=True)
    if summary.get("missing"):  # a shard whose siblings are not done: scores stored, no records yet
        records = ("records", out_dir, f"none yet: {summary['missing']} scores are other shards'; the unsharded "
                                       "run writes the records once every shard is done")
    else:
        records = ("records", out_dir, f"scores.csv, metrics.csv, summary.json; tables and figures: "
                                       f"harness report --records {out_dir}")
    print_outputs([records, _store_entry(cfg),
                   tracking_entry(cfg.tracking.enabled, cfg.tracking.uri, cfg.tracking.experiment)])


def run_command(argv: Sequence[str] | None = None) -> int:
    """``harness run [overrides]``: a scoring job (or a --multirun sweep of them)."""
    from .config import RunConfig

    return hydra_app("run", "config", RunConfig, _run_job, list(sys.argv[1:] if argv is None else argv))


#: the files of a search's run directory (harness.search.run)
SEARCH_FILES = ("search.json", "trajectory.csv", "trajectory.png", "trajectory.pdf", "genotype.py")


def _search_job(cfg: Any, out_dir: str) -> None:
    from .progress import print_outputs
    from .search import OPTIONAL_SUMMARY_KEYS, SUMMARY_KEYS, json_safe, run_search
    from .tracking import make_tracker, tracking_entry

    summary = run_search(cfg, tracker=make_tracker(cfg.tracking), output_dir=out_dir)
    files = ", ".join(p.name for p in sorted(Path(out_dir).glob("*")) if p.name in SEARCH_FILES)
    entries = [("records", out_dir, f"{files}; tables and figures: harness search-report --records {out_dir} "
                                    "--name NAME")]
    if summary.get("score_seed") is not None:  # valacc12 reads the benchmark, no store
        entries.append(_store_entry(cfg))
    entries.append(tracking_entry(cfg.tracking.enabled, cfg.tracking.uri, cfg.tracking.experiment))
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
