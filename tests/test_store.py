"""Tests for harness.scoring.store: exact round trips, bulk reads, several writer processes,
and a SIGKILL crash/restart that must recompute nothing already stored."""

from __future__ import annotations

import doctest
import math
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from harness.scoring import store as store_module
from harness.scoring.store import Record, ScoreKey, ScoreStore, status_of

REPO_ROOT = Path(__file__).resolve().parents[1]
INF = math.inf
NAN = math.nan


def make_key(i: int = 0, **over) -> ScoreKey:
    fields = dict(
        space="nb201",
        arch=f"|nor_conv_3x3~0|+|skip_connect~0|none~1|+|arch-{i:05d}|",
        dataset="cifar10",
        proxy="wrcor",
        seed=0,
        batch_size=64,
        input_kind="real",
        code_version="v1",
        params="",
    )
    fields.update(over)
    return ScoreKey(**fields)


def make_record(key: ScoreKey, value: float, **over) -> Record:
    kw = dict(status=status_of(value), seconds=0.25)
    kw.update(over)
    return Record(key, value, **kw)


def same(a: Record, b: Record) -> bool:
    """Field-by-field equality, NaN equal to NaN, floats compared exactly."""
    va, vb = a.value, b.value
    value_ok = (math.isnan(va) and math.isnan(vb)) or va == vb
    return value_ok and (a.key, a.status, a.seconds, a.n_skipped, a.message, a.created) == (
        b.key,
        b.status,
        b.seconds,
        b.n_skipped,
        b.message,
        b.created,
    )


def child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO_ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env["OMP_NUM_THREADS"] = "1"
    return env


# ------------------------------------------------------------------- basics
def test_doctests_pass():
    result = doctest.testmod(store_module)
    assert result.attempted > 0
    assert result.failed == 0


def test_status_of():
    assert status_of(1.5) == "ok"
    assert status_of(0.0) == "ok"
    assert status_of(NAN) == "nan"
    assert status_of(INF) == "inf"
    assert status_of(-INF) == "inf"
    assert status_of(np.float32("nan")) == "nan"


def test_round_trip_special_values(tmp_path):
    path = tmp_path / "deep" / "dir" / "scores.sqlite"  # parent dirs are created
    recs = [
        make_record(make_key(0), 0.123456789012345678),
        make_record(make_key(1), NAN, n_skipped=3),
        make_record(make_key(2), INF),
        make_record(make_key(3), -INF, message="singular kernel: log det = -inf"),
        Record(make_key(4), NAN, "error", seconds=1.5, message="RuntimeError: boom\nline 2"),
        Record(make_key(5), NAN, "oom", seconds=9.0, message="CUDA out of memory"),
        make_record(make_key(6), -1e-300, created=1_700_000_000.123456),
        make_record(make_key(7), 5e300),
    ]
    with ScoreStore(path) as store:
        for r in recs:
            store.put(r)
        assert len(store) == len(recs)
        for r in recs:
            got = store.get(r.key)
            assert got is not None and same(got, r), (got, r)
            assert got == r  # Record equality treats NaN == NaN
    # Reopened from disk: still exact.
    with ScoreStore(path) as store:
        got = store.get_many([r.key for r in recs])
        assert len(got) == len(recs)
        for r in recs:
            assert same(got[r.key], r)
        assert store.get(make_key(2)).value == INF
        assert store.get(make_key(3)).value == -INF
        assert math.isnan(store.get(make_key(1)).value)
        assert store.get(make_key(1)).status == "nan"
        assert store.get(make_key(4)).message == "RuntimeError: boom\nline 2"


def test_every_key_field_is_part_of_the_key(tmp_path):
    base = make_key(0)
    variants = [
        replace(base, space="nats-tss"),
        replace(base, arch="other"),
        replace(base, dataset="cifar100"),
        replace(base, proxy="naswot"),
        replace(base, seed=1),
        replace(base, batch_size=128),
        replace(base, input_kind="noise"),
        replace(base, code_version="v2"),
        replace(base, params="power=2"),
    ]
    with ScoreStore(tmp_path / "s.sqlite") as store:
        store.put(make_record(base, 1.0))
        for i, k in enumerate(variants):
            assert store.get(k) is None
            store.put(make_record(k, float(i + 2)))
        assert len(store) == 10
        assert store.get(base).value == 1.0
        for i, k in enumerate(variants):
            assert store.get(k).value == float(i + 2)


def test_put_replaces_existing_key(tmp_path):
    with ScoreStore(tmp_path / "s.sqlite") as store:
        k = make_key(0)
        store.put(Record(k, NAN, "error", 0.1, message="first"))
        store.put(make_record(k, 2.0))
        assert len(store) == 1
        assert store.get(k).value == 2.0 and store.get(k).status == "ok"
        assert k in store and make_key(1) not in store


def test_get_many_2000_keys(tmp_path):
    keys = [make_key(i, proxy=("wrcor" if i % 2 else "naswot")) for i in range(2000)]
    recs = [make_record(k, float(i) if i % 97 else NAN) for i, k in enumerate(keys)]
    missing = [make_key(i, seed=7) for i in range(300)]
    with ScoreStore(tmp_path / "s.sqlite") as store:
        t0 = time.perf_counter()
        store.put_many(recs)
        got = store.get_many(keys + missing + keys[:10])  # duplicates are fine
        elapsed = time.perf_counter() - t0
        assert len(store) == 2000
        assert set(got) == set(keys)
        for r in recs:
            assert same(got[r.key], r)
        assert store.get_many([]) == {}
        assert store.get_many(missing) == {}
    assert elapsed < 5.0


def test_records_filters(tmp_path):
    with ScoreStore(tmp_path / "s.sqlite") as store:
        recs = [
            make_record(make_key(i, proxy=p, seed=s), float(i))
            for i in range(5)
            for p in ("wrcor", "synflow")
            for s in (0, 1)
        ]
        store.put_many(recs)
        store.put(Record(make_key(99), NAN, "error", 0.0, message="x"))
        assert len(store.records()) == 21
        assert len(store.records(proxy="wrcor")) == 11
        assert len(store.records(proxy="wrcor", seed=1)) == 5
        assert len(store.records(seed=1, dataset="cifar10", space="nb201")) == 10
        assert [r.key for r in store.records(status="error")] == [make_key(99)]
        assert store.records(dataset="imagenet") == []
        arch = make_key(3).arch
        assert {r.key.proxy for r in store.records(arch=arch)} == {"wrcor", "synflow"}
        with pytest.raises(TypeError, match="unknown filter"):
            store.records(model="x")
        # Deterministic order.
        assert store.records() == store.records()


def test_put_many_is_one_atomic_transaction(tmp_path):
    with ScoreStore(tmp_path / "s.sqlite") as store:
        good = [make_record(make_key(i), float(i)) for i in range(5)]
        bad = make_record(make_key(5), 1.0)
        object.__setattr__(bad, "status", "bogus")  # bypass validation: fails in SQLite
        with pytest.raises(sqlite3.IntegrityError):
            store.put_many(good + [bad])
        assert len(store) == 0  # rolled back: nothing half-written
        with pytest.raises(TypeError):
            store.put_many(good + ["not a record"])  # type: ignore[list-item]
        assert len(store) == 0
        store.put_many(good)
        assert len(store) == 5


def test_validation():
    with pytest.raises(ValueError, match="status"):
        Record(make_key(0), 1.0, "weird", 0.0)
    with pytest.raises(ValueError, match="does not match"):
        Record(make_key(0), NAN, "ok", 0.0)
    with pytest.raises(ValueError, match="does not match"):
        Record(make_key(0), 1.0, "inf", 0.0)
    with pytest.raises(TypeError):
        make_key(0, seed="0")
    with pytest.raises(TypeError):
        make_key(0, batch_size=64.0)
    with pytest.raises(TypeError):
        make_key(0, arch=("a", "b"))
    k = make_key(0, seed=np.int64(3), batch_size=np.int32(16))
    assert type(k.seed) is int and k == make_key(0, seed=3, batch_size=16)
    with pytest.raises(Exception):
        k.seed = 4  # type: ignore[misc]


def test_wal_mode_and_close(tmp_path):
    path = tmp_path / "s.sqlite"
    store = ScoreStore(path)
    store.put(make_record(make_key(0), 1.0))
    store.close()
    store.close()  # idempotent
    with pytest.raises(RuntimeError, match="closed"):
        store.get(make_key(0))
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    finally:
        conn.close()


# ------------------------------------------------------- several processes
WRITER = """
import sys, time
from harness.scoring.store import Record, ScoreKey, ScoreStore, status_of

db, tag, n, start_at = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])

def key(name):
    return ScoreKey(space="toy", arch=name, dataset="d", proxy="p", seed=0,
                    batch_size=8, input_kind="noise", code_version="test")

with ScoreStore(db) as store:
    while time.time() < start_at:
        time.sleep(0.001)
    for i in range(n):
        store.put(Record(key(f"{tag}-single-{i}"), float(i), "ok", seconds=0.0))
        if i % 10 == 0:  # interleave small batches
            store.put_many([Record(key(f"{tag}-batch-{i}-{j}"), float(j), "ok", seconds=0.0)
                            for j in range(10)])
        # both processes also write the same shared keys
        store.put(Record(key(f"shared-{i}"), float(i), "ok", seconds=0.0, message=tag))
"""


def test_two_processes_writing_concurrently_lose_nothing(tmp_path):
    script = tmp_path / "writer.py"
    script.write_text(textwrap.dedent(WRITER))
    db = tmp_path / "shared.sqlite"
    n = 150
    start_at = time.time() + 1.0
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), str(db), tag, str(n), repr(start_at)],
            env=child_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for tag in ("A", "B")
    ]
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err.decode()
    with ScoreStore(db) as store:
        per_tag = n + (n // 10) * 10
        assert len(store) == 2 * per_tag + n
        for tag in ("A", "B"):
            singles = [r for r in store.records() if r.key.arch.startswith(f"{tag}-single-")]
            assert sorted(r.value for r in singles) == [float(i) for i in range(n)]
            batches = [r for r in store.records() if r.key.arch.startswith(f"{tag}-batch-")]
            assert len(batches) == (n // 10) * 10
        shared = [r for r in store.records() if r.key.arch.startswith("shared-")]
        assert len(shared) == n and {r.message for r in shared} <= {"A", "B"}


# ----------------------------------------------------------- crash / restart
JOB = """
import os, sys, time
from harness.scoring.store import Record, ScoreKey, ScoreStore, status_of

db, log, n = sys.argv[1], sys.argv[2], int(sys.argv[3])

def key(i):
    return ScoreKey(space="toy", arch=f"arch-{i:04d}", dataset="cifar10", proxy="fake",
                    seed=0, batch_size=8, input_kind="noise", code_version="test")

def fake_score(i):
    if i % 17 == 0:
        return float("nan")
    if i % 23 == 0:
        return float("-inf")
    return i * 0.5

with ScoreStore(db) as store:
    for i in range(n):
        k = key(i)
        if store.get(k) is not None:
            continue  # never recompute a stored key
        t0 = time.perf_counter()
        time.sleep(0.01)  # "compute"
        value = fake_score(i)
        with open(log, "a") as f:  # log the computation BEFORE storing it
            f.write(k.arch + "\\n")
            f.flush()
            os.fsync(f.fileno())
        store.put(Record(k, value, status_of(value), seconds=time.perf_counter() - t0))
"""


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_loses_nothing_and_restart_recomputes_nothing(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(JOB))
    db, log, n = tmp_path / "scores.sqlite", tmp_path / "computed.log", 200
    cmd = [sys.executable, str(script), str(db), str(log), str(n)]

    proc = subprocess.Popen(cmd, env=child_env(), stderr=subprocess.PIPE)
    before: list[Record] = []
    try:
        with ScoreStore(db) as watcher:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                assert proc.poll() is None, "job ended before it could be killed"
                if len(watcher) >= 30:
                    before = watcher.records()
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.002)
    finally:
        if proc.poll() is None and not before:
            proc.kill()
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert 30 <= len(before) < n

    # Everything stored before the kill survives, exactly.
    with ScoreStore(db) as store:
        got = store.get_many([r.key for r in before])
        assert len(got) == len(before)
        for r in before:
            assert same(got[r.key], r)
        n_after_kill = len(store)
    assert n_after_kill >= len(before)

    # Restart to completion.
    done = subprocess.run(cmd, env=child_env(), capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr.decode()

    with ScoreStore(db) as store:
        records = store.records()
        assert len(records) == n
        assert {r.key.arch for r in records} == {f"arch-{i:04d}" for i in range(n)}
        for r in before:
            assert same(store.get(r.key), r)  # not overwritten by a recomputation
        statuses = Counter(r.status for r in records)
        assert statuses["nan"] > 0 and statuses["inf"] > 0 and statuses["ok"] > 0

    counts = Counter(log.read_text().split())
    assert set(counts) == {f"arch-{i:04d}" for i in range(n)}
    assert max(counts.values()) <= 2
    twice = [a for a, c in counts.items() if c == 2]
    assert len(twice) <= 1, twice  # at most the one in flight at the kill
    assert not ({r.key.arch for r in before} & set(twice))  # stored ones never recomputed


# ------------------------------------------------- merging stores, reading several
def _statuses(store: ScoreStore) -> dict[ScoreKey, tuple]:
    return {r.key: (r.status, r.value, r.message) for r in store.records()}


def test_merge_rules_and_idempotence(tmp_path):
    k = [make_key(i) for i in range(7)]
    err = lambda key, msg="boom": Record(key, NAN, "error", 0.1, message=msg)  # noqa: E731
    oom = lambda key: Record(key, NAN, "oom", 0.1, message="CUDA out of memory")  # noqa: E731
    with ScoreStore(tmp_path / "main.sqlite") as main, ScoreStore(tmp_path / "shard.sqlite") as shard:
        main.put_many([
            make_record(k[0], 1.0),            # ok here, other ok there   -> kept
            err(k[1]),                          # error here, ok there      -> replaced
            oom(k[2]),                          # oom here, nan there       -> replaced
            make_record(k[3], 3.0),            # ok here, error there      -> kept
            err(k[4], "first"),                 # error here, oom there     -> kept
            make_record(k[6], -INF),           # only here                 -> untouched
        ])
        shard.put_many([
            make_record(k[0], 99.0),
            make_record(k[1], 1.5),
            make_record(k[2], NAN),
            err(k[3]),
            oom(k[4]),
            make_record(k[5], INF),            # missing here              -> added
        ])
        source = {r.key: r for r in shard.records()}
        counts = main.merge_from(tmp_path / "shard.sqlite")
        assert counts == {"added": 1, "replaced": 2, "kept": 3, "read": 6}
        assert len(main) == 7
        got = {r.key: r for r in main.records()}
        assert got[k[0]].value == 1.0
        assert same(got[k[1]], source[k[1]]) and same(got[k[2]], source[k[2]])  # copied exactly
        assert got[k[3]].status == "ok" and got[k[3]].value == 3.0
        assert got[k[4]].status == "error" and got[k[4]].message == "first"
        assert same(got[k[5]], source[k[5]]) and got[k[5]].value == INF
        assert got[k[6]].value == -INF
        # idempotent: a second merge (from the open store this time) changes nothing
        before = _statuses(main)
        assert main.merge_from(shard) == {"added": 0, "replaced": 0, "kept": 6, "read": 6}
        assert _statuses(main) == before
        # merging an empty store, and into an empty store
        with ScoreStore(tmp_path / "empty.sqlite") as empty:
            assert main.merge_from(empty) == {"added": 0, "replaced": 0, "kept": 0, "read": 0}
            assert empty.merge_from(main) == {"added": 7, "replaced": 0, "kept": 0, "read": 7}
            assert {r.key: r for r in empty.records()} == got


def test_merge_reads_the_source_only(tmp_path):
    src = tmp_path / "shard.sqlite"
    with ScoreStore(src) as shard:
        shard.put_many([make_record(make_key(i), float(i)) for i in range(20)])
    data = src.read_bytes()
    with ScoreStore(tmp_path / "main.sqlite") as main:
        assert main.merge_from(src)["added"] == 20
    assert src.read_bytes() == data
    with pytest.raises(FileNotFoundError):
        ScoreStore(tmp_path / "missing.sqlite", readonly=True)
    assert not (tmp_path / "missing.sqlite").exists()
    with ScoreStore(src, readonly=True) as ro:
        assert len(ro) == 20 and ro.get(make_key(3)).value == 3.0
        with pytest.raises(PermissionError, match="read-only"):
            ro.put(make_record(make_key(99), 1.0))
    with pytest.raises(ValueError):
        ScoreStore(":memory:", readonly=True)
    (tmp_path / "other.sqlite").write_bytes(b"")
    with pytest.raises(RuntimeError, match="not a score store"):
        ScoreStore(tmp_path / "other.sqlite", readonly=True)


def test_merge_after_a_writer_was_killed(tmp_path):
    """A shard whose worker was SIGKILLed (its WAL not checkpointed) merges every committed record."""
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent("""
        import os, signal, sys
        from harness.scoring.store import Record, ScoreKey, ScoreStore
        with ScoreStore(sys.argv[1]) as store:
            for i in range(25):
                store.put(Record(ScoreKey("toy", f"a{i}", "d", "p", 0, 8, "noise", "t"), float(i), "ok", 0.0))
            os.kill(os.getpid(), signal.SIGKILL)
    """))
    shard = tmp_path / "shard.sqlite"
    done = subprocess.run([sys.executable, str(script), str(shard)], env=child_env(), capture_output=True)
    assert done.returncode == -signal.SIGKILL
    assert Path(f"{shard}-wal").exists()
    with ScoreStore(tmp_path / "main.sqlite") as main:
        assert main.merge_from(shard) == {"added": 25, "replaced": 0, "kept": 0, "read": 25}


def test_union_store_reads_all_writes_one(tmp_path):
    from harness.scoring.store import UnionStore

    k = [make_key(i) for i in range(6)]
    with ScoreStore(tmp_path / "main.sqlite") as main:
        main.put_many([make_record(k[0], 10.0), make_record(k[1], 11.0),
                       Record(k[2], NAN, "error", 0.0, message="main failed"),
                       Record(k[4], NAN, "oom", 0.0)])
    main = ScoreStore(tmp_path / "main.sqlite", readonly=True)
    shard = ScoreStore(tmp_path / "shard.sqlite")
    shard.put_many([make_record(k[1], 21.0),                                      # both: the write store's
                    make_record(k[2], 22.0),                                      # failed in main, ok here
                    Record(k[3], NAN, "error", 0.0, message="shard failed"),      # failed here, ok in other
                    Record(k[4], NAN, "error", 0.0, message="both failed")])      # failed in both: the first
    other = ScoreStore(tmp_path / "other.sqlite")
    other.put(make_record(k[3], 33.0))
    with UnionStore(shard, [main, other]) as u:
        expect = {k[0]: 10.0, k[1]: 21.0, k[2]: 22.0, k[3]: 33.0}
        for key, value in expect.items():
            assert u.get(key).value == value and key in u
        assert u.get(k[4]).message == "both failed" and u.get(k[4]).failed
        assert u.get(k[5]) is None and k[5] not in u and "x" not in u
        many = u.get_many(k + k[:2])
        assert set(many) == set(k[:5])
        assert all(many[key] == u.get(key) for key in k[:5])
        assert [r.key for r in u.records()] == sorted(k[:5], key=lambda x: x.arch)
        assert {r.key: r.value for r in u.records() if not r.failed} == expect
        assert len(u) == 4  # the write store's
        # writes go to the write store only
        u.put(make_record(k[5], 5.0))
        u.put_many([make_record(k[0], -1.0)])
        assert len(u) == 6 and len(main) == 4 and len(other) == 1
        assert u.get(k[0]).value == -1.0 and main.get(k[0]).value == 10.0
        assert u.path == shard.path
    with pytest.raises(RuntimeError, match="closed"):
        main.get(k[0])  # the union owns its stores
    with pytest.raises(RuntimeError, match="closed"):
        other.get(k[0])


def test_store_cli_merge_and_count(tmp_path, capsys):
    for name, offset in (("a", 0), ("b", 5)):
        with ScoreStore(tmp_path / f"shard-{name}.sqlite") as s:
            s.put_many([make_record(make_key(i + offset), float(i)) for i in range(10)])
            s.put(Record(make_key(100, proxy="synflow"), NAN, "error", 0.0))
    dest = tmp_path / "main.sqlite"
    argv = ["merge", "--into", str(dest), str(tmp_path / "shard-a.sqlite"), str(tmp_path / "shard-b.sqlite")]
    assert store_module.main(argv) == 0
    out = capsys.readouterr().out
    assert "added=11 replaced=0 kept=0 read=11" in out  # shard a
    assert "added=5 replaced=0 kept=6 read=11" in out   # shard b: 5 overlap + the failure
    assert "total: added=16 replaced=0 kept=6 read=22" in out and "holds 16 rows" in out
    assert store_module.main(argv) == 0
    assert "total: added=0 replaced=0 kept=22 read=22" in capsys.readouterr().out
    done = subprocess.run([sys.executable, "-m", "harness.scoring.store", "count", str(dest)], env=child_env(),
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{dest}: 16 rows"
    assert [ln.split() for ln in lines[1:]] == [["synflow", "error", "1"], ["wrcor", "ok", "15"]]
    # a missing source is a clear error, not a traceback; the sources merged before it stay merged
    assert store_module.main(["merge", "--into", str(dest), str(tmp_path / "nope.sqlite")]) == 1
    assert "nope.sqlite: not merged" in capsys.readouterr().err
    assert store_module.main(["count", str(tmp_path / "nope.sqlite")]) == 1
    assert not (tmp_path / "nope.sqlite").exists()


OPENER = """
import sys, time
from harness.scoring.store import ScoreStore
db, start_at = sys.argv[1], float(sys.argv[2])
while time.time() < start_at:
    pass
ScoreStore(db).close()
"""


def test_many_processes_opening_one_new_store_at_once_all_succeed(tmp_path):
    """A sweep's first jobs open a new store together: switching it to WAL needs an exclusive
    lock that SQLite does not wait for (before the retry, 7 of 15 rounds of 6 openers failed
    with "database is locked")."""
    script = tmp_path / "opener.py"
    script.write_text(textwrap.dedent(OPENER))
    for round_ in range(3):
        db = tmp_path / f"new{round_}.sqlite"
        start_at = time.time() + 1.0
        procs = [subprocess.Popen([sys.executable, str(script), str(db), repr(start_at)], env=child_env(),
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(6)]
        for p in procs:
            _, err = p.communicate(timeout=60)
            assert p.returncode == 0, err.decode()
        with ScoreStore(db) as store:
            assert len(store) == 0
