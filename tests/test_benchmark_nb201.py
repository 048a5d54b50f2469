"""TableBenchmark and the NAS-Bench-201 ground truth."""
from __future__ import annotations

import csv
import hashlib
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from spaces.base import Benchmark, DataFileError, UnknownNameError
from spaces.benchmarks import NB201_FILE, TableBenchmark, nb201_benchmark

from conftest import REAL, needs_data  # noqa: E402

ROW0 = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|"
PAIRS = [
    ("cifar10-valid", "valid"),
    ("cifar10-valid", "test"),  # NB201 v1.0's column: the released WRCor notebook's target
    ("cifar10", "test"),
    ("cifar100", "valid"),
    ("cifar100", "test"),
    ("ImageNet16-120", "valid"),
    ("ImageNet16-120", "test"),
]


class _Arch:
    """Stands in for an architecture value object: its str() is the canonical string."""

    def __init__(self, s: str) -> None:
        self.s = s

    def __str__(self) -> str:
        return self.s


@pytest.fixture(scope="module")
def nb201() -> TableBenchmark:
    if REAL is None:
        pytest.skip("benchmark data directory not available")
    return nb201_benchmark()


# ---------------------------------------------------------------- NB201, real table
@needs_data
def test_size_and_pairs(nb201):
    assert len(nb201) == 15_625
    assert nb201.available() == PAIRS
    assert isinstance(nb201, Benchmark)


@needs_data
@pytest.mark.parametrize(
    "pair, best",
    [
        (("cifar10-valid", "valid"), 91.61),
        (("cifar10", "test"), 94.37),
        (("cifar100", "valid"), 73.49),
        (("cifar100", "test"), 73.51),
        (("ImageNet16-120", "valid"), 46.73),
        (("ImageNet16-120", "test"), 47.31),
    ],
)
def test_published_maxima(nb201, pair, best):
    values = nb201.lookup_many(nb201.keys(), *pair)
    assert values.shape == (15_625,)
    assert round(float(np.nanmax(values)), 2) == best


@needs_data
def test_row0_matches_csv(nb201):
    with open(REAL / NB201_FILE, newline="") as f:
        row = next(csv.DictReader(f))
    assert row["arch_str"] == ROW0
    cols = {
        ("cifar10-valid", "valid"): "c10valid_valid_200",
        ("cifar10", "test"): "c10_test_200",
        ("cifar100", "valid"): "c100_valid_200",
        ("cifar100", "test"): "c100_test_200",
        ("ImageNet16-120", "valid"): "in16_valid_200",
        ("ImageNet16-120", "test"): "in16_test_200",
    }
    for pair, col in cols.items():
        assert nb201.lookup(ROW0, *pair) == float(row[col])
        assert nb201.lookup(_Arch(ROW0), *pair) == float(row[col])  # keyed by str(arch)
    assert nb201.lookup(ROW0, "cifar10-valid", "valid") == pytest.approx(81.982667)
    assert nb201.index_of(ROW0) == 0
    assert ROW0 in nb201 and "nope" not in nb201


@needs_data
def test_index_column_is_official_order(nb201):
    keys = nb201.keys()
    assert nb201.index_of(keys[1234]) == 1234
    idx = nb201.column("index")
    assert idx.dtype == np.int64 and np.array_equal(idx, np.arange(15_625))


@needs_data
def test_extra_columns(nb201):
    c = nb201.column("cifar10_val_12ep")
    assert c.dtype == np.float64 and c.shape == (15_625,)
    assert nb201.column("train_time_s_c10valid_200")[0] == pytest.approx(1444.2186)
    naswot = nb201.column("naswot_v1_score")
    assert int(np.isnan(naswot).sum()) == 341
    arch = nb201.column("arch_str")
    assert arch.dtype.kind == "U" and arch[0] == ROW0
    with pytest.raises(UnknownNameError, match="cifar10_val_12ep"):
        nb201.column("no_such_column")


@needs_data
def test_valid_columns_are_derived(nb201):
    v = nb201.column("c100_valid_200")
    derived = 2 * nb201.column("c100_valtest_200") - nb201.column("c100_test_200")
    assert np.allclose(v, derived, atol=1e-4)
    assert "2*valtest - test" in nb201.protocol("cifar100", "valid")
    assert "2*valtest - test" in nb201.protocol("ImageNet16-120", "valid")
    assert "200 epochs" in nb201.protocol("cifar10-valid", "valid")
    assert "seeds" in nb201.protocol("cifar10", "test")


@needs_data
def test_unknown_pair_lists_valid_ones(nb201):
    with pytest.raises(UnknownNameError) as ei:
        nb201.lookup(ROW0, "cifar10", "valid")
    msg = str(ei.value)
    assert "'cifar10'" in msg and "'valid'" in msg
    assert "('cifar10-valid', 'valid')" in msg and "('ImageNet16-120', 'test')" in msg
    with pytest.raises(UnknownNameError, match="cifar10-valid"):
        nb201.protocol("imagenet", "test")
    with pytest.raises(UnknownNameError):
        nb201.lookup_many([ROW0], "cifar100", "train")


@needs_data
def test_unknown_arch_is_keyerror(nb201):
    with pytest.raises(KeyError) as ei:
        nb201.lookup("|none~0|+|none~0|none~1|+|none~0|none~1|bogus~2|", "cifar10", "test")
    assert "bogus" in str(ei.value) and "arch_str" in str(ei.value)
    with pytest.raises(KeyError):
        nb201.index_of("nope")


def test_pair_errors_do_not_need_the_file(tmp_path):
    bench = nb201_benchmark(data_dir=tmp_path)  # no file there; construction is lazy
    with pytest.raises(UnknownNameError):
        bench.lookup(ROW0, "mnist", "test")
    assert bench.protocol("cifar10", "test").startswith("NB201 cifar10/test")
    with pytest.raises(DataFileError, match="nb201/nb201_ground_truth.csv"):
        bench.lookup(ROW0, "cifar10", "test")


@needs_data
def test_corrupted_copy_raises(tmp_path):
    shutil.copy(REAL / "SHA256SUMS", tmp_path / "SHA256SUMS")
    (tmp_path / "nb201").mkdir()
    with open(REAL / NB201_FILE, "rb") as f:
        (tmp_path / NB201_FILE).write_bytes(f.read(10_000))
    bench = nb201_benchmark(data_dir=tmp_path)
    with pytest.raises(DataFileError, match="corrupt"):
        len(bench)


@needs_data
def test_env_var_is_honoured(tmp_path, monkeypatch):
    monkeypatch.setenv("ZSNAS_DATA_DIR", str(tmp_path))
    with pytest.raises(DataFileError) as ei:
        len(nb201_benchmark())
    assert str(tmp_path.resolve()) in str(ei.value)


# ---------------------------------------------------------------- generic TableBenchmark
def _small_table(root: Path, text: str, rel: str = "t/table.csv") -> None:
    (root / rel).parent.mkdir(parents=True, exist_ok=True)
    (root / rel).write_text(text)


def _bench(root: Path, **kw) -> TableBenchmark:
    return TableBenchmark(
        "t/table.csv",
        key_column="arch",
        columns={("d", "valid"): "acc", ("d", "test"): "acc_t"},
        protocols={("d", "valid"): "d valid", ("d", "test"): "d test"},
        data_dir=root,
        **kw,
    )


def test_generic_table_nan_and_row_numbers(tmp_path):
    _small_table(tmp_path, "arch,acc,acc_t,note\na,1.5,,x\nb,nan,2,y\nc,3,4.25,z\n")
    b = _bench(tmp_path)
    assert len(b) == 3
    assert b.lookup("a", "d", "valid") == 1.5
    assert math.isnan(b.lookup("a", "d", "test"))
    assert math.isnan(b.lookup("b", "d", "valid"))
    assert b.index_of("c") == 2  # no index column -> row number
    got = b.lookup_many(["c", "a"], "d", "test")
    assert got.dtype == np.float64 and got[0] == 4.25 and math.isnan(got[1])
    assert list(b.column("note")) == ["x", "y", "z"]
    assert b.protocol("d", "test") == "d test"


def test_generic_table_read_once(tmp_path, monkeypatch):
    _small_table(tmp_path, "arch,acc,acc_t\na,1,2\n")
    b = _bench(tmp_path)
    import builtins

    opened = []
    real_open = builtins.open

    def spy(file, *a, **k):
        if str(file).endswith("table.csv"):
            opened.append(file)
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", spy)
    for _ in range(3):
        b.lookup("a", "d", "valid")
        b.column("acc_t")
    assert len(opened) == 1


def test_generic_table_errors(tmp_path):
    _small_table(tmp_path, "arch,acc\na,1\n")
    with pytest.raises(DataFileError, match="acc_t"):
        len(_bench(tmp_path))
    _small_table(tmp_path, "arch,acc,acc_t\na,1,2\na,3,4\n")
    with pytest.raises(DataFileError, match="twice"):
        len(_bench(tmp_path))
    _small_table(tmp_path, "arch,acc,acc_t\na,oops,2\n")
    with pytest.raises(DataFileError, match="not numeric"):
        _bench(tmp_path).lookup("a", "d", "valid")
    with pytest.raises(ValueError, match="same"):
        TableBenchmark("x.csv", key_column="k", columns={("d", "s"): "c"}, protocols={}, data_dir=tmp_path)


def test_generic_table_verified_against_sums(tmp_path):
    text = "arch,acc,acc_t\na,1,2\n"
    _small_table(tmp_path, text)
    digest = hashlib.sha256(b"something else").hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{digest}  ./t/table.csv\n")
    with pytest.raises(DataFileError, match="corrupt"):
        _bench(tmp_path).lookup("a", "d", "valid")
