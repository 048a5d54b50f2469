"""Fault injection, sweeps: a failed or killed job of a --multirun sweep never aborts its siblings;
the sweep finishes them, exits non-zero and ends with the failed jobs and the command that re-runs
only them (issue 20, part 3)."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import needs_data

ROOT = Path(__file__).resolve().parents[2]
TINY = ["space.channels=4", "space.cells_per_stage=1", "batch.size=8", "batch.kind=noise", "device=cpu",
        "proxies=[synflow]", "tracking=none"]


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSNAS_PROGRESS": "lines"}
    env.pop("ZSNAS_STORE", None)
    env.pop("ZSNAS_MLFLOW_URI", None)
    return env


def _complete(job_dir: Path) -> dict:
    """The job's records are all there and its status is done; its summary."""
    for name in ("scores.csv", "metrics.csv", "summary.json"):
        assert (job_dir / name).is_file(), f"{job_dir / name} is missing"
    assert json.loads((job_dir / "job_status.json").read_text())["status"] == "done"
    return json.loads((job_dir / "summary.json").read_text())


def _rerun_line(stderr: str) -> str:
    lines = stderr.splitlines()
    i = next(i for i, line in enumerate(lines) if line.startswith("re-run only the failed jobs"))
    return lines[i + 1].strip()


@needs_data
def test_a_job_raising_does_not_abort_its_siblings(tmp_path):
    """Basic launcher: the second job's score store is a directory (SQLite cannot open it)."""
    bad = tmp_path / "a_directory"
    bad.mkdir()
    sweep = tmp_path / "sweep"
    args = [sys.executable, "-m", "harness", "run", "--multirun", *TINY, "archs.n=3",
            f"store.path={tmp_path / 'ok.sqlite'},{bad}", "seed=0", f"hydra.sweep.dir={sweep}"]
    done = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-3000:]
    summary = _complete(sweep / "job0")  # the sibling finished, records whole
    assert summary["n_archs"] == 3
    failed = json.loads((sweep / "job1" / "job_status.json").read_text())
    assert failed["status"] == "failed" and f"store.path={bad}" in failed["overrides"]
    tail = done.stderr[done.stderr.index(f"sweep {sweep}:"):]
    assert "1 of 2 jobs done, 1 failed" in tail
    assert "job 1: " in tail and f"store.path={bad}" in tail
    rerun = _rerun_line(tail)
    assert rerun.startswith("harness run ") and "--multirun" in rerun and f"store.path={bad}" in rerun
    assert f"store.path={tmp_path / 'ok.sqlite'}" not in rerun  # only the failed job
    assert f"hydra.sweep.dir={sweep}-rerun" in rerun  # beside the sweep, never over its jobs


@needs_data
def test_a_killed_joblib_worker_job_leaves_its_siblings_whole_and_its_rerun_completes(tmp_path):
    """hydra/launcher=joblib, 2 workers, 3 jobs; the long middle job's process is SIGKILLed while it
    scores. The others finish with whole records, the exit is 1, the summary names the killed job and
    the command that re-runs it; that command completes it from the store."""
    sweep = tmp_path / "sweep"
    store = tmp_path / "scores.sqlite"
    args = [sys.executable, "-m", "harness", "run", "--multirun", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
            *TINY, f"store.path={store}", "archs.n=3,200,4", f"hydra.sweep.dir={sweep}"]
    proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    victim = sweep / "job1" / "job_status.json"
    killed = None
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                record = json.loads(victim.read_text())
            except (OSError, ValueError):
                record = {}
            if record.get("status") == "running" and (sweep / "job1" / "run.log").is_file() and \
                    "to score" in (sweep / "job1" / "run.log").read_text():
                time.sleep(1.0)  # scoring
                os.kill(record["pid"], signal.SIGKILL)
                killed = record["pid"]
                break
            time.sleep(0.1)
        stdout, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert killed is not None, f"the job never ran (rc={proc.returncode}): {proc.stderr}"
    assert proc.returncode == 1, stderr[-3000:]
    assert _complete(sweep / "job0")["n_archs"] == 3
    assert _complete(sweep / "job2")["n_archs"] == 4
    assert not (sweep / "job1" / "scores.csv").exists()
    tail = stderr[stderr.index(f"sweep {sweep}:"):]
    print(tail)
    assert "2 of 3 jobs done, 1 failed" in tail
    assert "job 1: " in tail and "archs.n=200" in tail and "SIGKILL" in tail
    rerun = _rerun_line(tail)
    assert "archs.n=200" in rerun and "archs.n=3" not in rerun and "hydra/launcher=joblib" in rerun

    assert shlex.split(rerun)[0] == "harness"
    again = subprocess.run([sys.executable, "-m", "harness", *shlex.split(rerun)[1:]], cwd=tmp_path, env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    summary = _complete(Path(f"{sweep}-rerun") / "job0")
    assert summary["n_archs"] == 200
    assert summary["cached"] > 0 and summary["computed"] < 200  # what the killed job stored is not recomputed
