"""Convert the official benchmark files into the compact CSV tables the project reads.

Users who own the official files turn them into the tables that :mod:`spaces.benchmarks` reads,
with the same column names as the shipped tables (see ``../shared/data/README.md``):

========================  =================================================  ======================
converter                 official input                                     default output
========================  =================================================  ======================
:func:`convert_nb201`     ``NAS-Bench-201-v1_1-096897.pth`` (or ``v1_0``)    ``nb201/nb201_ground_truth.csv``
:func:`convert_nats`      ``NATS-tss-v1_0-3ffb9-simple/`` (``space="tss"``)  ``nb201/nb201_ground_truth.csv``
:func:`convert_nats`      ``NATS-sss-v1_0-50262-simple/`` (``space="sss"``)  ``nats/nats_sss_ground_truth.csv``
:func:`convert_nb101`     ``nasbench_only108.tfrecord``                      ``nb101/nb101_ground_truth.csv``
========================  =================================================  ======================

(``harness convert`` wraps these with the default paths and ``SHA256SUMS`` upkeep.)

Protocol of the numbers written
-------------------------------
* NB201 / NATS-TSS: accuracies in percent, the mean over all training seeds at the final epoch of
  the 200-epoch schedule (``hp="200"``), read with the official ``ArchResults.get_metrics(dataset,
  setname, iepoch=None, is_random=False)``.  ``c10valid_valid`` = ``cifar10-valid``/``x-valid``;
  ``c10_test`` = ``cifar10``/``ori-test``; for CIFAR-100 and ImageNet16-120 ``*_valid`` =
  ``x-valid``, ``*_test`` = ``x-test``, ``*_valtest`` = ``ori-test`` (both halves together).  Unlike
  the shipped table, whose CIFAR-100/ImageNet16-120 ``*_valid`` columns were derived as
  ``2*valtest - test``, the converted ones are read directly from ``x-valid``.
  ``n_seeds_200`` is the smallest number of seeds among the four training sets (in the shipped
  table every set has the same count).  ``params_mb_*`` are ``get_compute_costs(dataset)["params"]``
  (millions), ``train_time_s_c10valid_200`` is ``get_compute_costs("cifar10-valid")["T-train@total"]``
  (seconds, mean over seeds).  The 12-epoch columns (``hp="12"``) are written when the file has
  12-epoch results: ``cifar10_val_12ep`` = ``cifar10-valid``/``x-valid``, ``cifar10_test_12ep`` =
  ``cifar10``/``ori-test``, ``cifar100_*``/``imagenet_*`` = ``x-valid``/``x-test`` (this reading of
  the shipped columns is inferred from their rounding grid, see the tests).  ``naslib_tuple`` is
  derived from ``arch_str`` with the mapping the data README states.
* NATS-SSS: the same columns with the suffix ``_90`` (the size space's longest schedule,
  ``hp="90"`` = ``api.full_train_epochs``), ``arch_str`` = the channel string (``8:16:24:32:40``),
  no ``naslib_tuple``.
* NB101: CIFAR-10, 108 epochs; ``val_accuracy``/``test_accuracy`` in percent, the mean over the
  (3) seeds of the final evaluation (the last ``evaluation_data`` entry; the official API reads
  entry 2 of the 3: start, half-way, end); ``train_time_s`` the mean final ``training_time``.

A cell the official file cannot give (a dataset or an evaluation set missing for an
architecture) is written empty (read back as NaN) and counted in the summary's ``missing``.

Tables are written atomically (a temporary file in the target directory, then a rename), floats
with ``repr`` precision (they read back bit-identical), NaN as an empty cell.  Each converter
returns a summary ``{"path", "rows", "columns", "sha256", "missing", ...}``;
:func:`record_checksum` adds or updates the file's line in the data directory's ``SHA256SUMS``.

Layout (offline only: nothing in the core ``spaces`` package imports this one; ``harness
convert`` does): :mod:`spaces.convert.tables` (column layout, CSV writing, ``SHA256SUMS``),
:mod:`spaces.convert.nb201` (NB201 and NATS-Bench, through ``nas_201_api`` / ``nats_bench``,
imported lazily), :mod:`spaces.convert.nb101` (the TFRecord, without TensorFlow: its framing read
there, CRC-32C by ``google-crc32c``, the ``ModelMetrics`` protobuf by ``protobuf``; both from the
optional extra, ``pip install 'zsnas-bench[convert]'``, imported only when an NB101 file is read).

Trust: the official NB201 ``.pth`` is a pickle.  It is first read with
``torch.load(weights_only=True)`` (numpy scalars allowed); if that is refused, the converter stops
and asks for ``trust_pickle=True`` (``--trust-pickle``), which unpickles it fully.  The NATS-Bench
archives are plain pickles that ``nats_bench`` always unpickles: convert only files you got from
the benchmarks' authors.
"""
from __future__ import annotations

from .nb101 import convert_nb101, crc32c, decode_model_metrics, iter_tfrecord, masked_crc32c
from .nb201 import convert_nats, convert_nb201, naslib_tuple
from .tables import NATS_SSS_COLUMNS, NB101_COLUMNS, NB201_COLUMNS, SHORT_COLUMNS, record_checksum

__all__ = [
    "NB201_COLUMNS",
    "NATS_SSS_COLUMNS",
    "NB101_COLUMNS",
    "SHORT_COLUMNS",
    "convert_nb201",
    "convert_nats",
    "convert_nb101",
    "record_checksum",
    "naslib_tuple",
    "crc32c",
    "masked_crc32c",
    "iter_tfrecord",
    "decode_model_metrics",
]
