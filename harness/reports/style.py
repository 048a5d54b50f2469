"""The one figure style of the reports: the look (a context manager), the shared colours and line
styles, the helpers every figure uses to keep its words readable, and the one way a figure is saved.

Every report figure -- the proxy-ranking figures and the search figures alike -- is drawn inside
:func:`figure_style` and written by :func:`save`:

* ``figure_style()`` -- seaborn's ``whitegrid`` style in its ``paper`` context, constrained layout
  (labels, titles and colour bars are fitted inside the figure), TrueType fonts in the PDF (what
  publishers ask for), the Agg backend; no rcParams change leaks out of the block.
* ``save(fig, path)`` writes one file per entry of :data:`OUTPUTS` beside ``path`` (same stem) --
  the PNG at :data:`DPI` or more and a vector PDF -- and closes the figure; it returns the paths
  written, ``path``'s suffix first.
* ``legend_outside(fig, ...)`` puts a figure's key outside every panel, in space the layout
  reserves for it, so a key never covers data.
* ``axis_scale(values)`` / ``set_scale(ax, "x", values, label)`` choose a log (all positive) or
  symlog (zeros or both signs) axis when a panel's values span more than :data:`WIDE_RANGE`, and
  say so in the axis label.
* ``wrap_label(text)`` breaks a long category label (``space: dataset/split``) over lines.
* ``seeds_note(n_seeds)`` is the words an error-bar axis carries: over how many seeds the ± is,
  and that a single seed has no bar.

matplotlib (and seaborn) are imported when a figure is drawn, not on import.
"""
from __future__ import annotations

import contextlib
import logging
import math
import textwrap
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

__all__ = ["OUTPUTS", "DPI", "WIDE_RANGE", "figure_style", "pyplot", "colours", "save", "legend_outside",
           "axis_scale", "set_scale", "wrap_label", "label_width", "seeds_note", "OPTIMUM_LINE", "ZERO_LINE", "ERROR_BAR",
           "DIVERGING", "MISSING_CELL", "PUBLISHED_LINES", "STRATEGY_MARKERS", "STRATEGY_LINES"]

#: the raster resolution of every report figure (dots per inch)
DPI = 200
#: the files a figure is saved as: ``(suffix, lowest dpi or None)`` each; the first is the file the
#: reports name: a PNG at :data:`DPI` or more, and a vector PDF beside it.
OUTPUTS: tuple[tuple[str, int | None], ...] = ((".png", DPI), (".pdf", None))
#: above this ratio of a panel's largest to smallest magnitude its axis is logarithmic
WIDE_RANGE = 1e3

#: the rcParams of the report look, on top of seaborn's whitegrid/paper
_RC = {
    "figure.constrained_layout.use": True,
    "figure.constrained_layout.h_pad": 0.04,
    "figure.constrained_layout.w_pad": 0.04,
    "pdf.fonttype": 42,  # TrueType in the PDF, not Type 3 (journals reject Type 3)
    "ps.fonttype": 42,
    "savefig.dpi": DPI,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "legend.title_fontsize": 8,
    "legend.frameon": False,
    "figure.titlesize": 9,
}

#: a reference level (the benchmark's optimum) drawn across a panel
OPTIMUM_LINE = {"ls": "--", "c": "grey", "lw": 0.8}
#: the zero line of a bar chart
ZERO_LINE = {"color": "grey", "linewidth": 0.8}
#: error bars drawn over bars
ERROR_BAR = {"ecolor": "black", "capsize": 2, "elinewidth": 0.8}
#: the colour map of signed correlations (centred on 0)
DIVERGING = "RdBu_r"
#: the colour of a heat-map cell with no value
MISSING_CELL = "0.88"
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
def figure_style() -> Iterator[Any]:
    """The report look for the figures drawn in the block; yields ``pyplot``.  rcParams are
    restored on exit."""
    import matplotlib
    import seaborn as sns

    plt = pyplot()
    with matplotlib.rc_context():
        with sns.axes_style("whitegrid"), sns.plotting_context("paper"):
            matplotlib.rcParams.update(_RC)
            yield plt


def colours() -> list[str]:
    """The colour cycle of the current style (one colour per series, in order)."""
    return list(pyplot().rcParams["axes.prop_cycle"].by_key()["color"])


def save(fig: Any, path: Path | str, *, dpi: int = DPI, tight: bool = False) -> list[Path]:
    """Write ``fig`` as each of :data:`OUTPUTS` (``path`` with that suffix) at ``dpi`` (raised to
    the output's floor), cropped to its content when ``tight``; close it; return the paths.  The
    PDF carries no creation date, so an unchanged figure is an unchanged file."""
    written = []
    logging.getLogger("fontTools").setLevel(logging.WARNING)  # the PDF's font subsetting chats at INFO
    try:
        for suffix, floor in OUTPUTS:
            out = Path(path).with_suffix(suffix)
            extra: dict[str, Any] = {"bbox_inches": "tight", "pad_inches": 0.03} if tight else {}
            if suffix == ".pdf":
                extra["metadata"] = {"CreationDate": None}
            fig.savefig(out, dpi=max(dpi, floor) if floor else dpi, **extra)
            written.append(out)
    finally:
        pyplot().close(fig)
    return written


def legend_outside(fig: Any, handles: Sequence[Any], labels: Sequence[str], *, where: str = "right",
                   title: str | None = None, ncol: int | None = None) -> Any:
    """The figure's one key, outside every panel: ``where`` is ``right`` (a column beside the
    panels) or ``bottom`` (rows under them, ``ncol`` columns); constrained layout shrinks the
    panels to make room, and the figure grows where the key would not fit.  Duplicate labels are
    shown once."""
    seen: dict[str, Any] = {}
    for h, lab in zip(handles, labels):
        seen.setdefault(lab, h)
    loc = {"right": "outside right upper", "bottom": "outside lower center"}[where]
    if ncol is None:
        ncol = 1 if where == "right" else min(len(seen), 4) or 1
    legend = fig.legend(list(seen.values()), list(seen), loc=loc, ncol=ncol, title=title)
    # a key wider (below) or taller (beside) than the figure would be cut: the figure grows to hold it
    box = legend.get_window_extent(fig.canvas.get_renderer())
    width, height = box.width / fig.dpi + 0.2, box.height / fig.dpi + 0.2
    if where == "bottom" and width > fig.get_figwidth():
        fig.set_figwidth(width)
    if where == "right" and height > fig.get_figheight():
        fig.set_figheight(height)
    return legend


def _finite(values: Iterable[float]) -> np.ndarray:
    v = np.asarray(list(values), dtype=float)
    return v[np.isfinite(v)]


def _magnitudes(v: np.ndarray) -> tuple[float, float] | None:
    """(low, high) magnitude of the nonzero values: the 5th/95th percentiles of ``|v|`` for 20
    values or more (a few stragglers near zero do not make an axis logarithmic), else min/max."""
    mag = np.abs(v[v != 0])
    if mag.size < 2:
        return None
    if mag.size >= 20:
        return float(np.percentile(mag, 5)), float(np.percentile(mag, 95))
    return float(mag.min()), float(mag.max())


def axis_scale(values: Iterable[float]) -> str:
    """``linear``, ``log`` or ``symlog`` for an axis showing ``values`` (non-finite ones ignored):
    logarithmic when the magnitudes span more than :data:`WIDE_RANGE` -- ``log`` when every value
    is positive, ``symlog`` when there are zeros or negative values.

    >>> axis_scale([1.0, 2.0, 3.0]), axis_scale([1.0, 1e49]), axis_scale([0.0, 1e-3, 1e36])
    ('linear', 'log', 'symlog')
    """
    v = _finite(values)
    span = _magnitudes(v)
    if span is None or span[0] <= 0 or span[1] / span[0] <= WIDE_RANGE:
        return "linear"
    return "log" if (v > 0).all() else "symlog"


def set_scale(ax: Any, axis: str, values: Iterable[float], label: str) -> str:
    """Give ``ax``'s ``axis`` (``x`` or ``y``) the :func:`axis_scale` of ``values`` and the label
    ``label`` (with ``(log scale)`` / ``(symlog scale)`` when it is not linear); return the scale."""
    v = _finite(values)
    scale = axis_scale(v)
    setter = ax.set_xscale if axis == "x" else ax.set_yscale
    if scale == "symlog":
        low, _ = _magnitudes(v)  # type: ignore[misc]
        setter("symlog", linthresh=10 ** math.floor(math.log10(low)))
    elif scale == "log":
        setter("log")
    (ax.set_xlabel if axis == "x" else ax.set_ylabel)(label if scale == "linear" else f"{label} ({scale} scale)")
    if scale != "linear":
        import matplotlib.ticker as mticker

        target = ax.xaxis if axis == "x" else ax.yaxis
        # at most ~5 labelled decades: the labels of a narrow panel must not collide
        inner = (mticker.LogLocator(numticks=12) if scale == "log"
                 else mticker.SymmetricalLogLocator(transform=target.get_transform(), subs=[1.0]))
        target.set_major_locator(_thinned(inner, 5))
        target.set_minor_locator(mticker.NullLocator())
    return scale


def _thinned(inner: Any, n: int) -> Any:
    """A locator keeping every k-th tick of ``inner`` (zero among them, if it is one) so that at
    most ``n`` remain in view."""
    import matplotlib.ticker as mticker

    class Thinned(mticker.Locator):
        def __call__(self) -> Any:
            return self.tick_values(*self.axis.get_view_interval())

        def tick_values(self, vmin: float, vmax: float) -> Any:
            ticks = np.asarray(inner.tick_values(vmin, vmax), dtype=float)
            lo, hi = sorted((vmin, vmax))
            ticks = ticks[(ticks >= lo) & (ticks <= hi)]
            if ticks.size <= n:
                return ticks
            step = math.ceil(ticks.size / n)
            zero = np.flatnonzero(ticks == 0)
            return ticks[int(zero[0]) % step if zero.size else 0::step]

        def set_axis(self, axis: Any) -> None:
            super().set_axis(axis)
            inner.set_axis(axis)

    return Thinned()


def wrap_label(text: str, width: int = 14) -> str:
    """A category label over lines of about ``width`` characters (``space: dataset/split`` breaks
    after the colon first).

    >>> wrap_label("nb201: cifar10-valid/valid")
    'nb201:\\ncifar10-valid/valid'
    """
    parts = [p.strip() for p in str(text).split(": ")]
    lines = []
    for i, p in enumerate(parts):
        piece = p + (":" if i < len(parts) - 1 else "")
        lines += textwrap.wrap(piece, width, break_on_hyphens=False, break_long_words=False) or [piece]
    return "\n".join(lines)


def label_width(labels: Iterable[str], fontsize: float = 7.0) -> float:
    """About how wide (inches) the widest line of ``labels`` is at ``fontsize`` points: the room a
    category needs on an axis so that its neighbours' labels do not touch it."""
    longest = max((len(line) for lab in labels for line in str(lab).splitlines()), default=0)
    return 0.62 * fontsize / 72 * longest + 0.1


def seeds_note(n_seeds: Iterable[int]) -> str:
    """What the ± of a chart is, in words for its axis label or caption.

    >>> seeds_note([3, 3]), seeds_note([1]), seeds_note([1, 3])
    ('mean ± std over 3 seeds', 'one seed: no error bars', 'mean ± std over 1–3 seeds; one seed: no bar')
    """
    ns = sorted({int(n) for n in n_seeds if n is not None and not (isinstance(n, float) and math.isnan(n))})
    if not ns or ns == [1]:
        return "one seed: no error bars"
    if len(ns) == 1:
        return f"mean ± std over {ns[0]} seeds"
    return f"mean ± std over {ns[0]}–{ns[-1]} seeds" + ("; one seed: no bar" if ns[0] == 1 else "")
