"""The released ``genotypes.py`` form of an architecture: writing an entry the released training
script reads, and reading such entries back (the official file's included).

The released ``train_MobileNetV2_on_ImageNet.py --arch NAME`` evaluates ``genotypes.NAME``, a pair
``(structure string, input resolution)``.  :func:`genotype_source` writes one such entry as a
small Python file (the structure as adjacent string literals, one element per line, so it is a
plain literal); appended to ``genotypes.py`` (or imported as ``genotypes``) it trains with
``--arch NAME``.  :func:`read_genotypes` reads every ``NAME = (structure, resolution)`` of such a
file without executing it: the official file spells the structure as ``'...' + '...'``, which is
evaluated here for string literals only.

>>> from spaces.mobilenetv2.arch import MobileNetV2Arch
>>> a = MobileNetV2Arch.from_str("SuperConvK3BNRELU(3,16,2,1)SuperResIDWE6K5(16,24,2,16,2)"
...                              "SuperConvK1BNRELU(24,128,1,1)@192")
>>> text = genotype_source(a, "found")
>>> print(text.splitlines()[-5])
found = \\
>>> read_genotypes(text)["found"] == a.to_official()
True
"""
from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from pathlib import Path

from ..vocabulary import InvalidArchitectureError
from .arch import MobileNetV2Arch

__all__ = ["TRAIN_SCRIPT", "genotype_source", "read_genotypes", "training_command"]

#: the released training script (kunjing96/ZSNAS-WRCor) that reads ``genotypes.NAME``
TRAIN_SCRIPT = "train_MobileNetV2_on_ImageNet.py"

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_ELEMENT = re.compile(r"[A-Za-z0-9]+\([0-9,]*\)")


def training_command(name: str) -> str:
    """How the released code trains the entry ``name``."""
    return f"python {TRAIN_SCRIPT} --arch {name}"


def genotype_source(arch: MobileNetV2Arch, name: str, comment: Iterable[str] = ()) -> str:
    """A Python file defining ``name = (structure string, resolution)`` for ``arch``, in the
    layout of the released ``genotypes.py`` (one element per line), after ``comment`` lines and
    a note on how to train it."""
    if not _IDENT.match(name):
        raise ValueError(f"a genotype name must be a Python identifier, got {name!r}")
    structure, resolution = arch.to_official()
    elements = _ELEMENT.findall(structure)
    if "".join(elements) != structure:  # the structure's own writer guarantees this
        raise InvalidArchitectureError(f"cannot split {structure!r} into elements")
    lines = [f"# {c}" for c in comment]
    lines += [f"# to train it: append this file to ZSNAS-WRCor's genotypes.py, then {training_command(name)}",
              f"{name} = \\"]
    lines += [("(" if i == 0 else " ") + repr(e) for i, e in enumerate(elements)]
    lines[-1] += ","
    lines.append(f" {resolution})")
    return "\n".join(lines) + "\n"


def _literal(node: ast.AST):
    """A literal, or ``str + str`` (the official file's spelling), evaluated without executing."""
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _literal(node.left), _literal(node.right)
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        raise ValueError("only strings are added")
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    return ast.literal_eval(node)


def read_genotypes(source: str | Path) -> dict[str, tuple[str, int]]:
    """Every ``NAME = (structure string, resolution)`` of a genotypes file (a path, or its text),
    in file order; other assignments and statements are skipped.  Nothing is executed."""
    text = Path(source).read_text() if isinstance(source, Path) else source
    out: dict[str, tuple[str, int]] = {}
    for stmt in ast.parse(text).body:
        if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
            continue
        try:
            value = _literal(stmt.value)
        except (ValueError, TypeError, SyntaxError):
            continue
        if (isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str)
                and isinstance(value[1], int) and not isinstance(value[1], bool)):
            out[stmt.targets[0].id] = (value[0], value[1])
    return out
