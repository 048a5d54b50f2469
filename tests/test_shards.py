"""Sweeps beyond one process: sharded jobs with per-shard stores, a killed worker, the re-run that
scores only what is missing, and the gather job that merges the shards and reports the union.

The Hydra test drives the real joblib launcher in a subprocess (4 workers, 400 NB201 architectures
on tiny networks) and SIGKILLs one worker mid-way; the in-process test checks the same sharding
logic through :func:`harness.scoring.run.run` without Hydra.
"""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path


import harness.scoring.run as hrun
from conftest import needs_data
from harness.config import compose
from harness.scoring.store import ScoreStore

ROOT = Path(__file__).resolve().parents[1]
# tiny networks on a noise batch: ~0.02 s per architecture and proxy on one core
TINY = ["space.channels=4", "space.cells_per_stage=1", "batch.size=8", "batch.kind=noise",
        "proxies=[wrcor]", "tracking=none", "device=cpu", "threads=1", "archs.select=first"]


def make_cfg(*overrides: str):
    return compose("config", overrides)


def rows(db: Path) -> dict[tuple[str, str], tuple]:
    """(arch, proxy) -> (value, status, created) of every row, read with plain sqlite3 (read-only)."""
    if not db.exists():
        return {}
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            got = con.execute("SELECT arch, proxy, value, status, created FROM scores").fetchall()
        finally:
            con.close()
    except sqlite3.OperationalError:  # not created yet
        return {}
    return {(a, p): (v, s, c) for a, p, v, s, c in got}


def count_rows(db: Path) -> tuple[int, int, int]:
    """(rows, distinct (arch, proxy), distinct arch) of a store, straight from SQLite."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
    try:
        return con.execute("SELECT COUNT(*), COUNT(DISTINCT arch || '|' || proxy), COUNT(DISTINCT arch) "
                           "FROM scores").fetchone()
    finally:
        con.close()


# ------------------------------------------------------------------------------- process helpers
def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (from /proc/<pid>/stat's parent field)."""
    parent_of: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces and parentheses
        parent_of[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent_of.items() if pp == p]
        out += kids
        frontier += kids
    return out


def holder_of(path: Path, pids: list[int]) -> int | None:
    """The first of ``pids`` that has ``path`` open (its /proc/<pid>/fd symlinks)."""
    target = str(path.resolve())
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) == target:
                    return pid
            except OSError:
                continue
    return None


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def reap(pids: list[int], timeout: float = 30.0) -> None:
    """Wait for processes this test started (by id) to end; SIGKILL any still there after ``timeout``."""
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for p in pids:
        if alive(p):
            try:
                os.kill(p, signal.SIGKILL)
            except ProcessLookupError:
                pass


# ---------------------------------------------------------------------------- the joblib sweep
def _sweep_args(tmp_path: Path, n_archs: int, n_shards: int, sweep: str) -> list[str]:
    shards = ",".join(f"{i}/{n_shards}" for i in range(n_shards))
    return [sys.executable, "-m", "harness", "run", "--multirun", "hydra/launcher=joblib",
            f"hydra.launcher.n_jobs={n_shards}", f"shard={shards}", *_job_args(tmp_path, n_archs),
            f"hydra.sweep.dir={tmp_path}/{sweep}"]


def _job_args(tmp_path: Path, n_archs: int) -> list[str]:
    return [*TINY, f"archs.n={n_archs}", f"store.path={tmp_path}/main.sqlite", f"store.shards={tmp_path}/shards"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _check_sweep_killed_and_rerun(tmp_path: Path, n_archs: int, n_shards: int) -> None:
    per_shard = n_archs // n_shards
    victim = 1
    shard_db = [tmp_path / "shards" / f"shard-{i}-of-{n_shards}.sqlite" for i in range(n_shards)]

    # 1. the sweep; kill the worker scoring shard `victim` once it has stored some, not all, of its slice
    proc = subprocess.Popen(_sweep_args(tmp_path, n_archs, n_shards, "sweep1"), cwd=ROOT, env=_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    seen: set[int] = set()
    killed = None
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            n_stored = len(rows(shard_db[victim]))
            if n_stored >= max(1, per_shard // 20):
                assert n_stored < per_shard, "the shard finished before it could be killed: make it longer"
                kids = descendants(proc.pid)
                seen.update(kids)
                killed = holder_of(shard_db[victim], kids)
                if killed is not None:
                    os.kill(killed, signal.SIGKILL)
                    break
            time.sleep(0.01)
        assert killed is not None, f"no worker was killed (sweep rc={proc.poll()})"
        _, stderr = proc.communicate(timeout=240)
    finally:
        if proc.poll() is None:
            seen.update(descendants(proc.pid))
            proc.kill()
            proc.wait()
        reap(sorted(seen))  # the launcher's workers end with it
    first_rc = proc.returncode
    t_first_end = time.time()
    before = {i: rows(db) for i, db in enumerate(shard_db)}
    assert 0 < len(before[victim]) < per_shard, (first_rc, stderr[-2000:])
    assert not (tmp_path / "main.sqlite").exists()  # shards never write the main store
    print(f"first sweep: rc={first_rc}, rows per shard {[len(b) for b in before.values()]}, "
          f"last error line {stderr.strip().splitlines()[-1:]}")

    # 2. the same sweep again: must succeed, scoring exactly what is missing
    again = subprocess.run(_sweep_args(tmp_path, n_archs, n_shards, "sweep2"), cwd=ROOT, env=_env(),
                           capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    after = {i: rows(db) for i, db in enumerate(shard_db)}
    slices = [set(list(hrun.select_archs(hrun.spaces.get_space("nb201", channels=4, cells_per_stage=1),
                                         select="first", n=n_archs, seed=0))[i::n_shards])
              for i in range(n_shards)]
    space = hrun.spaces.get_space("nb201", channels=4, cells_per_stage=1)
    for i in range(n_shards):
        assert count_rows(shard_db[i]) == (per_shard, per_shard, per_shard)
        assert {a for a, _ in after[i]} == {space.to_str(a) for a in slices[i]}  # its slice, all of it
        # nothing stored by the first run was recomputed (a recomputation rewrites the row)
        assert all(after[i][k] == v for k, v in before[i].items())
        # what the re-run added is exactly what was missing, computed once, after the first run
        new = set(after[i]) - set(before[i])
        assert len(new) == per_shard - len(before[i])
        assert all(after[i][k][2] >= t_first_end for k in new)

    # 3. the gather job: merges the shard stores into the main store and reports the union
    gather = subprocess.run([sys.executable, "-m", "harness", "run", *_job_args(tmp_path, n_archs),
                             f"hydra.run.dir={tmp_path}/gather"], cwd=ROOT, env=_env(),
                            capture_output=True, text=True, timeout=300)
    assert gather.returncode == 0, gather.stderr[-3000:]
    summary = json.loads((tmp_path / "gather" / "summary.json").read_text())
    assert summary["computed"] == 0 and summary["cached"] == n_archs
    assert summary["merged"] == {"files": n_shards, "added": n_archs, "replaced": 0, "kept": 0, "read": n_archs}
    main_db = tmp_path / "main.sqlite"
    assert count_rows(main_db) == (n_archs, n_archs, n_archs)  # each (arch, proxy) exactly once
    final = rows(main_db)
    assert {p for _, p in final} == {"wrcor"}
    for i in range(n_shards):
        assert all(final[k] == v for k, v in after[i].items())  # merged unchanged
    import pandas as pd

    scores = pd.read_csv(tmp_path / "gather" / "scores.csv")
    assert scores.groupby("proxy")["arch"].nunique().to_dict() == {"wrcor": n_archs}
    assert len(scores) == n_archs


@needs_data
def test_joblib_sweep_with_a_killed_worker_ends_with_every_score_once(tmp_path):
    """4 shards x 100 NB201 architectures through hydra/launcher=joblib; one worker SIGKILLed."""
    _check_sweep_killed_and_rerun(tmp_path, n_archs=400, n_shards=4)


# ------------------------------------------------------------------------- the same, in-process
@needs_data
def test_shards_cover_the_archs_disjointly_and_the_gather_job_merges(tmp_path):
    n, n_shards = 24, 4
    base = [*TINY, f"archs.n={n}", f"store.path={tmp_path}/main.sqlite", f"store.shards={tmp_path}/shards"]
    shard_db = [hrun.shard_store_path(tmp_path / "shards", (i, n_shards)) for i in range(n_shards)]
    computed = []
    for i in range(n_shards):
        out = hrun.run(make_cfg(*base, f"shard={i}/{n_shards}"), output_dir=tmp_path / f"s{i}")
        assert out["metrics"] == [] and "merged" not in out
        computed.append(out["computed"])
    assert computed == [n // n_shards] * n_shards
    assert not (tmp_path / "main.sqlite").exists()
    archs = [{a for a, _ in rows(db)} for db in shard_db]
    assert sum(map(len, archs)) == n and len(set().union(*archs)) == n  # disjoint cover
    every = [hrun.spaces.get_space("nb201", channels=4, cells_per_stage=1).to_str(a) for a in
             hrun.select_archs(hrun.spaces.get_space("nb201", channels=4, cells_per_stage=1),
                               select="first", n=n, seed=0)]
    assert set().union(*archs) == set(every)
    assert all(archs[i] == set(every[i::n_shards]) for i in range(n_shards))

    gather = hrun.run(make_cfg(*base), output_dir=tmp_path / "all")
    assert gather["computed"] == 0 and gather["merged"]["added"] == n and gather["merged"]["files"] == n_shards
    assert json.loads((tmp_path / "all" / "summary.json").read_text())["merged"]["added"] == n
    assert count_rows(tmp_path / "main.sqlite") == (n, n, n)
    # gathering again merges nothing new and computes nothing
    again = hrun.run(make_cfg(*base), output_dir=tmp_path / "all2")
    assert again["computed"] == 0 and again["merged"] == {"files": n_shards, "added": 0, "replaced": 0,
                                                          "kept": n, "read": n}
    assert again["metrics"] == gather["metrics"]
    # a shard whose own store is lost finds its scores in the main store: nothing recomputed
    for suffix in ("", "-wal", "-shm"):
        Path(f"{shard_db[2]}{suffix}").unlink(missing_ok=True)
    assert hrun.run(make_cfg(*base, f"shard=2/{n_shards}"), output_dir=tmp_path / "s2b")["computed"] == 0
    assert len(rows(shard_db[2])) == 0
    # a different shard count is a different set of files, and still finds every score stored
    assert hrun.run(make_cfg(*base, "shard=1/3"), output_dir=tmp_path / "t1")["computed"] == 0


@needs_data
def test_a_computed_score_in_a_shard_replaces_a_failure_in_the_main_store(tmp_path):
    """retry_failed in a shard job: the failure stored in the main store is recomputed into the
    shard's store, and the gather job's merge replaces it."""
    from harness.scoring.store import Record

    n = 4
    base = [*TINY, f"archs.n={n}", f"store.path={tmp_path}/main.sqlite"]
    hrun.run(make_cfg(*base), output_dir=tmp_path / "first")  # fills the main store, no shards
    with ScoreStore(tmp_path / "main.sqlite") as main:
        victim = main.records()[0]
        main.put(Record(victim.key, float("nan"), "oom", 0.0, message="CUDA out of memory"))
    sharded = [*base, f"store.shards={tmp_path}/shards"]
    plain = hrun.run(make_cfg(*sharded, "shard=0/2"), output_dir=tmp_path / "s0")
    assert plain["computed"] == 0  # a stored failure is a stored outcome
    retry = [hrun.run(make_cfg(*sharded, f"shard={i}/2", "retry_failed=true"), output_dir=tmp_path / f"r{i}")
             for i in range(2)]
    assert sum(r["computed"] for r in retry) == 1
    out = hrun.run(make_cfg(*sharded), output_dir=tmp_path / "all")
    assert out["merged"]["replaced"] == 1 and out["merged"]["added"] == 0
    assert all(m["n_failed"] == 0 for m in out["metrics"])
    with ScoreStore(tmp_path / "main.sqlite") as main:
        assert main.get(victim.key).value == victim.value and main.get(victim.key).status == victim.status
