"""The one place report artifacts reach the tracker.

A scoring job (:func:`harness.scoring.run.run`) and a search (:func:`harness.search.run_search`) log their
records and figures through :func:`log_artifacts`; a scoring job's own figures are drawn from its
records and logged by :func:`log_job_figures`; a ``--multirun`` sweep's report (the tables and figures
``harness report`` / ``harness search-report`` would write for its records) is built at the sweep's end
and logged to the sweep's run by :func:`log_sweep_report`.  Nothing heavy is imported until a figure is
drawn.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Iterable

log = logging.getLogger(__name__)

__all__ = ["log_artifacts", "log_job_figures", "log_sweep_report"]


def log_artifacts(run_handle: Any, paths: Iterable[str | os.PathLike[str] | None],
                  artifact_path: str | None = None) -> list[Path]:
    """Log each file of ``paths`` (``None`` entries skipped) to the tracker run ``run_handle`` (a
    :class:`harness.tracking.RunHandle`), under ``artifact_path`` in the run's artifacts (``None``:
    at the top); return the paths logged.  A missing file raises, as the tracker does."""
    logged = []
    for p in paths:
        if p is None:
            continue
        run_handle.log_artifact(str(p), artifact_path)
        logged.append(Path(p))
    return logged


def log_job_figures(run_handle: Any, out_dir: str | os.PathLike[str], name: str = "job",
                    artifact_path: str | None = None) -> list[Path]:
    """Draw a scoring job's figures from the records in ``out_dir`` (``figures/{name}_*.png``, as
    ``harness report`` draws them) and log them; return the paths logged.  A failure to draw or
    to log them is a warning, never an error (the job's numbers are already recorded)."""
    try:
        from .scores import load_records, summarise, write_figures

        scores, metrics = load_records([Path(out_dir)])
        figures = write_figures(scores, summarise(metrics), Path(out_dir), name)
        return log_artifacts(run_handle, figures, artifact_path)
    except Exception as err:  # noqa: BLE001 -- a figure failure must not lose the job's numbers
        log.warning("could not draw the job's figures: %s", err)
        return []


def log_sweep_report(run_handle: Any, sweep_dir: str | os.PathLike[str], *, kind: str = "scores",
                     name: str = "sweep", artifact_path: str = "report") -> list[Path]:
    """Build the report of the records below ``sweep_dir`` into ``<sweep_dir>/report/`` (``kind``:
    ``scores`` as ``harness report`` does, ``search`` as ``harness search-report``) and log its
    tables and figures under ``artifact_path`` (``report/tables/...``, ``report/figures/...``);
    return the paths logged.  A failure is a warning (the sweep's runs are already recorded)."""
    out = Path(sweep_dir) / "report"
    try:
        if kind == "search":
            from .search import build as build_search

            paths = list(build_search([Path(sweep_dir)], out, name)["paths"])
        elif kind == "scores":
            from .scores import build as build_scores

            built = build_scores([Path(sweep_dir)], out, name)
            paths = [*built["tables"], built["summary_csv"], *built["figures"]]
        else:
            raise ValueError(f"unknown report kind {kind!r}; expected 'scores' or 'search'")
        logged = []
        for p in map(Path, paths):
            rel = p.parent.relative_to(out).as_posix() if p.parent.is_relative_to(out) else "."
            logged += log_artifacts(run_handle, [p], artifact_path if rel == "." else f"{artifact_path}/{rel}")
        return logged
    except Exception as err:  # noqa: BLE001 -- a report failure must not lose the sweep's numbers
        log.warning("could not build or log the sweep's report: %s", err)
        return []
