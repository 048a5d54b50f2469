"""Locating the data directory and verifying data files against SHA256SUMS."""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest

from spaces import datafiles
from spaces.base import DataFileError
from spaces.datafiles import checksums, data_file, file_sha256, resolve_data_dir

SMALL = "images/imagenet16_120_classes.txt"


from conftest import REAL, needs_data  # noqa: E402


def _make_dir(root: Path, files: dict[str, bytes], *, listed: dict[str, bytes] | None = None) -> Path:
    """A data dir holding ``files``; SHA256SUMS lists ``listed`` (default: all files)."""
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    listed = files if listed is None else listed
    lines = [f"{hashlib.sha256(c).hexdigest()}  ./{rel}\n" for rel, c in listed.items()]
    (root / "SHA256SUMS").write_text("".join(lines))
    return root


# ---------------------------------------------------------------- resolve_data_dir
def test_explicit_argument_beats_env(tmp_path, monkeypatch):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    monkeypatch.setenv("ZSNAS_DATA_DIR", str(b))
    assert resolve_data_dir(a) == a.resolve()
    assert resolve_data_dir(str(a)) == a.resolve()
    assert resolve_data_dir() == b.resolve()


def test_env_var_honoured(tmp_path, monkeypatch):
    _make_dir(tmp_path, {"x/y.txt": b"hello"})
    monkeypatch.setenv("ZSNAS_DATA_DIR", str(tmp_path))
    assert resolve_data_dir() == tmp_path.resolve()
    assert data_file("x/y.txt") == (tmp_path / "x" / "y.txt").resolve()


@needs_data
def test_default_is_shared_data_next_to_project(monkeypatch):
    monkeypatch.delenv("ZSNAS_DATA_DIR", raising=False)
    project_root = Path(datafiles.__file__).resolve().parent.parent
    expected = project_root.parent / "shared" / "data"
    if not expected.is_dir():
        pytest.skip("no ../shared/data next to the project")
    assert resolve_data_dir() == expected.resolve()
    monkeypatch.setenv("ZSNAS_DATA_DIR", "")  # empty counts as unset
    assert resolve_data_dir() == expected.resolve()


def test_missing_dir_says_where_and_how(tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    with pytest.raises(DataFileError) as ei:
        resolve_data_dir(missing)
    msg = str(ei.value)
    assert str(missing) in msg and "ZSNAS_DATA_DIR" in msg and "data_dir" in msg
    monkeypatch.setenv("ZSNAS_DATA_DIR", str(missing))
    with pytest.raises(DataFileError, match="ZSNAS_DATA_DIR"):
        resolve_data_dir()


# ---------------------------------------------------------------- data_file
def test_missing_file_names_file_dir_and_fix(tmp_path):
    _make_dir(tmp_path, {"a.txt": b"a"})
    with pytest.raises(DataFileError) as ei:
        data_file("nb201/nb201_ground_truth.csv", tmp_path)
    msg = str(ei.value)
    assert "nb201/nb201_ground_truth.csv" in msg
    assert str(tmp_path.resolve()) in msg
    assert "ZSNAS_DATA_DIR" in msg and "data_dir" in msg


def test_relpath_must_stay_inside(tmp_path):
    _make_dir(tmp_path, {"a.txt": b"a"})
    for bad in ("/etc/passwd", "../a.txt", "x/../../a.txt"):
        with pytest.raises(ValueError):
            data_file(bad, tmp_path)
    assert data_file("./a.txt", tmp_path) == (tmp_path / "a.txt").resolve()


def test_corrupt_file_reports_both_hashes(tmp_path):
    good = b"the original content\n"
    _make_dir(tmp_path, {"d/t.csv": good})
    (tmp_path / "d" / "t.csv").write_bytes(good[:5])
    with pytest.raises(DataFileError) as ei:
        data_file("d/t.csv", tmp_path)
    msg = str(ei.value)
    assert "corrupt" in msg
    assert hashlib.sha256(good).hexdigest() in msg
    assert hashlib.sha256(good[:5]).hexdigest() in msg
    # verify=False skips the check
    assert data_file("d/t.csv", tmp_path, verify=False).name == "t.csv"


@needs_data
def test_truncated_copy_of_real_table_is_rejected(tmp_path):
    rel = "nb201/nb201_ground_truth.csv"
    shutil.copy(REAL / "SHA256SUMS", tmp_path / "SHA256SUMS")
    (tmp_path / "nb201").mkdir()
    with open(REAL / rel, "rb") as f:
        (tmp_path / rel).write_bytes(f.read(4096))
    with pytest.raises(DataFileError, match="corrupt") as ei:
        data_file(rel, tmp_path)
    assert "e702e7a986ce2aca1637da938a31d45475cea7b68a340e2de44a6c340420dbac" in str(ei.value)


def test_unlisted_file_is_accepted(tmp_path):
    _make_dir(tmp_path, {"listed.txt": b"x", "mine.csv": b"converted"}, listed={"listed.txt": b"x"})
    assert data_file("mine.csv", tmp_path).read_bytes() == b"converted"


def test_no_sums_file_accepts_everything(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"\0\1")
    assert data_file("f.bin", tmp_path).exists()


def test_malformed_sums_line(tmp_path):
    (tmp_path / "f.bin").write_bytes(b"x")
    (tmp_path / "SHA256SUMS").write_text("nothex\n")
    with pytest.raises(DataFileError, match="SHA256SUMS:1"):
        data_file("f.bin", tmp_path)


def test_verification_is_cached_and_invalidated_by_change(tmp_path, monkeypatch):
    _make_dir(tmp_path, {"a/b.txt": b"payload"})
    calls = []
    real = datafiles.file_sha256

    def counting(path, **kw):
        calls.append(Path(path))
        return real(path, **kw)

    monkeypatch.setattr(datafiles, "file_sha256", counting)
    data_file("a/b.txt", tmp_path)
    data_file("a/b.txt", tmp_path)
    checksums(["a/b.txt"], tmp_path)
    assert len(calls) == 1
    # a changed file (new size and mtime) is re-hashed and then fails verification
    p = tmp_path / "a" / "b.txt"
    p.write_bytes(b"payload, modified")
    os.utime(p, ns=(p.stat().st_atime_ns, p.stat().st_mtime_ns + 10**9))
    with pytest.raises(DataFileError, match="corrupt"):
        data_file("a/b.txt", tmp_path)
    assert len(calls) == 2


def test_file_sha256_matches_hashlib(tmp_path):
    content = os.urandom(3 * 1024 + 7)
    p = tmp_path / "r.bin"
    p.write_bytes(content)
    assert file_sha256(p, chunk_size=1000) == hashlib.sha256(content).hexdigest()


@needs_data
def test_checksums_of_real_files():
    sums = checksums([SMALL])
    assert sums == {SMALL: "6b345417359e761f10503db4c96c0d551c709293bfde0923c6cb5cc2879bfc2c"}


@needs_data
def test_sha256sums_lists_real_files():
    listed = datafiles._expected_digests(REAL)
    assert "nb201/nb201_ground_truth.csv" in listed
    assert "images/cifar10_real_subset.npz" in listed
