"""Minibatches for the proxies: real images (normalised as NB201 does) or Gaussian noise.

Three datasets are offered, each read from an ``.npz`` of uint8 NCHW images under the data
directory (see :mod:`spaces.datafiles` for where that is):

``cifar10``
    ``images/cifar10_real_subset.npz`` — real CIFAR-10 images, 10 classes, 3×32×32;
    splits ``train`` (2,048 images) and ``test`` (846).
``cifar100``
    ``images/cifar100_real_subset.npz`` — real CIFAR-100 images, 100 fine-label classes,
    3×32×32; splits ``train`` (486) and ``test`` (916).
``ImageNet16-120``
    ``images/imagenet16_120_from_samples.npz`` — a STAND-IN, not the official ImageNet16-120
    pixels: one real ImageNet photo per class of the 120, box-downsampled to 3×16×16 in three
    views (full, flip, centre crop), 360 images.  It has no train/test split: ``split="train"``
    and ``split="all"`` both mean all 360 images.

Normalisation uses NB201's per-channel constants (``x / 255``, then ``(x - mean) / std``), in
float32 torch operations on the CPU, so a batch is bit-for-bit the same on every machine before
it is moved to ``device``.  Randomness is explicit: image choice uses
``np.random.default_rng(seed)``, noise a ``torch.Generator`` seeded with ``seed``; the global
RNGs are never touched.

``resolution`` (``batch.resolution``) gives the batch another image side: real images are
resized bilinearly (``align_corners=False``, after normalisation) to ``resolution`` x
``resolution``, and noise is drawn at that size.  The default (None) keeps the dataset's own
size (32 for CIFAR, 16 for the ImageNet16-120 stand-in).  The released WRCor MobileNetV2 search
feeds 320x320 crops (its networks then resize them to their own resolution), so its input
Jacobians have 3x320x320 entries per image: ``resolution=320`` gives that geometry.
"""
from __future__ import annotations

import functools
import operator
import os
import zipfile
import zlib
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import torch

from spaces.vocabulary import DataFileError, UnknownNameError
from spaces.datafiles import data_file

__all__ = [
    "DatasetInfo",
    "DATASETS",
    "KINDS",
    "SAMPLINGS",
    "num_classes",
    "image_shape",
    "splits",
    "num_images",
    "normalize",
    "batch",
]


@dataclass(frozen=True)
class DatasetInfo:
    """Where a dataset's images live and how they are normalised (mean/std already /255)."""

    name: str
    file: str
    num_classes: int
    image_shape: tuple[int, int, int]
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    splits: Mapping[str, tuple[str, str]]  # split -> (images array, labels array) in the npz
    note: str = ""


def _div255(values: tuple[float, float, float]) -> tuple[float, float, float]:
    """The 0..255 constants as float32 tensors divided by 255 in float32, as the golden reference's
    batch was made (dividing in float64 first differs in the last bit, and the most ill-conditioned
    golden value, rcor of arch 7581, moves by 1.4e-6 relative)."""
    return tuple((torch.tensor(values, dtype=torch.float32) / 255).tolist())  # type: ignore[return-value]


def _cifar(name: str, num_classes: int, mean: tuple, std: tuple, note: str) -> DatasetInfo:
    """A CIFAR dataset: real images (a subset), its train/test arrays, per-channel statistics in 0..255."""
    return DatasetInfo(name=name, file=f"images/{name}_real_subset.npz", num_classes=num_classes,
                       image_shape=(3, 32, 32), mean=_div255(mean), std=_div255(std),
                       splits={"train": ("x_train", "y_train"), "test": ("x_test", "y_test")}, note=note)


DATASETS: dict[str, DatasetInfo] = {
    "cifar10": _cifar("cifar10", 10, (125.3, 123.0, 113.9), (63.0, 62.1, 66.7), "real CIFAR-10 images (a subset)"),
    "cifar100": _cifar("cifar100", 100, (129.3, 124.1, 112.4), (68.2, 65.4, 70.4),
                       "real CIFAR-100 images (a subset), fine labels"),
    "ImageNet16-120": DatasetInfo(
        name="ImageNet16-120",
        file="images/imagenet16_120_from_samples.npz",
        num_classes=120,
        image_shape=(3, 16, 16),
        mean=_div255((122.68, 116.66, 104.01)),
        std=_div255((63.22, 61.26, 65.09)),
        splits={"train": ("x", "y"), "all": ("x", "y")},
        note="STAND-IN: one ImageNet sample photo per class, 3 views, box-downsampled to 16x16",
    ),
}

KINDS = ("real", "noise")
SAMPLINGS = ("random", "first")


def _info(dataset: str) -> DatasetInfo:
    try:
        return DATASETS[dataset]
    except (KeyError, TypeError):
        raise UnknownNameError(f"unknown dataset {dataset!r}; valid datasets: {sorted(DATASETS)}") from None


def _split_arrays(info: DatasetInfo, split: str) -> tuple[str, str]:
    try:
        return info.splits[split]
    except (KeyError, TypeError):
        raise UnknownNameError(
            f"unknown split {split!r} for dataset {info.name!r}; valid splits: {list(info.splits)}"
        ) from None


def num_classes(dataset: str) -> int:
    """Number of classes of ``dataset`` (10, 100 or 120)."""
    return _info(dataset).num_classes


def image_shape(dataset: str) -> tuple[int, int, int]:
    """``(channels, height, width)`` of one image of ``dataset``."""
    return _info(dataset).image_shape


def splits(dataset: str) -> list[str]:
    """The splits ``batch`` accepts for ``dataset``."""
    return list(_info(dataset).splits)


@functools.lru_cache(maxsize=8)
def _load_npz(path: str) -> dict[str, np.ndarray]:
    """Every array of an ``.npz``, loaded once per process (read-only; no pickles)."""
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        # a truncated or damaged .npz is a zip whose directory or members do not read back
        raise DataFileError(
            f"image file {path!r} is corrupt or truncated: it does not read as an .npz archive "
            f"({type(exc).__name__}: {exc}). Restore it from the release (`harness data verify` checks every "
            f"data file against SHA256SUMS; docs/data.md says where each comes from)") from exc
    except MemoryError as exc:  # a garbled array header can claim an absurd size
        raise DataFileError(f"image file {path!r} is corrupt: an array header claims more memory than there is "
                            f"({exc}). Restore it from the release") from exc
    for a in arrays.values():
        a.flags.writeable = False
    return arrays


def _arrays(info: DatasetInfo, split: str, data_dir) -> tuple[np.ndarray, np.ndarray]:
    x_key, y_key = _split_arrays(info, split)
    path = data_file(info.file, data_dir)
    arrays = _load_npz(str(path))
    missing = [k for k in (x_key, y_key) if k not in arrays]
    if missing:
        raise DataFileError(f"{str(path)!r} lacks array(s) {missing}; it has {sorted(arrays)}")
    x, y = arrays[x_key], arrays[y_key]
    if x.dtype != np.uint8 or x.ndim != 4 or tuple(x.shape[1:]) != info.image_shape or len(y) != len(x):
        raise DataFileError(
            f"{str(path)!r}: expected uint8 images of shape (N, {', '.join(map(str, info.image_shape))}) "
            f"and N labels, got {x.dtype} {x.shape} and {len(y)} labels"
        )
    return x, y


def num_images(dataset: str, split: str = "train", *, data_dir: str | os.PathLike[str] | None = None) -> int:
    """How many real images ``batch(dataset, n, split=split)`` can draw from."""
    info = _info(dataset)
    return len(_arrays(info, split, data_dir)[0])


def normalize(u8: np.ndarray, dataset: str) -> torch.Tensor:
    """uint8 NCHW images -> float32 NCHW tensor, exactly ``(x/255 - mean) / std`` in float32 torch ops.

    The golden reference scores depend on this bit for bit: do not reorder the operations.
    """
    info = _info(dataset)
    mean = torch.tensor(info.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(info.std, dtype=torch.float32).view(1, 3, 1, 1)
    arr = np.ascontiguousarray(u8)
    if arr.dtype != np.uint8:
        raise TypeError(f"normalize expects uint8 images, got {arr.dtype}")
    if not arr.flags.writeable:  # torch.from_numpy warns on read-only memory
        arr = arr.copy()
    x = torch.from_numpy(arr).float() / 255
    x = (x - mean) / std
    return x


def _check_n(n) -> int:
    if isinstance(n, bool):
        raise ValueError(f"batch size n must be a positive integer, got {n!r}")
    try:
        n = operator.index(n)
    except TypeError:
        raise ValueError(f"batch size n must be a positive integer, got {n!r}") from None
    if n < 1:
        raise ValueError(f"batch size n must be a positive integer, got {n}")
    return n


def _check_resolution(resolution) -> int:
    try:
        r = None if isinstance(resolution, bool) else operator.index(resolution)
    except TypeError:
        r = None
    if r is None or r < 1:
        raise ValueError(f"resolution must be a positive integer (the images' side in pixels) or None, "
                         f"got {resolution!r}")
    return r


def batch(
    dataset: str,
    n: int,
    *,
    seed: int | None,
    kind: str = "real",
    split: str = "train",
    sampling: str = "random",
    data_dir: str | os.PathLike[str] | None = None,
    device: torch.device | str | None = None,
    resolution: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A minibatch ``(inputs, labels)``: float32 ``(n, C, H, W)`` and int64 ``(n,)``.

    ``kind="real"``: ``n`` distinct images of ``split``, normalised with the dataset's NB201
    constants.  ``sampling="random"`` draws them with ``np.random.default_rng(seed)`` (in drawn
    order); ``sampling="first"`` takes the first ``n`` in file order and ignores ``seed`` (the
    golden-reference protocol).

    ``kind="noise"``: standard Gaussian inputs of the dataset's image shape and labels uniform over
    its classes, both from one ``torch.Generator`` seeded with ``seed`` (``split`` and ``sampling``
    are validated but otherwise unused; no data file is read).

    ``resolution``: the images' side (None: the dataset's own); real images are resized
    bilinearly to it after normalisation, noise is drawn at it (see the module docstring).

    Tensors are built on the CPU and then moved to ``device`` (if given).
    """
    info = _info(dataset)
    _split_arrays(info, split)
    if kind not in KINDS:
        raise UnknownNameError(f"unknown batch kind {kind!r}; valid kinds: {list(KINDS)}")
    if sampling not in SAMPLINGS:
        raise UnknownNameError(f"unknown sampling {sampling!r}; valid samplings: {list(SAMPLINGS)}")
    n = _check_n(n)
    side = None if resolution is None else _check_resolution(resolution)
    shape = info.image_shape if side is None else (info.image_shape[0], side, side)
    needs_seed = kind == "noise" or sampling == "random"
    if needs_seed and seed is None:
        raise ValueError(f"seed is required for kind={kind!r}, sampling={sampling!r}")

    if kind == "noise":
        g = torch.Generator(device="cpu")
        g.manual_seed(int(seed))
        x = torch.randn((n, *shape), generator=g, dtype=torch.float32)
        y = torch.randint(0, info.num_classes, (n,), generator=g, dtype=torch.int64)
    else:
        images, labels = _arrays(info, split, data_dir)
        available = len(images)
        if n > available:
            raise ValueError(
                f"asked for {n} images but {info.name!r} split {split!r} has only {available}"
            )
        if sampling == "first":
            idx = np.arange(n)
        else:
            rng = np.random.default_rng(seed)
            idx = rng.choice(available, size=n, replace=False)
        x = normalize(images[idx], info.name)
        if tuple(x.shape[1:]) != shape:
            x = torch.nn.functional.interpolate(x, size=shape[1:], mode="bilinear", align_corners=False)
        y = torch.from_numpy(np.asarray(labels[idx], dtype=np.int64).copy())

    if device is not None:
        x, y = x.to(device), y.to(device)
    return x, y
