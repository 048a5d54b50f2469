"""Strict JSON: every JSON file the harness writes parses with a strict reader.

Python's :mod:`json` writes NaN and infinities as the bare tokens ``NaN`` / ``Infinity``, which
are not JSON (RFC 8259) and which strict readers (``jq``, JavaScript's ``JSON.parse``, Go, Rust's
serde) reject.  Here every non-finite float -- Python or numpy -- is written as ``null``, and the
object written gets, alongside, a ``"nonfinite"`` entry that says how many there were and where
each was (a JSON Pointer, RFC 6901, with its kind), so nothing is silently lost:

>>> print(dumps({"tau": float("nan"), "scores": [1.0, float("-inf")]}, indent=None))
{"tau": null, "scores": [1.0, null], "nonfinite": {"n_nan": 1, "n_inf": 1, "at": {"/tau": "nan", "/scores/1": "-inf"}}}

A value that is not JSON (a numpy scalar or array, a path, a tuple) is written as its plain
equivalent (number, list, string).  Writing goes through a temporary file and ``os.replace``, so
a reader never sees half a file.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["NONFINITE_KEY", "strict", "dumps", "write_json", "loads_strict"]

#: the key of the entry that counts and locates the non-finite values written as null
NONFINITE_KEY = "nonfinite"
#: at most this many locations are listed (the counts are always complete)
MAX_LOCATIONS = 1000


def _kind(x: float) -> str:
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _pointer_part(key: Any) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def strict(value: Any) -> tuple[Any, dict[str, str]]:
    """(``value`` with every non-finite float as None and numpy/path/tuple values made plain,
    ``{json pointer: "nan" | "inf" | "-inf"}`` of each value replaced)."""
    found: dict[str, str] = {}

    def walk(v: Any, where: str) -> Any:
        if isinstance(v, dict):
            return {k: walk(x, f"{where}/{_pointer_part(k)}") for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [walk(x, f"{where}/{i}") for i, x in enumerate(v)]
        if isinstance(v, bool) or v is None or isinstance(v, (str, int)):
            return v
        if isinstance(v, float):
            if math.isfinite(v):
                return float(v)
            found[where] = _kind(v)
            return None
        tolist = getattr(v, "tolist", None)  # numpy scalars and arrays (no numpy import needed)
        if callable(tolist) and type(v).__module__ == "numpy":
            return walk(tolist(), where)
        if isinstance(v, os.PathLike):
            return os.fspath(v)
        return str(v)

    return walk(value, ""), found


def _with_counts(value: Any, found: dict[str, str]) -> Any:
    if not found or not isinstance(value, dict):
        return value
    key = NONFINITE_KEY if NONFINITE_KEY not in value else f"_{NONFINITE_KEY}"
    kinds = list(found.values())
    block: dict[str, Any] = {"n_nan": kinds.count("nan"), "n_inf": len(kinds) - kinds.count("nan"),
                             "at": dict(list(found.items())[:MAX_LOCATIONS])}
    if len(found) > MAX_LOCATIONS:
        block["at_truncated"] = len(found) - MAX_LOCATIONS
    return {**value, key: block}


def dumps(value: Any, *, indent: int | None = 2, **kw: Any) -> str:
    """``value`` as strict JSON text (see the module docstring); ``json.dumps`` keywords pass through."""
    clean, found = strict(value)
    return json.dumps(_with_counts(clean, found), indent=indent, allow_nan=False, **kw)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: str | os.PathLike[str], value: Any, *, indent: int | None = 2, newline: bool = True) -> Path:
    """Write ``value`` to ``path`` as strict JSON, atomically; returns the path."""
    path = Path(path)
    text = dumps(value, indent=indent) + ("\n" if newline else "")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # as a plain open() would (mkstemp makes it 0600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _refuse(token: str) -> Any:
    raise ValueError(f"not strict JSON: bare {token}")


def loads_strict(text: str) -> Any:
    """Parse ``text`` refusing the non-standard ``NaN`` / ``Infinity`` / ``-Infinity`` tokens."""
    return json.loads(text, parse_constant=_refuse)
