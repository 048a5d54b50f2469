"""The command table: every ``harness <command>``, the module that runs it, its one-line summary,
and the argument parser every non-Hydra command builds from it.  It imports only the config
(lazily, for names), so every command module may use it without a cycle."""
from __future__ import annotations

import argparse
from typing import Any


#: command -> (module with main(argv), one line of help); run and search are Hydra apps
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("harness.cli", "score architectures with proxies and rank them against the benchmark"),
    "search": ("harness.search", "a zero-shot search: a strategy guided by a proxy or vote, within a budget"),
    "bench": ("harness.bench", "timings: proxies, searches, the scoring engine against the alternatives"),
    "gpu-check": ("harness.gpu_check", "the device check: golden scores, engine speed and settings, the whole NB201 "
                                       "space, within a time budget (docs/scaling.md)"),
    "report": ("harness.reports.scores", "tables (Markdown, LaTeX) and figures from scoring jobs' records"),
    "search-report": ("harness.reports.search", "the search table and figures from search records"),
    "paper-report": ("harness.reports.paper", "the paper's proxy and ablation tables, published numbers beside ours"),
    "mobilenetv2-report": ("harness.reports.mobilenetv2", ("the mobilenetv2 space's released genotypes counted "
                                                           "beside the official code's numbers (and its searches' "
                                                           "table)")),
    "aggregate-select": ("harness.reports.aggregate_select", ("a WRCor-containing rank aggregate chosen on a "
                                                              "calibration split, judged on a held-out split")),
    "agreement": ("harness.reports.agreement", "rank agreement with NAS-Bench-Suite-Zero's published scores"),
    "reference": ("harness.reports.reference", "check a run against reference metrics with tolerances (CI bands)"),
    "store": ("harness.scoring.store", "merge or count score stores"),
    "convert": ("harness.convert", "convert an official benchmark file into the harness's tables"),
    "data": ("harness.datacheck", "data verify: check every benchmark data file against the data directory's SHA256SUMS"),
    "ui": ("harness.ui", "serve the MLflow store on 127.0.0.1 (one worker) and print each experiment's runs link"),
    "track": ("harness.cli", "log existing run directories (a job, a search or a sweep) to MLflow later, as a live "
                             "run logs them"),
}


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown, descriptions and epilogs kept as written."""


def command_parser(command: str, description: str | None = None, **kw: Any) -> argparse.ArgumentParser:
    """The argument parser of a non-Hydra command: ``harness <command>`` as its name, the
    command's line of :data:`COMMANDS` as its description, every default shown by ``--help``."""
    return argparse.ArgumentParser(prog=f"harness {command}", description=description or COMMANDS[command][1],
                                   formatter_class=_HelpFormatter, **kw)


def output_name(value: str) -> str:
    """An argparse ``type`` for ``--name``: a plain name that keeps the outputs inside ``--out``."""
    from .config import ConfigError, safe_name

    try:
        return safe_name(value, "--name")
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err)) from None
