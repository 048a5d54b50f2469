"""Where the offline benchmark data lives, and checks that it is intact.

The data (ground-truth tables, image subsets) never lives in the project's git history.  It is
found, in order of precedence, at

1. the ``data_dir`` argument (the ``data_dir`` config key of the harness ends up here),
2. the directory named by the environment variable ``ZSNAS_DATA_DIR``,
3. ``<project root>/../shared/data``, where the project root is the directory holding ``spaces/``.

If the data directory holds a ``SHA256SUMS`` file (lines of ``<hex digest>  ./<relative path>``,
the format written by ``sha256sum``), every file it lists is checked against its digest the first
time it is used in a process; a mismatch raises :class:`~spaces.vocabulary.DataFileError`.  A file that
``SHA256SUMS`` does not list is accepted unchecked: users convert their own tables (for example
from the official NB201 ``.pth``) and may drop them next to the shipped ones.  Digests are cached
in-process, keyed by ``(resolved path, size, mtime_ns)``, so re-checking an unchanged file costs a
single ``stat``.

Checksum verification can be switched off with ``ZSNAS_DATA_VERIFY=0`` (or ``off``/``false``/``no``),
e.g. to try a table edited by hand: a warning is then logged once per process, and
:func:`verification` returns ``"off"`` so that a run records it in its provenance.  A file that is
not checked against a digest (verification off, no ``SHA256SUMS``, or a file it does not list) is
still checked for damage where the format allows: a ``.csv`` table must be UTF-8 text without NUL
bytes, not empty, with as many fields on every row as in its header (a copy cut mid-row fails
this); a damaged one is a :class:`~spaces.vocabulary.DataFileError` naming the file.  (A cut that
falls exactly at the end of a row or inside the last field only a digest can find.)

Only the standard library is used here.
"""
from __future__ import annotations

import csv
import hashlib
import io
import logging
import os
import threading
from pathlib import Path, PurePosixPath
from typing import Iterable

from .vocabulary import DataFileError, MissingDataFileError

__all__ = [
    "ENV_VAR",
    "SUMS_FILE",
    "resolve_data_dir",
    "data_file",
    "file_sha256",
    "checksums",
    "clear_caches",
    "data_dir_source",
    "verify_data_dir",
    "VERIFY_ENV_VAR",
    "verification",
]

ENV_VAR = "ZSNAS_DATA_DIR"
SUMS_FILE = "SHA256SUMS"
#: ``ZSNAS_DATA_VERIFY=0`` (off/false/no) switches checksum verification off (a warning says so)
VERIFY_ENV_VAR = "ZSNAS_DATA_VERIFY"
_OFF = ("0", "off", "false", "no")

log = logging.getLogger(__name__)

_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_DEFAULT_DATA_DIR = _PROJECT_ROOT.parent / "shared" / "data"

_HOW_TO_FIX = (
    f"Point the environment variable {ENV_VAR} or the `data_dir` config key "
    "(e.g. `zsnas data_dir=/path/to/data`) at the directory holding the benchmark data "
    "(nb201/, nb101/, darts/, images/ and SHA256SUMS)."
)

# (resolved path, size, mtime_ns) -> hex digest of the file's content
_digest_cache: dict[tuple[str, int, int], str] = {}
# (resolved SHA256SUMS path, size, mtime_ns) -> {normalised relpath: hex digest}
_sums_cache: dict[tuple[str, int, int], dict[str, str]] = {}
# (resolved path, size, mtime_ns) of the files whose structure was checked and found sound
_sound_cache: set[tuple[str, int, int]] = set()
_warned_off = False
_lock = threading.Lock()


def clear_caches() -> None:
    """Forget every cached digest, parsed ``SHA256SUMS`` and structure check, and whether the
    verification-off warning was given (mainly for tests)."""
    global _warned_off
    with _lock:
        _digest_cache.clear()
        _sums_cache.clear()
        _sound_cache.clear()
        _warned_off = False


def verification() -> str:
    """``"on"`` (files listed in ``SHA256SUMS`` are checked against their digests, the default) or
    ``"off"`` (``ZSNAS_DATA_VERIFY=0``): what a run records in its provenance."""
    return "off" if os.environ.get(VERIFY_ENV_VAR, "").strip().lower() in _OFF else "on"


def _warn_off_once(root: Path) -> None:
    global _warned_off
    with _lock:
        if _warned_off:
            return
        _warned_off = True
    log.warning("checksum verification is OFF (%s=%s): the data files in %s are NOT checked against %s; a "
                "corrupt or modified file is noticed only where its format shows the damage. The run records "
                "data_verify=off in its provenance. Unset %s to verify again.", VERIFY_ENV_VAR,
                os.environ.get(VERIFY_ENV_VAR), root, SUMS_FILE, VERIFY_ENV_VAR)


def data_dir_source(data_dir: str | os.PathLike[str] | None = None) -> str:
    """Where :func:`resolve_data_dir` takes the data directory from, in words."""
    if data_dir is not None and str(data_dir) != "":
        return "the `data_dir` argument"
    if os.environ.get(ENV_VAR):
        return f"${ENV_VAR}"
    return "the default location <project root>/../shared/data"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path:
    """The data directory: ``data_dir`` if given, else ``$ZSNAS_DATA_DIR``, else ``../shared/data``.

    Raises DataFileError, naming the directory tried and how to point at the right one, if the
    chosen directory does not exist.  An empty ``ZSNAS_DATA_DIR`` counts as unset.
    """
    source = data_dir_source(data_dir)
    if data_dir is not None and str(data_dir) != "":
        path = Path(data_dir).expanduser()
    elif os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR]).expanduser()
    else:
        path = _DEFAULT_DATA_DIR
    if not path.is_dir():
        what = "is not a directory" if path.exists() else "does not exist"
        raise DataFileError(f"data directory {str(path)!r} (from {source}) {what}. {_HOW_TO_FIX}")
    return path.resolve()


def file_sha256(path: str | os.PathLike[str], *, chunk_size: int = 1 << 20) -> str:
    """The hex SHA-256 digest of a file, read in chunks (constant memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            h.update(chunk)
    return h.hexdigest()


def _normalise_relpath(relpath: str) -> str:
    """``./a//b.csv`` -> ``a/b.csv``; refuses absolute paths and paths leaving the data dir."""
    text = str(relpath).replace("\\", "/")
    p = PurePosixPath(text)
    if p.is_absolute() or ".." in p.parts:
        raise ValueError(f"data file path must be relative to the data directory, got {relpath!r}")
    parts = [part for part in p.parts if part not in (".", "")]
    if not parts:
        raise ValueError(f"empty data file path {relpath!r}")
    return "/".join(parts)


def _stat_key(path: Path) -> tuple[str, int, int]:
    st = path.stat()
    return (str(path), st.st_size, st.st_mtime_ns)


def _cached_digest(path: Path) -> str:
    """The SHA-256 of ``path`` (already resolved), hashed once per (path, size, mtime)."""
    key = _stat_key(path)
    with _lock:
        digest = _digest_cache.get(key)
    if digest is None:
        digest = file_sha256(path)
        with _lock:
            _digest_cache[key] = digest
    return digest


def _expected_digests(root: Path) -> dict[str, str]:
    """Parsed ``SHA256SUMS`` of a data dir (empty if it has none), cached by stat."""
    sums = root / SUMS_FILE
    if not sums.is_file():
        return {}
    key = _stat_key(sums)
    with _lock:
        table = _sums_cache.get(key)
    if table is not None:
        return table
    table = {}
    with open(sums, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(maxsplit=1)
            if len(parts) != 2 or len(parts[0]) != 64:
                raise DataFileError(f"{sums}:{lineno}: not a `<sha256>  ./<path>` line: {line!r}")
            digest, name = parts
            name = name.lstrip("*")  # sha256sum's binary-mode marker
            try:
                table[_normalise_relpath(name)] = digest.lower()
            except ValueError as exc:
                raise DataFileError(f"{sums}:{lineno}: {exc}") from None
    with _lock:
        _sums_cache[key] = table
    return table


def data_file(relpath: str, data_dir: str | os.PathLike[str] | None = None, *, verify: bool = True) -> Path:
    """The absolute path of ``relpath`` (e.g. ``"nb201/nb201_ground_truth.csv"``) in the data dir.

    Raises DataFileError if the file is missing, or, when ``verify`` is true and ``SHA256SUMS``
    lists the file, if its content does not match the listed digest.  Files not listed are
    accepted as they are (see the module docstring).
    """
    root = resolve_data_dir(data_dir)
    rel = _normalise_relpath(relpath)
    path = root / rel
    if not path.is_file():
        raise MissingDataFileError(
            f"data file {rel!r} not found in data directory {str(root)!r} "
            f"(looked for {str(path)!r}). {_HOW_TO_FIX}"
        )
    path = path.resolve()
    checked = verify  # verify=False from a caller: no check at all
    if verify and verification() == "off":
        _warn_off_once(root)
        verify = False
    expected = _expected_digests(root).get(rel) if verify else None
    if expected is not None:
        try:
            actual = _cached_digest(path)
        except OSError as exc:
            raise DataFileError(f"data file {str(path)!r} cannot be read ({type(exc).__name__}: {exc}). "
                                "Check the file and its permissions, or restore it.") from exc
        if actual != expected:
            raise DataFileError(
                f"data file {str(path)!r} is corrupt or was modified: its SHA-256 is {actual}, "
                f"but {str(root / SUMS_FILE)!r} expects {expected}. Restore the original file "
                f"(or, for a table you converted yourself, remove its line from {SUMS_FILE})."
            )
    elif checked:  # not checked against a digest: at least a damaged table is an error naming it
        _check_sound(path)
    return path


def _check_sound(path: Path) -> None:
    """Raise DataFileError if a ``.csv`` table at ``path`` is visibly damaged (not UTF-8, NUL bytes,
    empty, a row with another number of fields than its header: a copy cut mid-row); cached by stat."""
    if path.suffix.lower() != ".csv":
        return
    key = _stat_key(path)
    with _lock:
        if key in _sound_cache:
            return
    damaged = f"data file {str(path)!r} is corrupt or truncated"
    fix = ("Restore it from the release (docs/data.md says where each file comes from; `harness data verify` "
           "checks every file against SHA256SUMS), or rebuild it with `harness convert`.")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataFileError(f"data file {str(path)!r} cannot be read ({type(exc).__name__}: {exc}). {fix}") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataFileError(f"{damaged}: it is not UTF-8 text (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}). "
                            f"{fix}") from None
    if "\x00" in text:
        raise DataFileError(f"{damaged}: it holds NUL bytes (first at character {text.index(chr(0))}). {fix}")
    if not text.strip():
        raise DataFileError(f"{damaged}: it is empty. {fix}")
    rows = csv.reader(io.StringIO(text, newline=""))
    try:
        width = len(next(rows))
        for lineno, row in enumerate(rows, 2):
            if row and len(row) != width:
                raise DataFileError(f"{damaged}: line {lineno} has {len(row)} fields, its header has {width}. {fix}")
    except csv.Error as exc:
        raise DataFileError(f"{damaged}: not a readable CSV table ({exc}). {fix}") from None
    with _lock:
        _sound_cache.add(key)


def checksums(relpaths: Iterable[str], data_dir: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """``{relpath: sha256}`` of data files, for recording a result's provenance.

    Each file is verified as by :func:`data_file` (not against ``SHA256SUMS`` while verification
    is off: the digests then say what was read); digests come from the in-process cache.
    """
    out: dict[str, str] = {}
    for rel in relpaths:
        out[rel] = _cached_digest(data_file(rel, data_dir, verify=True))
    return out


#: files of a data directory that are not data (never reported as unlisted)
_NOT_DATA = {SUMS_FILE, "README.md"}


def verify_data_dir(data_dir: str | os.PathLike[str] | None = None) -> tuple[Path, list[tuple[str, str, str]]]:
    """(the data directory, one ``(relpath, status, detail)`` per file): every file ``SHA256SUMS``
    lists is ``OK``, ``MISMATCH`` (detail: the digests) or ``MISSING``; a file in the directory
    that it does not list is ``UNLISTED`` (accepted unchecked, as by :func:`data_file`).  Listed
    files come in ``SHA256SUMS`` order, unlisted ones after them, sorted.  Every listed file is
    hashed anew (no cache).  A data directory without ``SHA256SUMS`` is a DataFileError."""
    root = resolve_data_dir(data_dir)
    if not (root / SUMS_FILE).is_file():
        raise DataFileError(f"data directory {str(root)!r} has no {SUMS_FILE}: nothing to verify against. "
                            f"{_HOW_TO_FIX}")
    expected = _expected_digests(root)
    rows: list[tuple[str, str, str]] = []
    for rel, digest in expected.items():
        path = root / rel
        if not path.is_file():
            rows.append((rel, "MISSING", f"not found at {path}"))
            continue
        actual = file_sha256(path)
        rows.append((rel, "OK", "") if actual == digest
                    else (rel, "MISMATCH", f"sha256 {actual}, {SUMS_FILE} expects {digest}"))
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if (path.is_file() and rel not in expected and rel not in _NOT_DATA
                and not any(part.startswith(".") for part in path.relative_to(root).parts)):
            rows.append((rel, "UNLISTED", f"not in {SUMS_FILE}: accepted unchecked"))
    return root, rows
