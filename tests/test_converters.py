"""The converters from the official benchmark files (spaces.convert, harness.convert).

Every official format is rebuilt here in miniature — an NB201 ``.pth`` with the state dicts
``nas_201_api`` loads, NATS-Bench ``-simple`` archive directories as ``nats_bench``'s fast mode
reads them, and a NAS-Bench-101 TFRecord with its masked CRC-32C framing and hand-encoded
``ModelMetrics`` protobufs — then converted, and the tables checked value by value.
"""
from __future__ import annotations

import argparse
import base64
import csv
import json
import math
import os
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REAL, needs_data
from spaces import convert as cv
from spaces.convert import tables as cv_tables
from spaces.base import DataFileError
from spaces.benchmarks import TableBenchmark, nb201_benchmark
from spaces.datafiles import clear_caches, data_file, file_sha256

ROOT = Path(__file__).resolve().parent.parent

ARCHS = [  # three NB201 cells; the first two are rows 0 and 1 of the shipped table
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|avg_pool_3x3~2|",
]
NASLIB = ["(4, 3, 3, 0, 0, 0)", "(2, 2, 0, 4, 2, 0)", "(2, 1, 0, 3, 1, 4)"]
DATASETS = ["cifar10-valid", "cifar10", "cifar100", "ImageNet16-120"]
EVAL_SETS = {"cifar10-valid": ["x-valid", "ori-test"], "cifar10": ["ori-test"],
             "cifar100": ["x-valid", "x-test", "ori-test"], "ImageNet16-120": ["x-valid", "x-test", "ori-test"]}
SETNAMES = ["x-valid", "x-test", "ori-test"]
LONG_SEEDS = {0: [777, 888, 999], 1: [777, 888], 2: [777, 888, 999]}


# ----------------------------------------------------------------------------- synthetic results
def final_acc(i: int, dataset: str, setname: str, seed: int, hp: str) -> float:
    """The final-epoch accuracy of a synthetic trial: exact binary fractions, distinct everywhere."""
    k = {777: 0, 888: 1, 999: 2}[seed]
    short = 0.0 if hp in ("200", "90") else -20.0
    return 50.0 + 10 * i + DATASETS.index(dataset) + 0.25 * SETNAMES.index(setname) + 0.5 * k + short


def epoch_time(i: int, seed: int) -> float:
    return 1.5 + i + 0.25 * {777: 0, 888: 1, 999: 2}[seed]


def params_of(i: int, dataset: str) -> float:
    return 0.125 + i + {"cifar10-valid": 0.0, "cifar10": 0.0, "cifar100": 0.0625, "ImageNet16-120": 0.125}[dataset]


def seeds_for(i: int, dataset: str, hp: str) -> list[int]:
    if hp in ("200", "90"):
        return [] if (i == 2 and dataset == "ImageNet16-120") else LONG_SEEDS[i]
    if i == 2 and dataset == "cifar100":
        return []
    return [777, 888] if dataset == "cifar10-valid" else [777]


def build_arch_results(mod, i: int, arch_str: str, hp: str, epochs: int):
    """An ``ArchResults`` of ``mod`` (nas_201_api or nats_bench) as the official files hold them."""
    res = mod.ArchResults(i, arch_str)
    for dataset in DATASETS:
        for seed in seeds_for(i, dataset, hp):
            r = mod.ResultsCount(dataset, None, None, None, params_of(i, dataset), 10.0 + i,
                                 {"arch_str": arch_str, "channel": 16, "num_cells": 5, "class_num": 10},
                                 seed, epochs, [0.001])
            r.update_train_info({e: 10.0 + e for e in range(epochs)}, None,
                                {e: 1.0 / (e + 1) for e in range(epochs)},
                                {e: epoch_time(i, seed) for e in range(epochs)})
            accs, losses, times = {}, {}, {}
            for name in EVAL_SETS[dataset]:
                for e in range(epochs):  # earlier epochs are 7.0 lower: reading them would show
                    accs[f"{name}@{e}"] = final_acc(i, dataset, name, seed, hp) - (0.0 if e == epochs - 1 else 7.0)
                    losses[f"{name}@{e}"] = 0.5
                    times[f"{name}@{e}"] = 0.25
            r.update_eval(accs, losses, times)
            res.update(dataset, seed, r)
    return res


def expected_mean(i: int, dataset: str, setname: str, hp: str) -> float:
    seeds = seeds_for(i, dataset, hp)
    if not seeds:
        return math.nan
    vals = [final_acc(i, dataset, setname, s, hp) for s in seeds]
    return sum(vals) / len(vals)


def read_csv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        return list(reader.fieldnames or []), list(reader)


def num(cell: str) -> float:
    return math.nan if cell == "" else float(cell)


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


# ----------------------------------------------------------------------------- NB201 .pth builder
def make_nb201_pth(path: Path, *, value_wrap=float, extra=None, legacy: bool = False) -> Path:
    import nas_201_api

    arch2infos = {}
    for i in (2, 0, 1):  # unsorted on purpose
        arch2infos[i] = {"less": build_arch_results(nas_201_api, i, ARCHS[i], "12", 12).state_dict(),
                         "full": build_arch_results(nas_201_api, i, ARCHS[i], "200", 200).state_dict()}
    if value_wrap is not float:  # e.g. numpy scalars, as an older file might hold
        for infos in arch2infos.values():
            for state in infos.values():
                for rc in state["all_results"].values():
                    rc["params"] = value_wrap(rc["params"])
    data = {"meta_archs": list(ARCHS), "arch2infos": arch2infos, "evaluated_indexes": [0, 1, 2]}
    if extra is not None:
        data["extra"] = extra
    torch.save(data, path, _use_new_zipfile_serialization=not legacy)
    return path


@pytest.fixture(scope="module")
def nb201_pth(tmp_path_factory) -> Path:
    return make_nb201_pth(tmp_path_factory.mktemp("nb201") / "NAS-Bench-201-v1_1-096897.pth")


def check_long_row(row: dict[str, str], i: int, hp: str) -> None:
    for stem, dataset, setname in cv_tables._LONG_SPECS:
        want = expected_mean(i, dataset, setname, hp)
        assert same(num(row[f"{stem}_{hp}"]), want), (i, stem, row[f"{stem}_{hp}"], want)
    assert int(row[f"n_seeds_{hp}"]) == len(LONG_SEEDS[i])  # the smallest count among the datasets present
    assert num(row["params_mb_c10"]) == params_of(i, "cifar10")
    assert num(row["params_mb_c100"]) == params_of(i, "cifar100")
    assert same(num(row["params_mb_in16"]), math.nan if i == 2 else params_of(i, "ImageNet16-120"))
    epochs = int(hp)
    want_time = sum(epochs * epoch_time(i, s) for s in LONG_SEEDS[i]) / len(LONG_SEEDS[i])
    assert num(row[f"train_time_s_c10valid_{hp}"]) == pytest.approx(want_time, rel=1e-12)


def check_short_row(row: dict[str, str], i: int) -> None:
    for column, dataset, setname in cv_tables._SHORT_SPECS:
        assert same(num(row[column]), expected_mean(i, dataset, setname, "12")), (i, column)


def test_convert_nb201_values(nb201_pth, tmp_path):
    out = tmp_path / "data" / "nb201" / "nb201_ground_truth.csv"
    summary = cv.convert_nb201(nb201_pth, out)
    header, rows = read_csv(out)
    assert header == list(cv.NB201_COLUMNS)
    assert summary["rows"] == 3 and summary["columns"] == header
    assert summary["sha256"] == file_sha256(out)
    assert [int(r["index"]) for r in rows] == [0, 1, 2]
    assert [r["arch_str"] for r in rows] == ARCHS
    assert [r["naslib_tuple"] for r in rows] == NASLIB
    for i, row in enumerate(rows):
        check_long_row(row, i, "200")
        check_short_row(row, i)
    # a mean over three seeds, percent as stored, final epoch (not the 7.0-lower earlier ones)
    assert num(rows[0]["c10valid_valid_200"]) == (50.0 + 50.5 + 51.0) / 3 == 50.5
    assert num(rows[1]["c100_test_200"]) == (62.25 + 62.75) / 2
    # arch 2 has no ImageNet16-120 200-epoch run and no CIFAR-100 12-epoch run: empty cells, counted
    assert rows[2]["in16_test_200"] == "" and rows[2]["cifar100_val_12ep"] == ""
    assert summary["missing"] == {"in16_test_200": 1, "in16_valtest_200": 1, "in16_valid_200": 1,
                                  "params_mb_in16": 1, "cifar100_test_12ep": 1, "cifar100_val_12ep": 1}
    # repr precision: the CSV cell reads back bit-identical to the API's own mean
    import nas_201_api

    state = torch.load(nb201_pth, weights_only=True)["arch2infos"][0]["full"]
    archres = nas_201_api.ArchResults.create_from_state_dict(state)
    api_value = archres.get_metrics("cifar100", "ori-test", is_random=False)
    assert float(rows[0]["c100_valtest_200"]) == float(api_value["accuracy"])


def test_nb201_table_reads_back_through_the_benchmark(nb201_pth, tmp_path):
    data_dir = tmp_path / "data"
    out = data_dir / "nb201" / "nb201_ground_truth.csv"
    cv.convert_nb201(nb201_pth, out)
    line = cv.record_checksum(out, data_dir)
    clear_caches()
    assert data_file("nb201/nb201_ground_truth.csv", data_dir) == out.resolve()  # checksum verified
    bench = nb201_benchmark(data_dir=data_dir)
    assert bench.lookup(ARCHS[0], "cifar10-valid", "valid") == 50.5
    assert bench.lookup(ARCHS[1], "ImageNet16-120", "valid") == expected_mean(1, "ImageNet16-120", "x-valid", "200")
    assert math.isnan(bench.lookup(ARCHS[2], "ImageNet16-120", "test"))
    assert bench.index_of(ARCHS[2]) == 2
    assert line == f"{file_sha256(out)}  ./nb201/nb201_ground_truth.csv"


def test_nb201_legacy_torch_format(tmp_path, nb201_pth):
    """Files saved before torch 1.6 (as the 2020 official .pth probably was) are not zip archives."""
    pth = make_nb201_pth(tmp_path / "legacy.pth", legacy=True)
    assert not zipfile.is_zipfile(pth)
    a = cv.convert_nb201(pth, tmp_path / "a.csv")
    assert a["sha256"] == cv.convert_nb201(nb201_pth, tmp_path / "b.csv")["sha256"]


def test_nb201_numpy_scalars_load_without_full_unpickling(tmp_path):
    pth = make_nb201_pth(tmp_path / "np.pth", value_wrap=np.float64)
    summary = cv.convert_nb201(pth, tmp_path / "out.csv")
    _, rows = read_csv(tmp_path / "out.csv")
    assert summary["rows"] == 3 and num(rows[1]["params_mb_c100"]) == params_of(1, "cifar100")
    # the numpy-1 name of the scalar constructor, as in a file pickled before numpy 2
    src = tmp_path / "np.pth"
    renamed = tmp_path / "np1.pth"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(renamed, "w", zipfile.ZIP_STORED) as zout:
        for info in zin.infolist():
            blob = zin.read(info.filename)
            if info.filename.endswith("data.pkl"):
                assert b"numpy._core.multiarray" in blob
                blob = blob.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
            zout.writestr(info, blob)
    assert cv.convert_nb201(renamed, tmp_path / "out1.csv")["sha256"] == summary["sha256"]


def test_nb201_untrusted_pickle_needs_opt_in(tmp_path):
    pth = make_nb201_pth(tmp_path / "ns.pth", extra=argparse.Namespace(note="not a weights-only type"))
    with pytest.raises(DataFileError, match="trust_pickle=True"):
        cv.convert_nb201(pth, tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()
    assert cv.convert_nb201(pth, tmp_path / "out.csv", trust_pickle=True)["rows"] == 3


def test_nb201_errors(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        cv.convert_nb201(tmp_path / "NAS-Bench-201-v1_1-096897.pth", tmp_path / "o.csv")
    wrong = tmp_path / "wrong.pth"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, wrong)
    with pytest.raises(DataFileError, match="arch2infos"):
        cv.convert_nb201(wrong, tmp_path / "o.csv")
    text = tmp_path / "text.pth"
    text.write_text("index,arch_str\n")
    with pytest.raises(DataFileError, match="not a PyTorch-saved file"):
        cv.convert_nb201(text, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_missing_packages_are_named(tmp_path, monkeypatch, nb201_pth):
    monkeypatch.setitem(sys.modules, "nas_201_api", None)
    with pytest.raises(DataFileError, match="pip install nas-bench-201"):
        cv.convert_nb201(nb201_pth, tmp_path / "o.csv")
    monkeypatch.setitem(sys.modules, "nats_bench", None)
    with pytest.raises(DataFileError, match="pip install nats_bench"):
        cv.convert_nats(tmp_path, tmp_path / "o.csv", space="tss")


@pytest.mark.parametrize("module", ["google_crc32c", "google.protobuf"])
def test_missing_convert_extra_is_named(tmp_path, monkeypatch, module):
    rec = make_tfrecord(tmp_path / "nasbench_only108.tfrecord")
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(DataFileError, match=r"pip install 'zsnas-bench\[convert\]'"):
        cv.convert_nb101(rec, tmp_path / "o.csv")
    assert not (tmp_path / "o.csv").exists()


def test_import_spaces_does_not_load_the_converters():
    code = ("import sys, spaces, spaces.base, spaces.benchmarks, spaces.datafiles; "
            "print(sorted(m for m in sys.modules if m.startswith('spaces.conver')))")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
    assert "spaces.convert" not in open(ROOT / "spaces" / "__init__.py", encoding="utf-8").read()


# ----------------------------------------------------------------------------- NATS archives
SSS_ARCHS = ["8:16:24:32:40", "64:64:64:64:64", "16:8:48:56:32"]


def make_nats_archive(root: Path, space: str) -> Path:
    nats_bench = pytest.importorskip("nats_bench")
    root.mkdir(parents=True, exist_ok=True)
    archs, hps = (ARCHS, {"200": 200, "12": 12}) if space == "tss" else (SSS_ARCHS, {"90": 90, "12": 12, "01": 1})
    nats_bench.pickle_save({"meta_archs": list(archs)}, root / "meta.pickle")
    for i, arch in enumerate(archs):
        states = {hp: build_arch_results(nats_bench.api_utils, i, arch, hp, epochs).state_dict()
                  for hp, epochs in hps.items()}
        nats_bench.pickle_save(states, root / f"{i:06d}.pickle")
    return root


@pytest.mark.parametrize("space", ["tss", "sss"])
def test_convert_nats(tmp_path, space):
    archive = make_nats_archive(tmp_path / f"NATS-{space}-v1_0-simple", space)
    assert (archive / "meta.pickle.pbz2").is_file() and (archive / "000002.pickle.pbz2").is_file()
    out = tmp_path / f"{space}.csv"
    summary = cv.convert_nats(archive, out, space=space)
    header, rows = read_csv(out)
    hp = "200" if space == "tss" else "90"
    want_header = list(cv.NB201_COLUMNS) if space == "tss" else list(cv.NATS_SSS_COLUMNS)
    assert header == want_header and summary["rows"] == 3 and summary["hp"] == hp
    assert [r["arch_str"] for r in rows] == (ARCHS if space == "tss" else SSS_ARCHS)
    if space == "tss":
        assert [r["naslib_tuple"] for r in rows] == NASLIB
    else:
        assert "naslib_tuple" not in header and "c10valid_valid_90" in header
    for i, row in enumerate(rows):
        check_long_row(row, i, hp)
        check_short_row(row, i)


def test_nats_tss_and_nb201_give_the_same_table(tmp_path, nb201_pth):
    archive = make_nats_archive(tmp_path / "NATS-tss-v1_0-3ffb9-simple", "tss")
    a = cv.convert_nats(archive, tmp_path / "a.csv", space="tss")
    b = cv.convert_nb201(nb201_pth, tmp_path / "b.csv")
    assert a["sha256"] == b["sha256"]


def test_nats_single_file_form(tmp_path, nb201_pth):
    """The non-simple ``NATS-tss-v1_0-3ffb9.pickle.pbz2`` (one pickle, read with fast_mode=False)."""
    nats_bench = pytest.importorskip("nats_bench")
    arch2infos = {i: {hp: build_arch_results(nats_bench.api_utils, i, ARCHS[i], hp, epochs).state_dict()
                      for hp, epochs in (("200", 200), ("12", 12))} for i in range(3)}
    nats_bench.pickle_save({"meta_archs": list(ARCHS), "arch2infos": arch2infos, "evaluated_indexes": [0, 1, 2]},
                           tmp_path / "NATS-tss-v1_0-3ffb9.pickle")
    a = cv.convert_nats(tmp_path / "NATS-tss-v1_0-3ffb9.pickle.pbz2", tmp_path / "a.csv", space="tss")
    assert a["sha256"] == cv.convert_nb201(nb201_pth, tmp_path / "b.csv")["sha256"]


def test_nats_errors(tmp_path):
    pytest.importorskip("nats_bench")
    with pytest.raises(DataFileError, match="not found"):
        cv.convert_nats(tmp_path / "NATS-tss-v1_0-3ffb9-simple", tmp_path / "o.csv")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DataFileError, match="meta.pickle.pbz2"):
        cv.convert_nats(empty, tmp_path / "o.csv", space="sss")
    archive = make_nats_archive(tmp_path / "sss", "sss")
    with pytest.raises(DataFileError, match="space='sss'"):
        cv.convert_nats(archive, tmp_path / "o.csv", space="tss")
    (archive / "000001.pickle.pbz2").unlink()
    with pytest.raises(DataFileError, match="architecture 1"):
        cv.convert_nats(archive, tmp_path / "o.csv", space="sss")
    with pytest.raises(ValueError, match="tss' or 'sss"):
        cv.convert_nats(archive, tmp_path / "o.csv", space="darts")
    assert not (tmp_path / "o.csv").exists()


# ----------------------------------------------------------------------------- TFRecord + protobuf
def crc32c_bitwise(data: bytes) -> int:
    """An independent (bit-at-a-time) CRC-32C for building the test files."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def masked(data: bytes) -> int:
    crc = crc32c_bitwise(data)
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + 0xA282EAD8) & 0xFFFFFFFF


def tfrecord_frame(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return length + struct.pack("<I", masked(length)) + data + struct.pack("<I", masked(data))


def pb_varint(v: int) -> bytes:
    v &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def pb_double(field: int, x: float) -> bytes:
    return pb_varint(field << 3 | 1) + struct.pack("<d", x)


def pb_bytes(field: int, blob: bytes) -> bytes:
    return pb_varint(field << 3 | 2) + pb_varint(len(blob)) + blob


def model_metrics(evals: list[dict], params: int, total_time: float, unknown: bool = True) -> bytes:
    msg = b""
    for ev in evals:
        body = b"".join(pb_double(n, ev[k]) for n, k in enumerate(
            ["current_epoch", "training_time", "train_accuracy", "validation_accuracy", "test_accuracy"], 1))
        body += pb_bytes(6, ev.get("checkpoint_path", "").encode())
        if unknown:
            body += pb_varint(7 << 3 | 0) + pb_varint(99)  # a field a newer writer might add
        msg += pb_bytes(1, body)
    return msg + pb_varint(2 << 3 | 0) + pb_varint(params) + pb_double(3, total_time)


MOD_A = dict(hash="a" * 32, adj="0111101000001100000010000110000001100000000000000",
             ops="input,maxpool3x3,maxpool3x3,conv3x3-bn-relu,conv3x3-bn-relu,conv3x3-bn-relu,output",
             val=[0.9375, 0.94140625, 0.9453125], test=[0.93, 0.935, 0.9325], time=[1500.5, 1510.25, 1490.0],
             params=2694282)
MOD_B = dict(hash="b" * 32, adj="0110000010000010000100000",  # 5 vertices: not padded to 7x7
             ops="input,conv3x3-bn-relu,maxpool3x3,conv1x1-bn-relu,output",
             val=[0.875, 0.8828125, 0.890625], test=[0.87, 0.88, 0.885], time=[900.0, 910.0, 905.0],
             params=411434)


def nb101_record(mod: dict, seed: int, epochs: int = 108) -> bytes:
    evals = [dict(current_epoch=e, training_time=t, train_accuracy=1.0, validation_accuracy=v, test_accuracy=x,
                  checkpoint_path=f"gs://bucket/{mod['hash']}/{seed}/model.ckpt-{int(e)}")
             for e, t, v, x in [(0.0, 0.0, 0.1, 0.1),
                                (epochs / 2, mod["time"][seed] / 2, 0.5, 0.5),
                                (float(epochs), mod["time"][seed], mod["val"][seed], mod["test"][seed])]]
    blob = model_metrics(evals, mod["params"], 2 * mod["time"][seed])
    row = [mod["hash"], epochs, mod["adj"], mod["ops"], base64.b64encode(blob).decode()]
    return json.dumps(row).encode()


def make_tfrecord(path: Path) -> Path:
    order = [(MOD_A, 0, 108), (MOD_B, 0, 108), (MOD_A, 0, 36), (MOD_A, 1, 108), (MOD_B, 1, 108),
             (MOD_A, 2, 108), (MOD_B, 2, 108)]
    path.write_bytes(b"".join(tfrecord_frame(nb101_record(m, s, e)) for m, s, e in order))
    return path


def test_crc32c():
    assert cv.crc32c(b"123456789") == crc32c_bitwise(b"123456789") == 0xE3069283  # the CRC-32C check value
    rng = np.random.default_rng(0)
    chunks = [rng.integers(0, 256, size=int(n), dtype=np.uint8).tobytes() for n in rng.integers(0, 200, size=64)]
    chunks += [b"", b"\x00", bytes(range(256)) * 40]
    assert [cv.crc32c(c) for c in chunks] == [crc32c_bitwise(c) for c in chunks]
    assert [cv.masked_crc32c(c) for c in chunks] == [masked(c) for c in chunks]


def test_decode_model_metrics_matches_google_protobuf():
    pytest.importorskip("google.protobuf")
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    fdp = descriptor_pb2.FileDescriptorProto(name="nasbench_model_metrics_test.proto", package="nasbench_test",
                                             syntax="proto2")
    F = descriptor_pb2.FieldDescriptorProto
    ev = fdp.message_type.add(name="EvaluationData")
    for n, name in enumerate(["current_epoch", "training_time", "train_accuracy", "validation_accuracy",
                              "test_accuracy"], 1):
        ev.field.add(name=name, number=n, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    ev.field.add(name="checkpoint_path", number=6, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    mm = fdp.message_type.add(name="ModelMetrics")
    mm.field.add(name="evaluation_data", number=1, type=F.TYPE_MESSAGE, label=F.LABEL_REPEATED,
                 type_name=".nasbench_test.EvaluationData")
    mm.field.add(name="trainable_parameters", number=2, type=F.TYPE_INT32, label=F.LABEL_OPTIONAL)
    mm.field.add(name="total_time", number=3, type=F.TYPE_DOUBLE, label=F.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()
    pool.AddSerializedFile(fdp.SerializeToString())
    ModelMetrics = message_factory.GetMessageClass(pool.FindMessageTypeByName("nasbench_test.ModelMetrics"))
    evals = [dict(current_epoch=108.0, training_time=1234.5, train_accuracy=1.0, validation_accuracy=0.9375,
                  test_accuracy=0.93, checkpoint_path="gs://x/model.ckpt-1")]
    msg = ModelMetrics(trainable_parameters=2694282, total_time=3000.25)
    msg.evaluation_data.add(**evals[0])
    ours = model_metrics(evals, 2694282, 3000.25, unknown=False)
    assert msg.SerializeToString() == ours  # the test's hand encoder writes the real wire format
    decoded = cv.decode_model_metrics(msg.SerializeToString())
    assert decoded["trainable_parameters"] == 2694282 and decoded["total_time"] == 3000.25
    assert decoded["evaluation_data"] == [evals[0]]
    neg = ModelMetrics(trainable_parameters=-5)
    assert cv.decode_model_metrics(neg.SerializeToString())["trainable_parameters"] == -5


def test_decode_model_metrics_hand_encoded():
    """The decoder on bytes written by the test's own encoder: unknown fields skipped, absent
    optionals None, a negative int32 (a 10-byte varint), lenient checkpoint paths, bad bytes refused."""
    evals = [dict(current_epoch=float(e), training_time=10.5 * e, train_accuracy=1.0, validation_accuracy=0.25 * e,
                  test_accuracy=0.125 * e, checkpoint_path=f"ckpt-{e}") for e in (1, 2)]
    decoded = cv.decode_model_metrics(model_metrics(evals, 411434, 99.75, unknown=True))
    assert decoded == {"evaluation_data": evals, "trainable_parameters": 411434, "total_time": 99.75}
    assert cv.decode_model_metrics(b"") == {"evaluation_data": [], "trainable_parameters": None, "total_time": None}
    assert cv.decode_model_metrics(pb_varint(2 << 3) + pb_varint(-5))["trainable_parameters"] == -5
    partial = cv.decode_model_metrics(pb_bytes(1, pb_double(4, 0.5) + pb_bytes(6, b"\xffab")))
    assert partial["evaluation_data"] == [dict(current_epoch=None, training_time=None, train_accuracy=None,
                                               validation_accuracy=0.5, test_accuracy=None,
                                               checkpoint_path="\ufffdab")]
    for bad in (b"\x0a\x05ab", b"\x19\x00", b"\x08"):  # truncated message / double / varint
        with pytest.raises(ValueError, match="ModelMetrics"):
            cv.decode_model_metrics(bad)


def test_convert_nb101(tmp_path):
    rec = make_tfrecord(tmp_path / "nasbench_only108.tfrecord")
    out = tmp_path / "nb101.csv"
    summary = cv.convert_nb101(rec, out)
    header, rows = read_csv(out)
    assert header == list(cv.NB101_COLUMNS)
    assert summary["rows"] == 2 and summary["records"] == 7 and summary["skipped_records"] == 1
    assert summary["missing"] == {}
    a, b = rows  # file order of first appearance
    assert a["module_hash"] == MOD_A["hash"] and b["module_hash"] == MOD_B["hash"]
    assert a["matrix_rowmajor"] == MOD_A["adj"] and len(a["matrix_rowmajor"]) == 49 and a["num_vertices"] == "7"
    assert b["matrix_rowmajor"] == MOD_B["adj"] and b["num_vertices"] == "5"
    assert a["ops"] == "input;maxpool3x3;maxpool3x3;conv3x3-bn-relu;conv3x3-bn-relu;conv3x3-bn-relu;output"
    for row, mod in ((a, MOD_A), (b, MOD_B)):
        assert float(row["val_accuracy"]) == 100.0 * (math.fsum(mod["val"]) / 3)
        assert float(row["test_accuracy"]) == 100.0 * (math.fsum(mod["test"]) / 3)
        assert float(row["train_time_s"]) == math.fsum(mod["time"]) / 3
        assert row["n_seeds"] == "3" and int(row["trainable_parameters"]) == mod["params"]
    assert float(a["val_accuracy"]) == pytest.approx(94.140625, abs=1e-12)  # percent, not fractions
    # the converted table is readable by the project's TableBenchmark
    data_dir = tmp_path
    bench = TableBenchmark("nb101.csv", key_column="module_hash", index_column=None, data_dir=data_dir,
                           columns={("cifar10", "valid"): "val_accuracy"},
                           protocols={("cifar10", "valid"): "test"})
    assert bench.lookup(MOD_B["hash"], "cifar10", "valid") == 100.0 * (math.fsum(MOD_B["val"]) / 3)


def test_nb101_errors(tmp_path):
    with pytest.raises(DataFileError, match="not found"):
        cv.convert_nb101(tmp_path / "nasbench_only108.tfrecord", tmp_path / "o.csv")
    junk = tmp_path / "junk.tfrecord"
    junk.write_bytes(b"this is not a tfrecord file at all")
    with pytest.raises(DataFileError, match="not a TFRecord"):
        cv.convert_nb101(junk, tmp_path / "o.csv")
    rec = make_tfrecord(tmp_path / "r.tfrecord")
    blob = bytearray(rec.read_bytes())
    blob[-1] ^= 0xFF  # corrupt the data CRC of the last record (record 6)
    bad = tmp_path / "bad_crc.tfrecord"
    bad.write_bytes(bytes(blob))
    with pytest.raises(DataFileError, match=r"bad_crc\.tfrecord.*data CRC of record 6 at byte offset \d+"):
        cv.convert_nb101(bad, tmp_path / "o.csv")
    assert cv.convert_nb101(bad, tmp_path / "o.csv", verify_crc=False)["rows"] == 2
    frames = [tfrecord_frame(nb101_record(MOD_A, s)) for s in range(3)]
    flipped = bytearray(frames[1])
    flipped[20] ^= 0x01  # one bit of record 1's data: its CRC no longer matches
    mid = tmp_path / "mid.tfrecord"
    mid.write_bytes(frames[0] + bytes(flipped) + frames[2])
    with pytest.raises(DataFileError, match=rf"mid\.tfrecord.*data CRC of record 1 at byte offset {len(frames[0])} "):
        list(cv.iter_tfrecord(mid))
    assert len(list(cv.iter_tfrecord(mid, verify_crc=False))) == 3
    with pytest.raises(DataFileError, match="data CRC of record 1 "):
        cv.convert_nb101(mid, tmp_path / "o3.csv")
    assert not (tmp_path / "o3.csv").exists()
    (tmp_path / "t.tfrecord").write_bytes(bytes(blob[:-10]))
    with pytest.raises(DataFileError, match="truncated"):
        cv.convert_nb101(tmp_path / "t.tfrecord", tmp_path / "o2.csv")
    notjson = tmp_path / "notjson.tfrecord"
    notjson.write_bytes(tfrecord_frame(b"\x00\x01 binary"))
    with pytest.raises(DataFileError, match="not a NAS-Bench-101 record"):
        cv.convert_nb101(notjson, tmp_path / "o2.csv")
    with pytest.raises(DataFileError, match="none with epochs == 12"):
        cv.convert_nb101(rec, tmp_path / "o2.csv", epochs=12)
    assert not (tmp_path / "o2.csv").exists()


# ----------------------------------------------------------------------------- SHA256SUMS
def test_record_checksum(tmp_path):
    data_dir = tmp_path / "data"
    (data_dir / "nb101").mkdir(parents=True)
    sums = data_dir / "SHA256SUMS"
    other = "0" * 64 + "  ./images/x.npz"
    sums.write_text(f"# comment\n{other}\n{'1' * 64}  ./nb101/t.csv\n")
    out = data_dir / "nb101" / "t.csv"
    out.write_text("a,b\n1,2\n")
    line = cv.record_checksum(out, data_dir)
    assert line == f"{file_sha256(out)}  ./nb101/t.csv"
    assert sums.read_text().splitlines() == ["# comment", other, line]
    out.write_text("a,b\n1,3\n")
    line2 = cv.record_checksum(out, data_dir)
    assert line2 != line and sums.read_text().splitlines() == ["# comment", other, line2]
    clear_caches()
    assert data_file("nb101/t.csv", data_dir) == out.resolve()  # spaces.datafiles accepts the line
    outside = tmp_path / "elsewhere.csv"
    outside.write_text("x\n")
    assert cv.record_checksum(outside, data_dir) is None
    assert sums.read_text().splitlines() == ["# comment", other, line2]
    fresh = tmp_path / "fresh"
    (fresh / "nats").mkdir(parents=True)
    (fresh / "nats" / "s.csv").write_text("x\n")
    line3 = cv.record_checksum(fresh / "nats" / "s.csv", fresh)  # creates SHA256SUMS
    assert (fresh / "SHA256SUMS").read_text() == f"{line3}\n" and line3.endswith("  ./nats/s.csv")


# ----------------------------------------------------------------------------- CLI
def test_cli_end_to_end(tmp_path, capsys):
    from harness.convert import main

    rec = make_tfrecord(tmp_path / "nasbench_only108.tfrecord")
    data_dir = tmp_path / "userdata"
    assert main(["nb101", str(rec), "--data-dir", str(data_dir)]) == 0
    out = data_dir / "nb101" / "nb101_ground_truth.csv"
    printed = capsys.readouterr().out
    digest = file_sha256(out)
    assert "2 rows" in printed and digest in printed
    assert (data_dir / "SHA256SUMS").read_text() == f"{digest}  ./nb101/nb101_ground_truth.csv\n"
    before = out.stat().st_mtime_ns
    assert main(["nb101", str(rec), "--data-dir", str(data_dir)]) == 1  # refuses to overwrite
    assert "--force" in capsys.readouterr().err and out.stat().st_mtime_ns == before
    assert main(["nb101", str(rec), "--data-dir", str(data_dir), "--force", "--no-crc"]) == 0
    assert file_sha256(out) == digest
    assert main(["nb101", str(tmp_path / "missing.tfrecord"), "--data-dir", str(data_dir), "--out", "x.csv"]) == 1
    assert "not found" in capsys.readouterr().err


def test_cli_module_entrypoint(tmp_path, nb201_pth):
    data_dir = tmp_path / "d"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "harness.convert", "nb201", str(nb201_pth), "--data-dir", str(data_dir),
         "--out", "custom/nb201.csv"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    out = data_dir / "custom" / "nb201.csv"
    assert f"{file_sha256(out)}  ./custom/nb201.csv" in proc.stdout
    assert read_csv(out)[0] == list(cv.NB201_COLUMNS)


# ----------------------------------------------------------------------------- against the shipped tables
@needs_data
def test_columns_match_the_shipped_tables():
    with open(REAL / "nb201" / "nb201_ground_truth.csv", newline="") as f:
        shipped = next(csv.reader(f))
    # every column exists there, in the same order, but cifar10-valid's test accuracy: the shipped
    # table has it from NB201 v1.0 under another name (the benchmark reads either)
    ours = [c if c != "c10valid_test_200" else "nb201v10_c10valid_test_200" for c in cv.NB201_COLUMNS]
    assert set(ours) <= set(shipped)
    plain = [c for c in ours if c != "nb201v10_c10valid_test_200"]
    assert [c for c in shipped if c in plain] == plain
    with open(REAL / "nb101" / "naslib_nb101_500.csv", newline="") as f:
        shipped101 = next(csv.reader(f))
    assert {"matrix_rowmajor", "ops", "val_accuracy"} <= set(shipped101) & set(cv.NB101_COLUMNS)


@needs_data
def test_naslib_tuple_and_12_epoch_reading_on_the_shipped_table():
    with open(REAL / "nb201" / "nb201_ground_truth.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert all(cv.naslib_tuple(r["arch_str"]) == r["naslib_tuple"] for r in rows)
    # cifar10_val_12ep is a mean of 2 runs on the 25k valid split (a 0.002 grid, not 0.004) and
    # cifar10_test_12ep one run on the 10k test set (a 0.01 grid): cifar10-valid/x-valid and
    # cifar10/ori-test at hp=12, as the converter reads them
    def on_grid(col, step):
        return all(abs(float(r[col]) / step - round(float(r[col]) / step)) < 1e-3 for r in rows)

    assert on_grid("cifar10_val_12ep", 0.002) and not on_grid("cifar10_val_12ep", 0.004)
    assert on_grid("cifar10_test_12ep", 0.01)
