"""Minibatches of real images and noise."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from harness import data
from harness.data import DATASETS, batch, image_shape, normalize, num_classes, num_images
from spaces.base import DataFileError, UnknownNameError


from conftest import REAL, needs_data  # noqa: E402

SHAPES = {"cifar10": (3, 32, 32), "cifar100": (3, 32, 32), "ImageNet16-120": (3, 16, 16)}
CLASSES = {"cifar10": 10, "cifar100": 100, "ImageNet16-120": 120}


def test_metadata():
    assert set(DATASETS) == set(SHAPES)
    for name in SHAPES:
        assert image_shape(name) == SHAPES[name]
        assert num_classes(name) == CLASSES[name]
    assert DATASETS["cifar10"].mean == pytest.approx((125.3 / 255, 123.0 / 255, 113.9 / 255))
    assert DATASETS["ImageNet16-120"].std == pytest.approx((63.22 / 255, 61.26 / 255, 65.09 / 255))
    with pytest.raises(UnknownNameError, match="cifar10"):
        num_classes("mnist")
    with pytest.raises(UnknownNameError, match="ImageNet16-120"):
        image_shape("imagenet")


@needs_data
@pytest.mark.parametrize("name", list(SHAPES))
def test_shapes_and_dtypes(name):
    x, y = batch(name, 16, seed=0)
    assert x.shape == (16, *SHAPES[name]) and x.dtype == torch.float32
    assert y.shape == (16,) and y.dtype == torch.int64
    assert int(y.min()) >= 0 and int(y.max()) < CLASSES[name]
    assert torch.isfinite(x).all()


@needs_data
def test_image_counts():
    assert num_images("cifar10") == 2048 and num_images("cifar10", "test") == 846
    assert num_images("cifar100") == 486 and num_images("cifar100", "test") == 916
    assert num_images("ImageNet16-120") == 360 and num_images("ImageNet16-120", "all") == 360


@needs_data
def test_seed_determinism():
    a = batch("cifar10", 32, seed=7)
    b = batch("cifar10", 32, seed=7)
    c = batch("cifar10", 32, seed=8)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])


@needs_data
def test_random_sampling_is_distinct_and_uses_default_rng():
    state = np.random.get_state()
    torch_state = torch.random.get_rng_state()
    x, _ = batch("ImageNet16-120", 360, seed=3, split="all")
    assert torch.equal(torch.random.get_rng_state(), torch_state)
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1])  # global RNGs untouched
    # all 360 drawn without replacement: the same multiset as the whole file
    full, _ = batch("ImageNet16-120", 360, seed=None, split="all", sampling="first")
    key = lambda t: sorted(map(bytes, t.numpy().reshape(len(t), -1)))  # noqa: E731
    assert key(x) == key(full)
    # and the drawn order is np.random.default_rng(seed).choice
    idx = np.random.default_rng(3).choice(360, size=360, replace=False)[:5]
    assert torch.equal(x[:5], full[idx])


@needs_data
def test_first_sampling_is_the_exact_formula():
    with np.load(REAL / "images/cifar10_real_subset.npz") as z:
        u8, labels = z["x_train"][:64], z["y_train"][:64]
    # the golden batch's arithmetic: float32 constants divided by 255 in float32
    mean = torch.tensor([125.3, 123.0, 113.9], dtype=torch.float32).view(1, 3, 1, 1) / 255
    std = torch.tensor([63.0, 62.1, 66.7], dtype=torch.float32).view(1, 3, 1, 1) / 255
    expected = torch.from_numpy(u8).float() / 255
    expected = (expected - mean) / std
    x, y = batch("cifar10", 64, seed=123, sampling="first")
    assert torch.equal(x, expected)
    assert torch.equal(y, torch.from_numpy(labels.astype(np.int64)))
    x2, _ = batch("cifar10", 64, seed=999, sampling="first")  # seed ignored
    assert torch.equal(x, x2)
    assert torch.equal(normalize(u8, "cifar10"), expected)


@needs_data
def test_normalised_cifar10_is_centred():
    x, _ = batch("cifar10", 2048, seed=None, sampling="first")
    m = x.mean(dim=(0, 2, 3))
    assert torch.all(m.abs() < 0.1), m
    s = x.std(dim=(0, 2, 3))
    assert torch.all((s - 1).abs() < 0.2), s


@needs_data
def test_splits():
    xt, yt = batch("cifar100", 900, seed=1, split="test")
    assert xt.shape[0] == 900 and int(yt.max()) < 100
    with pytest.raises(UnknownNameError, match="train"):
        batch("cifar10", 4, seed=0, split="valid")
    with pytest.raises(UnknownNameError, match="all"):
        batch("ImageNet16-120", 4, seed=0, split="test")


def test_noise_determinism():
    a = batch("cifar100", 8, seed=5, kind="noise")
    b = batch("cifar100", 8, seed=5, kind="noise")
    c = batch("cifar100", 8, seed=6, kind="noise")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[0], c[0])
    assert a[0].shape == (8, 3, 32, 32) and a[0].dtype == torch.float32
    assert a[1].dtype == torch.int64 and int(a[1].max()) < 100
    g = torch.Generator().manual_seed(5)
    assert torch.equal(a[0], torch.randn((8, 3, 32, 32), generator=g))
    n16 = batch("ImageNet16-120", 4000, seed=0, kind="noise")  # noise is not limited by the file
    assert n16[0].shape == (4000, 3, 16, 16) and int(n16[1].max()) < 120


def test_noise_needs_no_data(tmp_path):
    x, _ = batch("cifar10", 2, seed=0, kind="noise", data_dir=tmp_path / "missing")
    assert x.shape == (2, 3, 32, 32)


@needs_data
def test_errors():
    with pytest.raises(ValueError, match="only 2048"):
        batch("cifar10", 2049, seed=0)
    for bad in (0, -3, 2.5, True):
        with pytest.raises(ValueError):
            batch("cifar10", bad, seed=0)
    with pytest.raises(UnknownNameError, match="cifar100"):
        batch("svhn", 4, seed=0)
    with pytest.raises(UnknownNameError, match="noise"):
        batch("cifar10", 4, seed=0, kind="gaussian")
    with pytest.raises(UnknownNameError, match="first"):
        batch("cifar10", 4, seed=0, sampling="sequential")
    with pytest.raises(ValueError, match="seed"):
        batch("cifar10", 4, seed=None)
    with pytest.raises(TypeError):
        normalize(np.zeros((1, 3, 2, 2), np.float32), "cifar10")


def test_missing_image_file(tmp_path):
    with pytest.raises(DataFileError, match="cifar10_real_subset.npz"):
        batch("cifar10", 4, seed=0, data_dir=tmp_path)


@needs_data
def test_npz_loaded_once():
    data._load_npz.cache_clear()
    batch("cifar10", 4, seed=0)
    batch("cifar10", 4, seed=1, split="test")
    info = data._load_npz.cache_info()
    assert info.misses == 1 and info.hits == 1
