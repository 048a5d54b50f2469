"""Faults of the score store: every one is a StoreError (a UserError: one line, exit status 2)
naming the file, the cause and what to do, and the records committed before it stay intact;
two processes writing one store lose no row; a gather job merges every readable shard, names
each unreadable one and fails."""
from __future__ import annotations

import errno
import math
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import harness.scoring.run as hrun
import harness.scoring.store as store_module
from conftest import needs_data
from harness.config import compose
from harness.errors import UserError
from harness.scoring.store import Record, ScoreKey, ScoreStore, StoreError, merge_stores, store_error

from ._common import ROOT, TINY, read_only


def key(i: int, proxy: str = "wrcor") -> ScoreKey:
    return ScoreKey("nb201", f"arch{i}", "cifar10", proxy, 0, 8, "noise", "v1")


def rec(i: int, proxy: str = "wrcor") -> Record:
    return Record(key(i, proxy), float(i), "ok", 0.01)


def filled(path: Path, n: int, start: int = 0) -> Path:
    with ScoreStore(path) as s:
        s.put_many([rec(i) for i in range(start, start + n)])
    return path


def values(path: Path) -> dict[str, float]:
    """arch -> value, read with plain sqlite3 (read-only)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return dict(con.execute("SELECT arch, value FROM scores").fetchall())
    finally:
        con.close()


def test_store_error_is_a_config_error_the_cli_prints_in_one_line():
    assert issubclass(StoreError, UserError)


def test_cannot_create_in_a_missing_directory_that_cannot_be_made(tmp_path):
    (tmp_path / "afile").write_text("")
    path = tmp_path / "afile" / "scores.sqlite"
    with pytest.raises(StoreError) as err:
        ScoreStore(path)
    msg = str(err.value)
    assert err.value.cause == "create" and str(path) in msg
    assert "cannot create" in msg and f"{tmp_path / 'afile'} is not a directory" in msg and "store.path" in msg


def test_cannot_create_in_a_directory_that_is_not_writable(tmp_path):
    d = tmp_path / "ro"
    d.mkdir()
    filled(tmp_path / "before.sqlite", 5)
    with read_only(d):
        for path in (d / "scores.sqlite", d / "sub" / "scores.sqlite"):
            with pytest.raises(StoreError) as err:
                ScoreStore(path)
            msg = str(err.value)
            assert err.value.cause == "create" and str(path) in msg and "cannot create" in msg
            assert "not writable" in msg and "Set store.path to a file in a writable directory" in msg
    assert len(values(tmp_path / "before.sqlite")) == 5


def test_a_read_only_store_file(tmp_path):
    path = filled(tmp_path / "scores.sqlite", 10)
    with read_only(path):
        with pytest.raises(StoreError) as err:
            with ScoreStore(path) as s:
                s.put(rec(99))
        msg = str(err.value)
        assert err.value.cause == "readonly" and str(path) in msg and "the file is read-only" in msg
        assert f"chmod u+w {path}" in msg
        with ScoreStore(path, readonly=True) as ro:  # still readable
            assert len(ro) == 10
    assert values(path) == {f"arch{i}": float(i) for i in range(10)}


def test_disk_full_rolls_the_write_back_and_keeps_what_was_stored(tmp_path):
    path = filled(tmp_path / "scores.sqlite", 20)
    with ScoreStore(path) as s:
        pages = s._c.execute("PRAGMA page_count").fetchone()[0]
        s._c.execute(f"PRAGMA max_page_count = {pages + 1}")  # the "disk" holds one more page
        big = [Record(key(i), 1.0, "ok", 0.0, message="x" * 2000) for i in range(100, 200)]
        with pytest.raises(StoreError) as err:
            s.put_many(big)
        assert len(s) == 20  # the failed batch left nothing half-written
    msg = str(err.value)
    assert err.value.cause == "full" and str(path) in msg and "the disk holding it is full" in msg
    assert "every record committed before stays in the store" in msg
    assert values(path) == {f"arch{i}": float(i) for i in range(20)}
    # the same words for the operating system's "no space left on device"
    enospc = store_error(str(path), OSError(errno.ENOSPC, "No space left on device"), "write")
    assert enospc.cause == "full" and "disk holding it is full" in str(enospc)


HOLDER = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("ROLLBACK")
"""


def test_locked_by_another_process_beyond_the_timeout(tmp_path):
    path = filled(tmp_path / "scores.sqlite", 7)
    s = ScoreStore(path, timeout_s=0.5)  # open before the other process takes the lock
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), "5"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with s:
            t0 = time.monotonic()
            with pytest.raises(StoreError) as err:
                s.put(rec(50))
            assert time.monotonic() - t0 < 4
            assert len(s) == 7  # reads go on under another's write lock (WAL)
        with pytest.raises(StoreError, match="cannot open: it is locked"):  # opening takes the lock too
            ScoreStore(path, timeout_s=0.5)
    finally:
        holder.kill()
        holder.wait()
    msg = str(err.value)
    assert err.value.cause == "locked" and str(path) in msg and "it is locked" in msg
    assert "more than the 0.5 s this job waits" in msg and f"fuser {path}" in msg
    with ScoreStore(path) as s:  # the lock gone, writing works again
        s.put(rec(50))
    assert len(values(path)) == 8


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_not_a_database_or_corrupt(tmp_path, damage):
    path = tmp_path / "scores.sqlite"
    if damage == "garbage":
        path.write_bytes(os.urandom(8192))
    else:
        with ScoreStore(path) as s:
            s.put_many([Record(key(i), float(i), "ok", 0.0, message="m" * 500) for i in range(200)])
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    for readonly in (False, True):
        with pytest.raises(StoreError) as err:
            with ScoreStore(path, readonly=readonly) as s:
                s.records()
        msg = str(err.value)
        assert err.value.cause == "corrupt" and str(path) in msg, msg
        assert "not a score store or it is corrupt" in msg or "malformed" in msg, msg
        assert f"mv {path} {path}.bad" in msg or "Move it aside" in msg


WRITER = """
import sys
from harness.scoring.store import Record, ScoreKey, ScoreStore
db, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
with ScoreStore(db) as store:
    for i in range(n):  # one transaction per put: the two writers interleave
        store.put(Record(ScoreKey("nb201", f"{who}-{i}", "cifar10", "wrcor", 0, 8, "noise", "v1"), float(i), "ok", 0.0))
print("done", who, flush=True)
"""


def test_two_processes_writing_one_store_lose_no_row(tmp_path):
    path, n = tmp_path / "shared.sqlite", 300
    filled(path, 10)  # written before
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), who, str(n)], env=env, cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for who in ("a", "b")]
    outs = [p.communicate(timeout=240) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    got = values(path)
    assert len(got) == 10 + 2 * n
    for who in ("a", "b"):
        assert {a: v for a, v in got.items() if a.startswith(f"{who}-")} == {f"{who}-{i}": float(i) for i in range(n)}
    assert {f"arch{i}" for i in range(10)} <= set(got)


# ------------------------------------------------------------------------------------ gather
def test_merge_stores_skips_an_unreadable_shard_and_merges_the_others(tmp_path):
    a = filled(tmp_path / "shard-0-of-3.sqlite", 5, 0)
    bad = tmp_path / "shard-1-of-3.sqlite"
    bad.write_bytes(b"this is not an SQLite file" * 100)
    c = filled(tmp_path / "shard-2-of-3.sqlite", 5, 10)
    skipped = []
    with ScoreStore(tmp_path / "main.sqlite") as main:
        total = merge_stores(main, [a, bad, c], on_unreadable=lambda src, err: skipped.append((src, err)))
    assert total["files"] == 2 and total["added"] == 10
    assert [s for s, _ in skipped] == [str(bad)] and skipped[0][1].cause == "corrupt"
    assert set(values(tmp_path / "main.sqlite")) == {f"arch{i}" for i in (*range(5), *range(10, 15))}
    with ScoreStore(tmp_path / "main2.sqlite") as main, pytest.raises(StoreError, match="shard-1-of-3"):
        merge_stores(main, [a, bad, c])  # without on_unreadable: the first unreadable one raises


def test_store_merge_command_names_each_unreadable_source_and_fails(tmp_path, capsys):
    a = filled(tmp_path / "a.sqlite", 4, 0)
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(os.urandom(4096))
    c = filled(tmp_path / "c.sqlite", 4, 10)
    dest = tmp_path / "main.sqlite"
    assert store_module.main(["merge", "--into", str(dest), str(a), str(bad), str(c)]) == 1
    out, err = capsys.readouterr()
    assert f"{bad}: not merged: score store {bad}: cannot open: it is not a score store or it is corrupt" in err
    assert "1 of 3 source(s) not merged" in err and "holds 8 rows" in out
    assert len(values(dest)) == 8


@needs_data
def test_the_gather_job_merges_every_readable_shard_names_the_bad_one_and_fails(tmp_path):
    n, n_shards = 9, 3
    base = [*TINY, "proxies=[wrcor]", "archs.select=first", f"archs.n={n}", f"store.path={tmp_path}/main.sqlite",
            f"store.shards={tmp_path}/shards"]
    for i in range(n_shards):
        hrun.run(compose("config", [*base, f"shard={i}/{n_shards}"]), output_dir=tmp_path / f"s{i}")
    bad = hrun.shard_store_path(tmp_path / "shards", (1, n_shards))
    for suffix in ("-wal", "-shm"):
        Path(f"{bad}{suffix}").unlink(missing_ok=True)
    data = bad.read_bytes()
    bad.write_bytes(data[:100] + os.urandom(len(data) - 100))  # the header survives, the rest is garbage
    with pytest.raises(StoreError) as err:
        hrun.run(compose("config", base), output_dir=tmp_path / "all")
    msg = str(err.value)
    assert "gather: 1 shard store(s)" in msg and str(bad) in msg and "NOT merged" in msg
    assert "The 2 readable shard store(s) were merged" in msg and "rerun the gather job" in msg
    assert ("corrupt" in msg or "malformed" in msg), msg
    assert len(values(tmp_path / "main.sqlite")) == n - n // n_shards  # shards 0 and 2 are in
    assert not (tmp_path / "all" / "summary.json").exists()
    # the bad shard moved aside: the gather job scores only its architectures, and succeeds
    bad.rename(f"{bad}.bad")
    out = hrun.run(compose("config", base), output_dir=tmp_path / "all")
    assert out["computed"] == n // n_shards and len(values(tmp_path / "main.sqlite")) == n
    assert not any(math.isnan(m["tau"]) for m in out["metrics"])


@needs_data
def test_the_gather_command_exits_2_with_one_line(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    (shards / "shard-0-of-2.sqlite").write_bytes(os.urandom(4096))
    cmd = [sys.executable, "-m", "harness", "run", *TINY, "proxies=[wrcor]", "archs.select=first", "archs.n=2",
           f"store.path={tmp_path}/main.sqlite", f"store.shards={shards}", f"hydra.run.dir={tmp_path}/out"]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert done.returncode == 2, done.stderr[-3000:]
    line = done.stderr.strip().splitlines()[-1]
    assert line.startswith("harness run: gather: 1 shard store(s)") and "shard-0-of-2.sqlite" in line
    assert "Traceback" not in done.stderr
