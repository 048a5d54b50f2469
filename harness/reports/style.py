"""The one figure style of the reports: the look (a context manager), the shared colours and line
styles, and the one way a figure is saved.

Every report figure is drawn inside :func:`figure_style` and written by :func:`save`:

* ``figure_style()`` -- seaborn's ``whitegrid`` style in its ``paper`` context (the proxy-ranking
  figures); ``figure_style(grid=False)`` -- matplotlib's defaults (the search figures, as they are
  committed).  Either way, the Agg backend, and no rcParams change leaks out of the block.
* ``save(fig, path, dpi=...)`` writes one file per entry of :data:`OUTPUTS` beside ``path`` (same
  stem) and closes the figure; it returns the paths written, ``path`` first.  Changing how every
  report figure is saved (e.g. a PDF beside each PNG and a floor of 200 dpi) is a change of
  :data:`OUTPUTS` alone.

matplotlib (and seaborn, for the grid style) are imported when a figure is drawn, not on import.
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Iterator

__all__ = ["OUTPUTS", "figure_style", "pyplot", "colours", "save", "OPTIMUM_LINE", "ZERO_LINE", "ERROR_BAR",
           "DIVERGING", "PUBLISHED_LINES", "STRATEGY_MARKERS", "STRATEGY_LINES"]

#: the files a figure is saved as: ``(suffix, lowest dpi or None)`` each; the first is the file the
#: reports name.  Today: the PNG at the figure's own dpi.  E.g. ``((".png", 200), (".pdf", None))``
#: adds a PDF beside each PNG and draws every PNG at 200 dpi or more.
OUTPUTS: tuple[tuple[str, int | None], ...] = ((".png", None),)

#: a reference level (the benchmark's optimum) drawn across a panel
OPTIMUM_LINE = {"ls": "--", "c": "grey", "lw": 0.8}
#: the zero line of a bar chart
ZERO_LINE = {"color": "grey", "linewidth": 0.8}
#: error bars drawn over bars
ERROR_BAR = {"color": "black", "capsize": 3, "linewidth": 1}
#: the colour map of signed correlations (centred on 0)
DIVERGING = "RdBu_r"
#: published reference levels, in order: (line style, its name in a figure's key)
PUBLISHED_LINES = ((":", "dotted"), ("-.", "dash-dot"))
#: a search strategy's marker (accuracy-vs-cost points) and line style (trajectories)
STRATEGY_MARKERS = {"random": "o", "evolution": "s", "reinforce": "^"}
STRATEGY_LINES = {"random": ":", "evolution": "-", "reinforce": "--"}


def pyplot() -> Any:
    """``matplotlib.pyplot`` on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


@contextlib.contextmanager
def figure_style(*, grid: bool = True) -> Iterator[Any]:
    """The report look for the figures drawn in the block; yields ``pyplot``.  rcParams are
    restored on exit."""
    import matplotlib

    plt = pyplot()
    with matplotlib.rc_context():
        if not grid:
            yield plt
            return
        import seaborn as sns

        with sns.axes_style("whitegrid"), sns.plotting_context("paper"):
            yield plt


def colours() -> list[str]:
    """The colour cycle of the current style (one colour per series, in order)."""
    return list(pyplot().rcParams["axes.prop_cycle"].by_key()["color"])


def save(fig: Any, path: Path | str, *, dpi: int, tight: bool = False) -> list[Path]:
    """Write ``fig`` as each of :data:`OUTPUTS` (``path`` with that suffix) at ``dpi`` (raised to
    the output's floor), cropped to its content when ``tight``; close it; return the paths."""
    written = []
    try:
        for suffix, floor in OUTPUTS:
            out = Path(path).with_suffix(suffix)
            extra = {"bbox_inches": "tight"} if tight else {}
            fig.savefig(out, dpi=max(dpi, floor) if floor else dpi, **extra)
            written.append(out)
    finally:
        pyplot().close(fig)
    return written
