"""Faults of the data files: a corrupt or truncated image (.npz) or table (.csv) is an error naming
the file, with or without SHA256SUMS; checksum verification switched off (ZSNAS_DATA_VERIFY=0)
logs one warning and is recorded in the run's provenance (summary.json and a tag on the run).
The real data is never touched: damaged copies live in a linked data directory under tmp."""
from __future__ import annotations

import logging
import json
import math

import pytest

import harness.data as hdata
import harness.scoring.run as hrun
import spaces
from conftest import needs_data
from harness.config import compose
from spaces.datafiles import SUMS_FILE, clear_caches, data_file, verification
from spaces.vocabulary import DataFileError

from ._common import RecordingTracker, TINY, linked_data_dir

pytestmark = needs_data
NPZ = "images/imagenet16_120_from_samples.npz"
TABLE = "nb201/nb201_ground_truth.csv"


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.delenv("ZSNAS_DATA_VERIFY", raising=False)
    clear_caches()
    hdata._load_npz.cache_clear()
    yield
    clear_caches()
    hdata._load_npz.cache_clear()


def without_sums(dd):
    (dd / SUMS_FILE).unlink()
    return dd


@pytest.mark.parametrize("sums", [True, False], ids=["with-SHA256SUMS", "without-SHA256SUMS"])
@pytest.mark.parametrize("damage", ["truncated", "corrupt"])
def test_a_damaged_image_file_is_an_error_naming_it(tmp_path, sums, damage):
    dd = linked_data_dir(tmp_path, copy=(NPZ,))
    path = dd / NPZ
    good = hdata.batch("ImageNet16-120", 4, seed=0, data_dir=dd)[0]  # the sound copy reads
    data = bytearray(path.read_bytes())
    if damage == "truncated":
        data = data[: len(data) * 2 // 3]
    else:  # bytes flipped inside the first array's data
        for i in range(2000, 2100):
            data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    if not sums:
        without_sums(dd)
    clear_caches()
    hdata._load_npz.cache_clear()
    with pytest.raises(DataFileError) as err:
        hdata.batch("ImageNet16-120", 4, seed=0, data_dir=dd)
    msg = str(err.value)
    assert str(path) in msg
    if sums:
        assert "is corrupt or was modified: its SHA-256 is" in msg
    else:
        assert "is corrupt or truncated: it does not read as an .npz archive" in msg
        assert ("BadZipFile" in msg or "CRC" in msg or "EOFError" in msg or "ValueError" in msg), msg
    assert good.shape == (4, 3, 16, 16)


@pytest.mark.parametrize("sums", [True, False], ids=["with-SHA256SUMS", "without-SHA256SUMS"])
@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_a_damaged_table_is_an_error_naming_it(tmp_path, sums, damage):
    dd = linked_data_dir(tmp_path, copy=(TABLE,))
    path = dd / TABLE
    data = path.read_bytes()
    if damage == "truncated":
        data = data[: len(data) // 2]  # cut mid-row
    else:
        data = data[:5000] + bytes(range(128, 256)) * 4 + data[5512:]
    path.write_bytes(data)
    if not sums:
        without_sums(dd)
    with pytest.raises(DataFileError) as err:
        spaces.get_space("nb201", data_dir=dd).benchmark.lookup_many(
            [spaces.get_space("nb201").parse("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")], "cifar10-valid", "valid")
    msg = str(err.value)
    assert str(path) in msg
    if sums:
        assert "is corrupt or was modified: its SHA-256 is" in msg
    elif damage == "truncated":
        assert "is corrupt or truncated: line " in msg and "fields, its header has" in msg
    else:
        assert "is corrupt or truncated: it is not UTF-8 text" in msg


def test_verification_off_warns_once_and_is_recorded_in_the_provenance(tmp_path, monkeypatch, caplog):
    """A table whose SHA256SUMS line no longer matches (a hand-edited file): refused while
    verification is on; with ZSNAS_DATA_VERIFY=0 the run goes on, one warning is logged, and
    summary.json and the run's tags say data_verify=off."""
    dd = linked_data_dir(tmp_path, archs=[spaces.get_space("nb201").to_str(a) for a in
                                          hrun.select_archs(spaces.get_space("nb201"), select="first", n=3, seed=0)],
                         copy=(SUMS_FILE,))
    sums = dd / SUMS_FILE
    sums.write_text("".join(("0" * 64 + line[64:]) if "nb201_ground_truth" in line else line
                            for line in sums.read_text().splitlines(keepends=True)))
    overrides = [*TINY, f"data_dir={dd}", "proxies=[synflow]", "archs.file=nb201/faults_archs.csv",
                 "archs.column=arch", "archs.select=all", f"store.path={tmp_path}/s.sqlite"]
    with pytest.raises(DataFileError, match="nb201_ground_truth.csv' is corrupt or was modified"):
        hrun.run(compose("config", overrides), output_dir=tmp_path / "on")

    monkeypatch.setenv("ZSNAS_DATA_VERIFY", "0")
    clear_caches()
    assert verification() == "off"
    tracker = RecordingTracker()
    with caplog.at_level(logging.WARNING, logger="spaces.datafiles"):
        out = hrun.run(compose("config", overrides), tracker=tracker, output_dir=tmp_path / "off")
        data_file(TABLE, dd)  # a later use warns no more
    warnings = [r for r in caplog.records if "checksum verification is OFF" in r.getMessage()]
    assert len(warnings) == 1 and "ZSNAS_DATA_VERIFY=0" in warnings[0].getMessage()
    assert out["data_verify"] == "off" and len(out["metrics"]) > 0
    assert json.loads((tmp_path / "off" / "summary.json").read_text())["data_verify"] == "off"
    job = next(r for r in tracker.runs if r["tags"].get("zsnas.role") == "job")
    assert job["tags"][hrun.DATA_VERIFY_TAG] == "off"
    assert not any(math.isnan(m["tau"]) for m in out["metrics"])

    # with verification off a damaged table is still an error naming it
    from harness.scoring.store import ScoreStore

    with ScoreStore(tmp_path / "s.sqlite", readonly=True) as store:
        stored = len(store)
    (dd / TABLE).unlink()
    (dd / TABLE).write_bytes(b"index,arch_str\n0,|none~0|+|none~0|none~1|+|none~0|none~1|none~2|\n1")
    clear_caches()
    with pytest.raises(DataFileError, match="line 3 has 1 fields, its header has 2"):
        hrun.run(compose("config", overrides), output_dir=tmp_path / "off2")
    with ScoreStore(tmp_path / "s.sqlite", readonly=True) as store:  # the records scored before: intact
        assert len(store) == stored == 3
