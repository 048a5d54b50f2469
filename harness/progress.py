"""Progress of a long loop, and the closing lines that say where a command wrote its results.

:class:`Progress` is the one progress reporter of the scoring job (:mod:`harness.scoring.run`) and
the search (:mod:`harness.search.run`).  On a terminal it draws a ``tqdm`` bar (count, rate, ETA)
on stderr, with the job's log lines printed above it; anywhere else (a log file, CI, a pipe) it
writes plain log lines, one every ``every`` items or every ``interval`` seconds, whichever comes
first -- never a carriage-return bar::

    scored 250/1000 archs (12.3/s, ETA 1m01s)
    scored 1000/1000 archs in 1m21s (12.3/s)

Progress is reported at the INFO level of the caller's logger: a logger quietened to WARNING
(a search scoring one small batch at a time) shows neither bar nor lines.  ``ZSNAS_PROGRESS=bar``
or ``=lines`` overrides the terminal test (e.g. ``lines`` under a terminal multiplexer that logs).

:func:`outputs_block` formats the closing lines of a command: what it wrote, where, and how to
open it (one ``  label  path  (how to open it)`` line each).
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, TextIO

__all__ = ["ENV_VAR", "Progress", "files_entries", "format_duration", "format_rate", "outputs_block",
           "print_outputs", "metrics_table"]

#: ``bar`` or ``lines``: overrides the terminal test
ENV_VAR = "ZSNAS_PROGRESS"


def format_duration(seconds: float) -> str:
    """A short duration: ``45s``, ``1m01s``, ``2h03m``; ``?`` when unknown.

    >>> format_duration(45.2), format_duration(61), format_duration(7380), format_duration(math.inf)
    ('45s', '1m01s', '2h03m', '?')
    """
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return "?"
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{(s % 3600) // 60:02d}m"


def format_rate(done: int, elapsed: float, unit: str) -> str:
    """``12.3/s`` for at least one item a second, else ``2.04 s/<unit>`` (a slow loop's rate reads
    better per item); ``?/s`` before any time has passed.

    >>> format_rate(123, 10, "arch"), format_rate(5, 10.2, "arch"), format_rate(23456, 10, "arch")
    ('12.3/s', '2.04 s/arch', '2346/s')
    """
    if done <= 0 or elapsed <= 0:
        return "?/s"
    rate = done / elapsed
    if rate >= 100:
        return f"{rate:.0f}/s"
    return f"{rate:.3g}/s" if rate >= 1 else f"{elapsed / done:.3g} s/{unit}"


def _use_bar(stream: TextIO) -> bool:
    choice = os.environ.get(ENV_VAR, "").strip().lower()
    if choice in ("bar", "tty"):
        return True
    if choice in ("lines", "log", "plain"):
        return False
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


class Progress:
    """Count ``total`` items of a loop and report the progress (see the module docstring).

    ``verb`` and ``what`` make the line: ``"{verb} {done}/{total} {what} ({rate}, ETA {eta})"``;
    ``detail`` (a callable, called only when a line is written or the bar refreshed) appends
    ``": <detail>"``.  ``bar`` forces the bar (True) or the lines (False); None decides by the
    terminal test.  ``clock`` is injectable for tests.  Use as a context manager, or call
    :meth:`close`: the final line (``... in 1m21s (12.3/s)``) is always logged, so a log file
    records the loop's time even when a bar was drawn."""

    def __init__(self, total: int, *, logger: logging.Logger, verb: str = "done", what: str = "items",
                 unit: str | None = None, every: int = 25, interval: float = 30.0,
                 detail: Callable[[], str] | None = None, bar: bool | None = None,
                 stream: TextIO | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if every < 1:
            raise ValueError(f"every={every!r}: a positive number of items between progress lines")
        self.total, self.logger, self.verb, self.what = int(total), logger, verb, what
        self.unit = unit or (what[:-1] if what.endswith("s") else what)
        self.every, self.interval, self.detail, self.clock = int(every), float(interval), detail, clock
        self.done = 0
        self.enabled = logger.isEnabledFor(logging.INFO)
        self._start = self._last_time = clock()
        self._last_done = 0
        self._closed = False
        self._bar: Any = None
        self._redirect: contextlib.ExitStack | None = None
        stream = stream if stream is not None else sys.stderr
        if self.enabled and self.total > 0 and (bar if bar is not None else _use_bar(stream)):
            self._open_bar(stream)

    # -- the bar ---------------------------------------------------------------------------------
    def _open_bar(self, stream: TextIO) -> None:
        from tqdm import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        self._bar = tqdm(total=self.total, desc=self.verb, unit=self.unit, file=stream, dynamic_ncols=True,
                         mininterval=0.5, leave=False)
        # the job's log lines (to the root logger's console handler) go above the bar, not through it
        self._redirect = contextlib.ExitStack()
        self._redirect.enter_context(logging_redirect_tqdm(loggers=[logging.getLogger()], tqdm_class=tqdm))

    @property
    def uses_bar(self) -> bool:
        """Whether a tqdm bar is drawn (else: plain lines)."""
        return self._bar is not None

    # -- counting --------------------------------------------------------------------------------
    def update(self, n: int = 1) -> None:
        """``n`` more items done."""
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            if self.detail is not None:
                self._bar.set_postfix_str(self.detail(), refresh=False)
            self._bar.update(n)
            return
        if self.done >= self.total:
            return  # the final line is close()'s
        now = self.clock()
        if self.done - self._last_done >= self.every or now - self._last_time >= self.interval:
            self.logger.info("%s", self.line(now))
            self._last_done, self._last_time = self.done, now

    def line(self, now: float | None = None) -> str:
        """The progress line as of ``now``: ``scored 250/1000 archs (12.3/s, ETA 1m01s)``."""
        now = self.clock() if now is None else now
        elapsed = now - self._start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate > 0 else math.inf
        text = (f"{self.verb} {self.done}/{self.total} {self.what} "
                f"({format_rate(self.done, elapsed, self.unit)}, ETA {format_duration(eta)})")
        return text + (f": {self.detail()}" if self.detail is not None else "")

    def close(self) -> None:
        """Remove the bar and log the final line (the total time and rate), once."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
            assert self._redirect is not None
            self._redirect.close()
        if not self.enabled or self.total <= 0:
            return
        elapsed = self.clock() - self._start
        rate = format_rate(self.done, elapsed, self.unit)
        if self.done >= self.total:
            text = f"{self.verb} {self.done}/{self.total} {self.what} in {format_duration(elapsed)} ({rate})"
        else:
            text = f"stopped: {self.verb} {self.done}/{self.total} {self.what} in {format_duration(elapsed)} ({rate})"
        self.logger.info("%s", text + (f": {self.detail()}" if self.detail is not None else ""))

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


# ------------------------------------------------------------------------------------------------
# where a command wrote its results


def outputs_block(entries: Iterable[tuple[str, str | os.PathLike[str], str]], title: str = "results") -> str:
    """The closing lines of a command: ``title:`` then one ``  label  path  (note)`` line per
    entry (an empty note is left out)."""
    entries = [(label, os.fspath(path), note) for label, path, note in entries]
    width = max((len(label) for label, _, _ in entries), default=0)
    lines = [f"{title}:"]
    for label, path, note in entries:
        lines.append(f"  {label:<{width}}  {path}" + (f"  ({note})" if note else ""))
    return "\n".join(lines)


def print_outputs(entries: Sequence[tuple[str, str | os.PathLike[str], str]], *, title: str = "results",
                  file: TextIO | None = None) -> None:
    """Print :func:`outputs_block` (to stdout unless ``file``) and flush."""
    print(outputs_block(entries, title), file=file if file is not None else sys.stdout, flush=True)


def print_written(paths: Sequence[str | os.PathLike[str]]) -> None:
    """What a report command prints when it is done: each file it wrote, one per line, then the
    outputs block naming them by directory (:func:`files_entries`)."""
    for p in paths:
        print(p)
    print_outputs(files_entries(paths))


#: how a written file is opened, by suffix
_OPEN = {".md": "Markdown", ".tex": "LaTeX (\\input)", ".csv": "CSV", ".png": "PNG", ".pdf": "PDF",
         ".json": "JSON", ".sqlite": "SQLite"}


def files_entries(paths: Iterable[str | os.PathLike[str]]) -> list[tuple[str, str, str]]:
    """One outputs entry per directory of ``paths`` (label: the directory's name, e.g. ``tables``,
    ``figures``): the directory, and a note naming its files with their kinds, e.g.
    ``Markdown: x.md; LaTeX (\\input): x.tex``."""
    by_dir: dict[Path, list[Path]] = {}
    for p in map(Path, paths):
        by_dir.setdefault(p.parent, []).append(p)
    entries = []
    for folder, files in by_dir.items():
        kinds: dict[str, list[str]] = {}
        for f in files:
            kinds.setdefault(_OPEN.get(f.suffix.lower(), f.suffix.lstrip(".") or "file"), []).append(f.name)
        note = "; ".join(f"{kind}: {', '.join(names)}" for kind, names in kinds.items())
        entries.append((folder.name or "files", str(folder.resolve()), note))
    return entries


def metrics_table(metrics: Iterable[dict[str, Any]]) -> str:
    """A scoring job's rank metrics as a plain table (proxy, target, Kendall tau, Spearman rho,
    architectures, non-finite scores): what ``harness run`` prints when it ends."""
    rows = [(m["proxy"], f"{m['dataset']}/{m['split']}", _num(m["tau"]), _num(m["rho"]), str(m["n_archs"]),
             str(m["n_nan"]), str(m["n_inf"])) for m in metrics]
    head = ("proxy", "target", "tau", "rho", "archs", "NaN", "inf")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    lines = ["  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()
             for r in [head, *rows]]
    return "\n".join(lines)


def _num(x: float) -> str:
    return "nan" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.3f}"
