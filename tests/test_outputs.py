"""Every command ends by saying where it wrote its results and how to open them: the closing
``results:`` block names paths that exist (the commands run as subprocesses from a temporary
working directory, on tiny networks)."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import needs_data

#: tiny networks on a noise batch (~0.02 s per architecture and proxy on one core)
TINY = ["space.channels=4", "space.cells_per_stage=1", "batch.size=8", "batch.kind=noise", "device=cpu"]
_ENTRY = re.compile(r"^  (\S+)\s+(\S+)(?:  \((.*)\))?$")


def harness(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSNAS_PROGRESS": "lines"}
    env.pop("ZSNAS_STORE", None)
    env.pop("ZSNAS_MLFLOW_URI", None)
    done = subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done


def closing(text: str, cwd: Path) -> dict[str, tuple[str, str]]:
    """label -> (path, note) of the last ``results:`` block, which must end the text; every path
    exists (a SQLite URI's file included) unless it is ``none``."""
    lines = text.rstrip("\n").splitlines()
    start = max(i for i, line in enumerate(lines) if line == "results:")
    entries = {}
    for line in lines[start + 1:]:
        m = _ENTRY.match(line)
        assert m, f"not an outputs line: {line!r}"
        label, path, note = m.group(1), m.group(2), m.group(3) or ""
        if path != "none":
            file = Path(path[len("sqlite:///"):] if path.startswith("sqlite:///") else path)
            assert (cwd / file).exists(), f"{label}: {path} does not exist"
        entries[label] = (path, note)
    return entries


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A working directory with one tracked scoring job on 5 of Suite-Zero's NB201 architectures."""
    cwd = tmp_path_factory.mktemp("outputs")
    done = harness(["run", "experiment=proxies_suite_zero", "archs.n=5", "proxies=[synflow,snip]", *TINY,
                    "hydra.run.dir=runs/job"], cwd)
    return cwd, done


@needs_data
def test_run_ends_with_its_records_store_and_mlflow_store(work):
    cwd, done = work
    out = closing(done.stdout, cwd)
    assert out["records"][0] == str(cwd / "runs" / "job") and "harness report --records" in out["records"][1]
    assert Path(out["store"][0]) == (cwd / ".cache" / "scores.sqlite").resolve()
    uri, note = out["tracking"]
    assert uri == f"sqlite:///{(cwd / 'mlruns.db').resolve()}" and f"harness ui --store {uri}" in note
    assert "scored 5/5 archs in " in done.stderr  # the progress's final line (not a terminal: log lines)


@needs_data
def test_report_agreement_and_reference_end_with_their_files(work):
    cwd, _ = work
    done = harness(["report", "--records", "runs/job", "--out", "res", "--name", "t"], cwd)
    out = closing(done.stdout, cwd)
    assert out["tables"][0] == str(cwd / "res" / "tables") and "Markdown: t.md" in out["tables"][1]
    assert out["figures"][0] == str(cwd / "res" / "figures") and "PNG: " in out["figures"][1]

    done = harness(["agreement", "--records", "runs/job", "--out", "res", "--name", "ag"], cwd)
    assert "Markdown: ag_cifar10.md" in closing(done.stdout, cwd)["tables"][1]

    done = harness(["reference", "make", "runs/job", "--out", "ref.json", "--profile", "t"], cwd)
    assert closing(done.stdout, cwd)["reference"][0] == str(cwd / "ref.json")
    done = harness(["reference", "check", "ref.json", "runs/job"], cwd)
    out = closing(done.stdout, cwd)
    assert out["checked"][0] == str(cwd / "runs" / "job") and out["against"][0] == str(cwd / "ref.json")


@needs_data
def test_search_and_search_report_end_with_their_files(tmp_path):
    done = harness(["search", *TINY, "tracking=none", "search=random", "objective=synflow", "budget=4",
                    "hydra.run.dir=runs/s"], tmp_path)
    assert json.loads(done.stdout.strip().splitlines()[-1])["strategy"] == "random"  # stdout: still the JSON last
    out = closing(done.stderr, tmp_path)
    assert out["records"][0] == str(tmp_path / "runs" / "s") and "search.json, trajectory.csv" in out["records"][1]
    assert out["tracking"][0] == "none"
    done = harness(["search-report", "--records", "runs", "--out", "res", "--name", "s"], tmp_path)
    out = closing(done.stdout, tmp_path)
    assert out["tables"][0] == str(tmp_path / "res" / "tables") and "Markdown: s.md" in out["tables"][1]


def test_convert_ends_with_the_table_and_its_sums(tmp_path):
    from test_converters import make_tfrecord

    rec = make_tfrecord(tmp_path / "nasbench_only108.tfrecord")
    done = harness(["convert", "nb101", str(rec), "--data-dir", "mydata"], tmp_path)
    out = closing(done.stdout, tmp_path)
    data = (tmp_path / "mydata").resolve()
    assert out["table"][0] == str(data / "nb101" / "nb101_ground_truth.csv")
    assert f"ZSNAS_DATA_DIR={data}" in out["table"][1]
    assert out["sums"] == (str(data / "SHA256SUMS"), f"check with: harness data verify --data-dir {data}")


@needs_data
def test_bench_ends_with_its_files(tmp_path):
    done = harness(["bench", "--archs", "1", "--repeat", "1", "--search-steps", "0", "--engine-archs", "0",
                    "--out", "b"], tmp_path)
    out = closing(done.stdout, tmp_path)
    assert out["b"] == (str(tmp_path / "b"), "JSON: nb201_cpu.json")
