"""Shared pieces of the fault-injection tests: a data directory that links the real benchmark data
(files can then be replaced by damaged copies without touching it), tiny configurations; the
recording tracker lives in tests/conftest.py."""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from conftest import REAL, RecordingTracker  # noqa: F401  (RecordingTracker: shared with tests/)

ROOT = Path(__file__).resolve().parents[2]
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
# tiny networks on a noise batch: ~0.02 s per architecture and proxy on one core
TINY = ["space.channels=4", "space.cells_per_stage=1", "batch.size=8", "batch.kind=noise", "tracking=none",
        "device=cpu", "threads=1"]


def linked_data_dir(tmp: Path, archs: list[str] | None = None, copy: tuple[str, ...] = ()) -> Path:
    """A data directory under ``tmp`` whose files link to the real data (``copy``: relpaths copied
    instead, free to damage), plus ``nb201/faults_archs.csv`` listing ``archs`` when given."""
    dd = tmp / "data"
    for src in REAL.rglob("*"):
        if src.is_dir():
            continue
        rel = src.relative_to(REAL)
        dst = dd / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel.as_posix() in copy:
            shutil.copyfile(src, dst)
        else:
            dst.symlink_to(src)
    if archs is not None:
        (dd / "nb201" / "faults_archs.csv").write_text("arch\n" + "".join(f"{a}\n" for a in archs))
    return dd


@contextlib.contextmanager
def read_only(path: Path):
    """``path`` (a file or directory) made read-only for this process: ``chmod`` for a normal user;
    as root (who ignores modes) the immutable attribute, or the test is skipped."""
    import pytest

    path = Path(path)
    mode = path.stat().st_mode
    if os.geteuid() != 0:
        path.chmod(mode & ~0o222)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"running as root and cannot make {path} immutable: {done.stderr.decode().strip()}")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)
