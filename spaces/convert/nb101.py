"""NAS-Bench-101 (``nasbench_only108.tfrecord``) -> the NB101 table, without TensorFlow.

What reads what, and why:

* the ``ModelMetrics`` protobuf of each record is parsed by ``google.protobuf`` (package
  ``protobuf``), with a message class built at run time from a descriptor written here (the field
  layout of nasbench's ``model_metrics.proto``) in a private descriptor pool: no ``protoc``, no
  generated files;
* the CRC-32C checksums of the TFRecord framing are computed by ``google_crc32c`` (package
  ``google-crc32c``, a C extension with its own pure-Python fallback);
* the TFRecord framing itself (``uint64 length | uint32 masked CRC | data | uint32 masked CRC``) is
  read here.  The ``tfrecord`` package was not adopted: its reader checks neither CRC (a corrupt
  download would be converted silently), reports a bad file without record or offset, ships only
  as an sdist built with ``distutils``, and importing it imports torch and registers TensorFlow's
  ``Example`` messages in protobuf's default pool.

``protobuf`` and ``google-crc32c`` come with the optional extra ``convert``
(``pip install 'zsnas-bench[convert]'``); they are imported only when an NB101 file is read, and
without them :func:`convert_nb101` raises a DataFileError that names the extra.
"""
from __future__ import annotations

import base64
import binascii
import functools
import json
import math
import os
import struct
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from ..base import DataFileError
from .tables import CONVERT_EXTRA, NB101_COLUMNS, _existing, _require, _write_csv_atomic

__all__ = ["convert_nb101", "iter_tfrecord", "decode_model_metrics", "crc32c", "masked_crc32c"]

_PURPOSE = "reading the NAS-Bench-101 TFRecord"


def _crc_value() -> Callable[[bytes], int]:
    """``google_crc32c.value``, or the DataFileError naming the ``convert`` extra."""
    return _require("google_crc32c", "google-crc32c", _PURPOSE, install=CONVERT_EXTRA).value


def _require_extra() -> None:
    """Raise the DataFileError naming the ``convert`` extra unless its packages import."""
    _crc_value()
    _require("google.protobuf", "protobuf", _PURPOSE, install=CONVERT_EXTRA)


# --------------------------------------------------------------------------- TFRecord + CRC-32C
_MASK_DELTA = 0xA282EAD8


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli) of ``data`` (computed by ``google_crc32c``).

    >>> hex(crc32c(b"123456789"))
    '0xe3069283'
    """
    return int(_crc_value()(bytes(data)))


def _mask(crc: int) -> int:
    return ((((crc >> 15) | (crc << 17)) & 0xFFFFFFFF) + _MASK_DELTA) & 0xFFFFFFFF


def masked_crc32c(data: bytes) -> int:
    """The masked CRC-32C that TFRecord files store after the length and after the data."""
    return _mask(crc32c(data))


def iter_tfrecord(path: str | os.PathLike[str], *, verify_crc: bool = True) -> Iterator[bytes]:
    """The records of a TFRecord file, without TensorFlow.

    Each record is ``uint64 length | uint32 masked_crc32c(length) | data | uint32
    masked_crc32c(data)`` (little-endian).  The length's CRC is always checked (a wrong one means
    the file is not a TFRecord or is corrupt); the data's CRC is checked, before the record is
    yielded, when ``verify_crc`` is true.  Raises DataFileError, naming the file, the record and its
    byte offset, on a truncated file or a CRC mismatch.
    """
    path = Path(path)
    value = _crc_value()
    with open(path, "rb") as f:
        offset = n = 0
        while True:
            header = f.read(12)
            if not header:
                break
            if len(header) < 12:
                raise DataFileError(
                    f"{str(path)!r}: truncated TFRecord header of record {n} at byte offset {offset}")
            length, length_crc = struct.unpack("<QI", header)
            if _mask(value(header[:8])) != length_crc:
                raise DataFileError(
                    f"{str(path)!r} is not a TFRecord file (or is corrupt): the length CRC of record {n} "
                    f"at byte offset {offset} does not match"
                )
            data = f.read(length)
            footer = f.read(4)
            if len(data) < length or len(footer) < 4:
                raise DataFileError(f"{str(path)!r}: truncated TFRecord record {n} at byte offset {offset}")
            if verify_crc and _mask(value(data)) != struct.unpack("<I", footer)[0]:
                raise DataFileError(
                    f"{str(path)!r}: the data CRC of record {n} at byte offset {offset} does not match "
                    "(corrupt or truncated download?); re-download the file"
                )
            yield data
            offset += 16 + length
            n += 1


# --------------------------------------------------------------------------- protobuf (ModelMetrics)
#: nasbench/lib/model_metrics.proto, EvaluationData: field number -> name (doubles, then a string)
_EVAL_DOUBLES = {1: "current_epoch", 2: "training_time", 3: "train_accuracy",
                 4: "validation_accuracy", 5: "test_accuracy"}


@functools.lru_cache(maxsize=None)
def _model_metrics_class() -> type:
    """nasbench's ``ModelMetrics`` message class, built from a descriptor (no generated code).

    ``checkpoint_path`` is declared ``bytes`` (the same wire format as ``string``) so that a path
    that is not valid UTF-8 is decoded leniently here instead of refused by the parser.
    """
    _require("google.protobuf", "protobuf", _PURPOSE, install=CONVERT_EXTRA)
    from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

    field = descriptor_pb2.FieldDescriptorProto
    fdp = descriptor_pb2.FileDescriptorProto(name="zsnas_nasbench_model_metrics.proto",
                                             package="zsnas_nasbench", syntax="proto2")
    ev = fdp.message_type.add(name="EvaluationData")
    for number, name in _EVAL_DOUBLES.items():
        ev.field.add(name=name, number=number, type=field.TYPE_DOUBLE, label=field.LABEL_OPTIONAL)
    ev.field.add(name="checkpoint_path", number=6, type=field.TYPE_BYTES, label=field.LABEL_OPTIONAL)
    mm = fdp.message_type.add(name="ModelMetrics")
    mm.field.add(name="evaluation_data", number=1, type=field.TYPE_MESSAGE, label=field.LABEL_REPEATED,
                 type_name=".zsnas_nasbench.EvaluationData")
    mm.field.add(name="trainable_parameters", number=2, type=field.TYPE_INT32, label=field.LABEL_OPTIONAL)
    mm.field.add(name="total_time", number=3, type=field.TYPE_DOUBLE, label=field.LABEL_OPTIONAL)
    pool = descriptor_pool.DescriptorPool()  # private: no clash with a nasbench module a user imported
    pool.Add(fdp)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("zsnas_nasbench.ModelMetrics"))


def _optional(msg: Any, name: str) -> Any:
    return getattr(msg, name) if msg.HasField(name) else None


def decode_model_metrics(blob: bytes) -> dict[str, Any]:
    """Decode nasbench's serialized ``ModelMetrics`` protobuf (with ``google.protobuf``).

    ``ModelMetrics { repeated EvaluationData evaluation_data = 1; optional int32
    trainable_parameters = 2; optional double total_time = 3; }`` and ``EvaluationData {
    optional double current_epoch = 1; training_time = 2; train_accuracy = 3;
    validation_accuracy = 4; test_accuracy = 5; optional string checkpoint_path = 6; }``
    (nasbench/lib/model_metrics.proto).  Unknown fields are skipped; absent optionals are None.
    Raises ValueError on bytes that are not a serialized message.
    """
    from google.protobuf.message import DecodeError

    msg = _model_metrics_class()()
    try:
        msg.ParseFromString(bytes(blob))
    except DecodeError as exc:
        raise ValueError(f"not a serialized ModelMetrics message ({exc})") from None
    evaluation_data = []
    for ev in msg.evaluation_data:
        entry = {name: _optional(ev, name) for name in _EVAL_DOUBLES.values()}
        path = _optional(ev, "checkpoint_path")
        entry["checkpoint_path"] = None if path is None else path.decode("utf-8", errors="replace")
        evaluation_data.append(entry)
    return {"evaluation_data": evaluation_data,
            "trainable_parameters": _optional(msg, "trainable_parameters"),
            "total_time": _optional(msg, "total_time")}


# --------------------------------------------------------------------------- NAS-Bench-101
def _mean(xs: Sequence[float]) -> float:
    vals = [x for x in xs if x is not None]
    return math.fsum(vals) / len(vals) if vals else math.nan


def convert_nb101(tfrecord_path: str | os.PathLike[str], out_csv: str | os.PathLike[str], *,
                  epochs: int = 108, verify_crc: bool = True) -> dict[str, Any]:
    """Convert ``nasbench_only108.tfrecord`` into the NB101 ground-truth table, without TensorFlow.

    Each record is the JSON list ``[module_hash, epochs, raw_adjacency, raw_operations,
    raw_metrics]`` (as read by nasbench's ``api.py``); only records with ``epochs == epochs``
    (108) are used.  One row per module hash, in order of first appearance, with the columns of
    :data:`NB101_COLUMNS`: ``matrix_rowmajor`` is the ``V*V`` adjacency exactly as stored (49
    characters only for 7-vertex cells; smaller cells are NOT padded, padding would change the
    graph) and ``num_vertices`` its ``V``; ``ops`` the ``;``-joined operations
    (``input;conv3x3-bn-relu;...;output``); ``val_accuracy``/``test_accuracy`` the mean over the
    seeds (``n_seeds``) of the final evaluation, in percent; ``train_time_s`` the mean final
    training time.  CRCs are verified unless ``verify_crc=False`` (see :func:`iter_tfrecord`).
    Needs the ``convert`` extra (``protobuf``, ``google-crc32c``).
    """
    path = _existing(tfrecord_path, "NAS-Bench-101 TFRecord file", want_dir=False)
    _require_extra()
    modules: dict[str, dict[str, Any]] = {}
    n_records = n_skipped = 0
    for n, data in enumerate(iter_tfrecord(path, verify_crc=verify_crc)):
        n_records += 1
        try:
            record = json.loads(data.decode("utf-8"))
            module_hash, rec_epochs, raw_adjacency, raw_operations, raw_metrics = record
        except (UnicodeDecodeError, json.JSONDecodeError, ValueError, TypeError) as exc:
            raise DataFileError(
                f"{str(path)!r}: record {n} is not a NAS-Bench-101 record (a JSON list [module_hash, "
                f"epochs, adjacency, operations, metrics]): {exc}"
            ) from None
        if int(rec_epochs) != int(epochs):
            n_skipped += 1
            continue
        try:
            metrics = decode_model_metrics(base64.b64decode(raw_metrics, validate=True))
            final = metrics["evaluation_data"][-1]
        except (ValueError, binascii.Error, IndexError, TypeError) as exc:
            raise DataFileError(f"{str(path)!r}: record {n}: undecodable ModelMetrics: {exc}") from None
        entry = modules.get(module_hash)
        if entry is None:
            adjacency, ops = str(raw_adjacency), str(raw_operations).split(",")
            dim = math.isqrt(len(adjacency))
            if dim * dim != len(adjacency) or set(adjacency) - {"0", "1"} or len(ops) != dim:
                raise DataFileError(
                    f"{str(path)!r}: record {n} ({module_hash}): adjacency {adjacency!r} is not a "
                    f"square 0/1 matrix matching its {len(ops)} operations"
                )
            entry = modules[module_hash] = {
                "module_hash": module_hash, "matrix_rowmajor": adjacency, "num_vertices": dim,
                "ops": ";".join(ops), "trainable_parameters": metrics["trainable_parameters"],
                "_val": [], "_test": [], "_time": [], "_raw": (raw_adjacency, raw_operations),
            }
        elif entry["_raw"] != (raw_adjacency, raw_operations):
            raise DataFileError(f"{str(path)!r}: record {n}: module {module_hash} appears with two different graphs")
        entry["_val"].append(final["validation_accuracy"])
        entry["_test"].append(final["test_accuracy"])
        entry["_time"].append(final["training_time"])
    if not modules:
        raise DataFileError(
            f"{str(path)!r} holds {n_records} records but none with epochs == {epochs}: "
            "is it nasbench_only108.tfrecord (or nasbench_full.tfrecord)?"
        )

    def rows() -> Iterator[dict[str, Any]]:
        for entry in modules.values():
            val, test = _mean(entry["_val"]), _mean(entry["_test"])
            yield {
                **{k: v for k, v in entry.items() if not k.startswith("_")},
                "val_accuracy": 100.0 * val,
                "test_accuracy": 100.0 * test,
                "n_seeds": len(entry["_val"]),
                "train_time_s": _mean(entry["_time"]),
            }

    summary = _write_csv_atomic(out_csv, list(NB101_COLUMNS), rows())
    summary.update(source=str(path), epochs=int(epochs), records=n_records, skipped_records=n_skipped,
                   crc_verified=bool(verify_crc))
    return summary
