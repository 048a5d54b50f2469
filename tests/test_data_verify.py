"""``harness data verify``: every data file against SHA256SUMS, per file OK / MISMATCH / MISSING,
exit status 1 naming the data directory and how to point at another one."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import REAL, needs_data
from harness.datacheck import main
from spaces.datafiles import verify_data_dir

ROOT = Path(__file__).resolve().parents[1]


def small_data_dir(tmp_path: Path) -> Path:
    """Three small files and their SHA256SUMS, as ``sha256sum`` writes them."""
    root = tmp_path / "data"
    files = {"nb101/a.csv": b"x,y\n1,2\n", "darts/b.csv": b"g,acc\nG,90\n", "images/c.txt": b"class\n"}
    lines = []
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
        lines.append(f"{hashlib.sha256(content).hexdigest()}  ./{rel}\n")
    (root / "SHA256SUMS").write_text("".join(lines))
    (root / "README.md").write_text("not data\n")
    return root


def test_an_intact_copy_passes(tmp_path, capsys):
    root = small_data_dir(tmp_path)
    assert main(["verify", "--data-dir", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"data directory: {root.resolve()} (from --data-dir)" in out
    for rel in ("nb101/a.csv", "darts/b.csv", "images/c.txt"):
        assert f"OK        {rel}" in out
    assert "summary: 3 OK" in out and "README.md" not in out and "UNLISTED" not in out


def test_an_altered_and_a_removed_file_are_named_and_fail(tmp_path, capsys):
    root = small_data_dir(tmp_path)
    (root / "darts/b.csv").write_bytes(b"g,acc\nG,91\n")  # altered
    (root / "images/c.txt").unlink()  # removed
    (root / "nb101/extra.csv").write_text("mine\n")  # converted by hand: not listed
    assert main(["verify", "--data-dir", str(root)]) == 1
    captured = capsys.readouterr()
    assert "OK        nb101/a.csv" in captured.out
    assert "MISMATCH  darts/b.csv" in captured.out and "SHA256SUMS expects" in captured.out
    assert "MISSING   images/c.txt" in captured.out
    assert "UNLISTED  nb101/extra.csv" in captured.out
    assert "summary: 1 OK, 1 MISMATCH, 1 MISSING, 1 UNLISTED" in captured.out
    err = captured.err
    assert f"FAILED in {root.resolve()}: darts/b.csv (MISMATCH), images/c.txt (MISSING)" in err
    assert "--data-dir DIR" in err and "ZSNAS_DATA_DIR=DIR" in err


def test_the_rows_keep_the_sums_order(tmp_path):
    root = small_data_dir(tmp_path)
    (root / "nb101/a.csv").unlink()
    got, rows = verify_data_dir(root)
    assert got == root.resolve()
    assert [(r[0], r[1]) for r in rows] == [("nb101/a.csv", "MISSING"), ("darts/b.csv", "OK"), ("images/c.txt", "OK")]


def test_no_directory_or_no_sums_is_a_clear_failure(tmp_path, capsys):
    assert main(["verify", "--data-dir", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err
    assert "nowhere" in err and "does not exist" in err and "--data-dir DIR" in err
    (tmp_path / "empty").mkdir()
    assert main(["verify", "--data-dir", str(tmp_path / "empty")]) == 1
    err = capsys.readouterr().err
    assert "has no SHA256SUMS" in err


def test_the_environment_variable_is_named_as_the_source(tmp_path, capsys, monkeypatch):
    root = small_data_dir(tmp_path)
    monkeypatch.setenv("ZSNAS_DATA_DIR", str(root))
    assert main(["verify"]) == 0
    assert "(from $ZSNAS_DATA_DIR)" in capsys.readouterr().out


@needs_data
def test_the_real_data_passes_through_the_command_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSNAS_DATA_DIR": str(REAL)}
    done = subprocess.run([sys.executable, "-m", "harness", "data", "verify"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    listed = [line for line in (REAL / "SHA256SUMS").read_text().splitlines() if line.strip()]
    assert done.stdout.count("\nOK ") == len(listed) >= 10
    assert "MISMATCH" not in done.stdout and "MISSING" not in done.stdout
    assert done.stdout.strip().splitlines()[-1] == f"all {len(listed)} listed files match SHA256SUMS"


@pytest.mark.parametrize("args", [["data"], ["data", "check"]])
def test_an_action_is_required(args, tmp_path):
    done = subprocess.run([sys.executable, "-m", "harness", *args], cwd=tmp_path, capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=120)
    assert done.returncode == 2 and "verify" in done.stderr
