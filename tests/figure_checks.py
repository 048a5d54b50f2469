"""Checks of a drawn figure's layout, measured with the renderer (window extents in pixels):
the figures the reports save are captured (:func:`capture`) and measured here."""
from __future__ import annotations

import contextlib
from itertools import combinations
from pathlib import Path
from typing import Any, Iterator

#: overlaps smaller than this many pixels (either way) are anti-aliasing, not a collision
SLACK = 1.0


@contextlib.contextmanager
def capture(monkeypatch) -> Iterator[dict[str, Any]]:
    """Every figure saved in the block, by the file name it was saved as first (its stem)."""
    from matplotlib.figure import Figure

    saved: dict[str, Any] = {}
    original = Figure.savefig

    def savefig(self, fname, *args, **kwargs):
        saved.setdefault(Path(fname).stem, self)
        return original(self, fname, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    yield saved


def _drawn_ticklabels(axis) -> list[Any]:
    return [t.label1 for t in axis._update_ticks() if t.label1.get_visible()] + \
           [t.label2 for t in axis._update_ticks() if t.label2.get_visible()]


def words(fig) -> list[Any]:
    """The figure's words outside the data: titles, axis labels, tick labels (those drawn), figure
    texts; a heat map's cell annotations are data and are not among them."""
    texts = [t for t in (getattr(fig, "_suptitle", None), *fig.texts) if t is not None]
    for ax in fig.axes:
        if not ax.get_visible():
            continue
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label]
        texts += _drawn_ticklabels(ax.xaxis) + _drawn_ticklabels(ax.yaxis)
    unique = list({id(t): t for t in texts}.values())  # the suptitle is among fig.texts, too
    return [t for t in unique if t.get_visible() and t.get_text().strip()]


def _overlap(a, b) -> bool:
    return min(a.x1, b.x1) - max(a.x0, b.x0) > SLACK and min(a.y1, b.y1) - max(a.y0, b.y0) > SLACK


def _inside(box, frame) -> bool:
    return box.x0 >= frame.x0 - SLACK and box.y0 >= frame.y0 - SLACK and \
        box.x1 <= frame.x1 + SLACK and box.y1 <= frame.y1 + SLACK


def legends(fig) -> list[Any]:
    found = list(fig.legends)
    found += [ax.get_legend() for ax in fig.axes if ax.get_legend() is not None]
    return found


def problems(fig) -> list[str]:
    """What is wrong with ``fig``'s layout: words overlapping words, words or keys outside the
    figure, keys over a panel (any axes' area, colour bars included)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)  # a saved figure is closed: draw it again on a canvas of its own
    canvas.draw()
    r = canvas.get_renderer()
    frame = fig.bbox
    out = []
    texts = [(t, t.get_window_extent(r)) for t in words(fig)]
    for (t, box) in texts:
        if not _inside(box, frame):
            out.append(f"{t.get_text()!r} is cut by the figure's edge ({box} vs {frame})")
    for (a, ba), (b, bb) in combinations(texts, 2):
        if _overlap(ba, bb):
            out.append(f"{a.get_text()!r} overlaps {b.get_text()!r}")
    for leg in legends(fig):
        box = leg.get_window_extent(r)
        if not _inside(box, frame):
            out.append(f"a legend is cut by the figure's edge ({box})")
        for ax in fig.axes:
            if ax.get_visible() and _overlap(box, ax.get_window_extent(r)):
                out.append(f"a legend covers the panel {ax.get_title()!r} ({box} over {ax.get_window_extent(r)})")
    return out


def png_dpi(path: Path) -> float:
    """The resolution a PNG file states (its pHYs chunk), in dots per inch."""
    from PIL import Image

    with Image.open(path) as img:
        return round(float(img.info["dpi"][0]), 1)  # stored as dots per metre: 199.9996 is 200
