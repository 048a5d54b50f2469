r"""The one table writer of the reports: a small table model rendered to Markdown, LaTeX and CSV.

A :class:`Table` is a header, rows of cells and the words around them: notes (paragraphs above the
Markdown table, e.g. the caption), and for LaTeX comment lines, a row of spanning group labels
above the header and a footnote row.  A cell is plain text or a :class:`MeanStd`; every cell is
escaped here, for the format it is written in, and nowhere else:

* Markdown: ``|`` -> ``\|`` (notes are prose and are written as they are);
* LaTeX: :func:`latex_escape` (the specials, and ``–``, ``±``, ``τ``, ``ρ`` as LaTeX), except for a
  :class:`Tex` cell, which is LaTeX already;
* CSV: the :mod:`csv` module's quoting; a cell is its plain text.

Only the standard library is used.

>>> t = Table(["proxy", "τ"], [["grad_norm", MeanStd(0.61234, 0.0212)], ["a|b", MeanStd(float("nan"), 0.1)]],
...           align="lr")
>>> print(t.markdown(), end="")
| proxy | τ |
|:---|---:|
| grad_norm | 0.612 ± 0.021 |
| a\|b | – |
>>> print(t.latex(), end="")
\begin{tabular}{lr}
\toprule
proxy & $\tau$ \\
\midrule
grad\_norm & $0.612 \pm 0.021$ \\
a|b & -- \\
\bottomrule
\end{tabular}
"""
from __future__ import annotations

import csv
import io
import math
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

__all__ = ["Table", "MeanStd", "Tex", "latex_escape", "markdown_escape", "write", "FORMATS"]

_TEX_ESCAPES = {
    "\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
    "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
    "<": r"\textless{}", ">": r"\textgreater{}", "–": "--", "±": r"$\pm$", "τ": r"$\tau$", "ρ": r"$\rho$",
}

#: the missing-value mark (LaTeX: ``--``)
MISSING = "–"
#: LaTeX comment lines are wrapped at this width
COMMENT_WIDTH = 96


def latex_escape(text: str) -> str:
    r"""Escape LaTeX special characters in plain text.

    >>> latex_escape("grad_norm 50% & $x$")
    'grad\\_norm 50\\% \\& \\$x\\$'
    """
    return "".join(_TEX_ESCAPES.get(ch, ch) for ch in str(text))


def markdown_escape(text: str) -> str:
    r"""Escape a Markdown table cell (a ``|`` would end the cell).

    >>> markdown_escape("a|b")
    'a\\|b'
    """
    return str(text).replace("|", "\\|")


class Tex(str):
    """A cell (or LaTeX comment) that is LaTeX already: written as it is in LaTeX, as its text elsewhere."""


@dataclass(frozen=True)
class MeanStd:
    """A mean ± standard deviation cell, to ``digits`` decimals: ``0.612 ± 0.021`` (LaTeX
    ``$0.612 \\pm 0.021$``); the mean alone when the std is not finite; :data:`MISSING` when the
    mean is not finite."""

    mean: float | None
    std: float | None
    digits: int = 3

    def render(self, fmt: str) -> str:
        latex = fmt == "latex"
        if self.mean is None or not math.isfinite(self.mean):
            return latex_escape(MISSING) if latex else MISSING
        m = f"{self.mean:.{self.digits}f}"
        if self.std is None or not math.isfinite(self.std):
            return f"${m}$" if latex else m
        s = f"{self.std:.{self.digits}f}"
        return f"${m} \\pm {s}$" if latex else f"{m} ± {s}"

    def __str__(self) -> str:
        return self.render("text")


def _cell(value: Any, fmt: str) -> str:
    """``value`` written as a cell of ``fmt`` (``markdown``, ``latex`` or ``csv``): the one place
    cells are escaped."""
    if isinstance(value, MeanStd):
        return value.render(fmt)
    text = str(value)
    if fmt == "markdown":
        return markdown_escape(text)
    if fmt == "latex":
        return text if isinstance(value, Tex) else latex_escape(text)
    return text


_MD_ALIGN = {"l": ":---", "r": "---:", "c": ":---:"}


@dataclass
class Table:
    """A table and the words around it.

    ``align``: one of ``l``/``r``/``c`` per column (``None``: Markdown's plain ``---``, LaTeX ``l``
    then ``r``).  ``notes``: paragraphs above the Markdown table.  LaTeX only: ``latex_header``
    (the column names when they differ, e.g. under ``groups``), ``groups`` (``(label, columns)``
    spans of a row above the header, ``""`` for none, each labelled span ruled below),
    ``latex_spec`` (the tabular's column spec, default from ``align``), ``comments`` (lines above
    the tabular, wrapped at :data:`COMMENT_WIDTH`) and ``footnote`` (a last row spanning every
    column, in small type).
    """

    header: Sequence[Any]
    rows: Sequence[Sequence[Any]]
    align: str | None = None
    notes: Sequence[str] = ()
    latex_header: Sequence[Any] | None = None
    groups: Sequence[tuple[str, int]] = ()
    latex_spec: str | None = None
    comments: Sequence[Any] = ()
    footnote: str | None = None

    def __post_init__(self) -> None:
        n = len(self.header)
        widths = {len(r) for r in self.rows}
        if widths - {n}:
            raise ValueError(f"every row needs {n} cells (the header's), got rows of {sorted(widths - {n})}")
        if self.align is not None and len(self.align) != n:
            raise ValueError(f"align needs one letter per column ({n}), got {self.align!r}")
        if self.latex_header is not None and len(self.latex_header) != n:
            raise ValueError(f"latex_header needs {n} names, got {len(self.latex_header)}")
        if self.groups and sum(w for _, w in self.groups) != n:
            raise ValueError(f"groups must span the {n} columns, they span {sum(w for _, w in self.groups)}")

    # ------------------------------------------------------------------ Markdown
    def markdown(self) -> str:
        """The notes, then a pipe table."""
        lines: list[str] = []
        for note in self.notes:
            lines += [note, ""]
        lines.append(self._md_row(self.header))
        rule = [_MD_ALIGN[a] for a in self.align] if self.align else ["---"] * len(self.header)
        lines.append("|" + "|".join(rule) + "|")
        lines += [self._md_row(r) for r in self.rows]
        return "\n".join(lines) + "\n"

    @staticmethod
    def _md_row(cells: Sequence[Any]) -> str:
        return "| " + " | ".join(_cell(c, "markdown") for c in cells) + " |"

    # ------------------------------------------------------------------ LaTeX
    def latex(self) -> str:
        """A booktabs tabular (comments above it; no float, no caption: the including document's)."""
        n = len(self.header)
        out = [f"% {line}" for c in self.comments for line in textwrap.wrap(_cell(c, "latex"), COMMENT_WIDTH)]
        spec = self.latex_spec or ("".join(self.align) if self.align else "l" + "r" * (n - 1))
        out += [f"\\begin{{tabular}}{{{spec}}}", "\\toprule"]
        if self.groups:
            out += self._group_rows()
        out.append(self._tex_row(self.latex_header if self.latex_header is not None else self.header))
        out.append("\\midrule")
        out += [self._tex_row(r) for r in self.rows]
        out.append("\\bottomrule")
        if self.footnote is not None:
            out.append(f"\\multicolumn{{{n}}}{{l}}{{\\footnotesize {_cell(self.footnote, 'latex')}}} \\\\")
        out.append("\\end{tabular}")
        return "\n".join(out) + "\n"

    @staticmethod
    def _tex_row(cells: Sequence[Any]) -> str:
        return " & ".join(_cell(c, "latex") for c in cells) + " \\\\"

    def _group_rows(self) -> list[str]:
        """The spanning labels (unlabelled columns before them ``" & "`` each, after them ``" &"``
        each) and a ``\\cmidrule`` under each labelled span."""
        groups = list(self.groups)
        lead = trail = 0
        while groups and not groups[0][0]:
            lead += groups.pop(0)[1]
        while groups and not groups[-1][0]:
            trail += groups.pop()[1]
        spans = [f"\\multicolumn{{{w}}}{{c}}{{{_cell(label, 'latex')}}}" for label, w in groups]
        row = " & " * lead + " & ".join(spans) + " &" * trail + " \\\\"
        rules, start = [], 1
        for label, w in self.groups:
            if label:
                rules.append(f"\\cmidrule(lr){{{start}-{start + w - 1}}}")
            start += w
        return [row, " ".join(rules)]

    # ------------------------------------------------------------------ CSV
    def csv(self) -> str:
        """The header and the rows, each cell its plain text (no notes)."""
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow([_cell(c, "csv") for c in self.header])
        writer.writerows([_cell(c, "csv") for c in r] for r in self.rows)
        return buf.getvalue()

    def render(self, fmt: str) -> str:
        """The table in ``fmt``: ``md``, ``tex`` or ``csv``."""
        try:
            return getattr(self, FORMATS[fmt])()
        except KeyError:
            raise ValueError(f"unknown table format {fmt!r}; formats: {sorted(FORMATS)}") from None


#: file suffix -> the :class:`Table` method writing it
FORMATS = {"md": "markdown", "tex": "latex", "csv": "csv"}


def write(table: Table, directory: Path | str, stem: str, formats: Sequence[str] = ("md", "tex")) -> list[Path]:
    """Write ``directory/{stem}.{fmt}`` for each format (UTF-8); return the paths, in ``formats`` order."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = directory / f"{stem}.{fmt}"
        path.write_text(table.render(fmt), encoding="utf-8")
        paths.append(path)
    return paths
