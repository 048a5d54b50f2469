"""``harness gpu-check`` (issue 21's device check), run on the CPU as a GPU machine would run it:
a subprocess from another directory, every step, its report, its stores and records, and a second
run that goes on from the first's stores and scores nothing again."""
from __future__ import annotations

import gzip
import json
import os
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from conftest import GOLDEN, needs_data

pytestmark = [needs_data, pytest.mark.skipif(not os.path.isdir(GOLDEN), reason="golden files not found")]


def gpu_check(tmp_path: Path, out: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSNAS_GOLDEN_DIR": str(Path(GOLDEN).resolve())}
    return subprocess.run([sys.executable, "-m", "harness", "gpu-check", "--quick", "--out", str(out), *args],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)


def test_the_device_check_runs_every_step_and_resumes_from_its_stores(tmp_path):
    out = tmp_path / "out"
    done = gpu_check(tmp_path, out, "--datasets", "ImageNet16-120", "--baselines", "params", "--profile")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    report = json.loads((out / "gpu_check_cpu.json").read_text())
    steps = report["steps"]
    assert list(steps) == ["env", "golden", "engine", "sweep", "deterministic", "profile", "space"]
    assert not [s for s, v in steps.items() if "error" in v or "skipped" in v]
    # on the CPU the golden measures agree to the CPU's tolerances (the GPU's differences are what it reports)
    g = steps["golden"]
    assert g["within_cpu_tolerance"] and set(g["max_rel_diff"]) == set(g["tolerance"]) and len(g["tolerance"]) == 13
    assert steps["engine"]["engine_equals_one_arch"] and steps["engine"]["archs_per_s_engine"] > 0
    assert (out / "engine_cpu.json").is_file()
    rows = steps["sweep"]["rows"]
    assert [(r["group"], r["workers"]) for r in rows] == [(1, 0), (2, 0)]
    assert all(r["archs_per_s"] > 0 and r["max_rel_diff_vs_first"] <= 1e-5 for r in rows)
    assert steps["deterministic"]["max_rel_diff"] <= 1e-5
    assert any("aten::" in line for line in steps["profile"]["table"])
    space = steps["space"]["rows"]
    assert [(r["dataset"], r["proxies"][0], r["rc"], r["archs_scored_now"]) for r in space] == \
        [("ImageNet16-120", "wrcor", 0, 4), ("ImageNet16-120", "params", 0, 4)]
    assert space[0]["stored"] == {p: 4 for p in ("wrcor", "wrcor_official", "rcor", "acor", "gcor")}
    # what comes back: the gzipped store (a valid SQLite store) and the jobs' records
    raw = tmp_path / "store.sqlite"
    raw.write_bytes(gzip.decompress((out / "store_ImageNet16-120.sqlite.gz").read_bytes()))
    con = sqlite3.connect(raw)
    assert con.execute("select count(*) from scores where status = 'ok' or status = 'inf'").fetchone()[0] == 24
    con.close()
    with tarfile.open(out / "records.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"run_ImageNet16-120_wrcor/scores.csv", "run_ImageNet16-120_params/metrics.csv"} <= names
    assert "golden (1 arch(s), 13 measures): largest relative difference" in done.stdout
    assert "every measure within the CPU's tolerance" in done.stdout
    # a later lease goes on from the stores that came back: nothing is scored again
    again = gpu_check(tmp_path, tmp_path / "out2", "--steps", "space", "--datasets", "ImageNet16-120",
                      "--baselines", "params", "--stores", str(out))
    assert again.returncode == 0, (again.stdout + again.stderr)[-3000:]
    rows2 = json.loads((tmp_path / "out2" / "gpu_check_cpu.json").read_text())["steps"]["space"]["rows"]
    assert [r["archs_scored_now"] for r in rows2] == [0, 0] and "nothing new" in again.stdout


def test_bad_settings_are_refused_in_one_line_before_any_work(tmp_path):
    for args, message in ((["--steps", "env,nope"], "unknown step(s) ['nope']"),
                          (["--baselines", "synflow,nope"], "--baselines nope: ")):
        done = gpu_check(tmp_path, tmp_path / "out", *args)
        assert done.returncode == 2 and message in done.stderr, done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_a_step_that_fails_is_recorded_and_the_others_run(tmp_path):
    """No golden files: the golden step fails with the cause; env still runs; exit 1."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSNAS_GOLDEN_DIR": str(tmp_path / "nowhere")}
    done = subprocess.run([sys.executable, "-m", "harness", "gpu-check", "--quick", "--out", str(tmp_path / "o"),
                           "--steps", "env,golden"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1
    steps = json.loads((tmp_path / "o" / "gpu_check_cpu.json").read_text())["steps"]
    assert "device_name" in steps["env"] and "not found in" in steps["golden"]["error"]
    assert "golden: FAILED: FileNotFoundError" in done.stdout


def test_the_documented_device_command_is_the_one_make_gpu_bundle_prints():
    root = Path(__file__).resolve().parents[1]
    line = next(ln for ln in (root / "Makefile").read_text().splitlines() if ln.startswith("GPU_COMMAND = "))
    command = line.removeprefix("GPU_COMMAND = ").replace("$$", "$")
    assert command in (root / "docs" / "scaling.md").read_text()
    assert "-m harness gpu-check --out $OUT" in command and "ZSNAS_DATA_DIR=$PWD/.gpu/data" in command
