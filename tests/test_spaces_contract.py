"""The contract every registered space honours (driven by the registry), and NATS-Bench specifics."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import spaces
from conftest import needs_data
from spaces.base import DataFileError, InvalidArchitectureError, MissingDataFileError, Space
from spaces.nats import CHANNELS, SSS_CELL, NATSSizeSpace, SizeArch, SizeNetwork

#: reduced networks (same code paths, a fraction of the cost) for building 200 samples per space
SMALL = {"nb201": dict(channels=4, cells_per_stage=1), "nats_tss": dict(channels=4, cells_per_stage=1),
         "nats_sss": {}, "nb101": dict(stem_channels=8, cells_per_stack=1), "darts": dict(init_channels=4, layers=5),
         "mobilenetv2": dict(resize=False)}  # networks at the input size (the contract uses small inputs)


def test_every_registered_space_is_covered():
    assert spaces.list_spaces() == sorted(SMALL)


@pytest.fixture(scope="module", params=sorted(SMALL))
def space(request):
    return spaces.get_space(request.param, **SMALL[request.param])


def test_space_satisfies_the_protocol(space):
    assert isinstance(space, Space)
    size = getattr(space, "size", None) or len(space)
    assert size >= 15_625


def test_fixed_seed_same_samples_and_other_seed_other_samples(space):
    a = [space.to_str(space.sample(np.random.default_rng(11))) for _ in range(5)]
    rng1, rng2, rng3 = np.random.default_rng(11), np.random.default_rng(11), np.random.default_rng(12)
    s1 = [space.to_str(space.sample(rng1)) for _ in range(20)]
    s2 = [space.to_str(space.sample(rng2)) for _ in range(20)]
    s3 = [space.to_str(space.sample(rng3)) for _ in range(20)]
    assert s1 == s2 and s1 != s3
    assert len(set(a)) == 1  # the same fresh generator gives the same first sample


def test_strings_round_trip_and_mutate_stays_in_the_space(space):
    rng = np.random.default_rng(5)
    for _ in range(50):
        arch = space.sample(rng)
        assert space.parse(space.to_str(arch)) == arch
        child = space.mutate(arch, rng)
        assert space.to_str(child) != space.to_str(arch)
        assert space.parse(space.to_str(child)) == child  # a valid member: parses back


def test_build_200_random_samples_with_the_right_output_shape(space):
    rng = np.random.default_rng(0)
    x = torch.randn(2, 3, 16, 16)
    failures = []
    for i in range(200):
        arch = space.sample(rng)
        try:
            with torch.no_grad():
                out = space.build(arch, 10 if i % 2 else 100, seed=i).eval()(x)
            assert out.shape == (2, 10 if i % 2 else 100)
            assert torch.isfinite(out).all()
        except Exception as err:  # collect, so the message lists every failure
            failures.append(f"{space.to_str(arch)}: {type(err).__name__}: {err}")
    assert not failures, failures[:5]


def test_garbage_is_a_typed_error(space):
    for bad in ("not an architecture", 42, None):
        with pytest.raises(InvalidArchitectureError):
            space.parse(bad)


# ------------------------------------------------------------------------------------------------
# NATS-Bench


@needs_data
def test_nats_tss_is_nb201_under_another_name():
    tss, nb201 = spaces.get_space("nats_tss"), spaces.get_space("nb201")
    assert tss.name == "nats_tss"
    assert list(tss.enumerate())[:50] == list(nb201.enumerate())[:50]
    arch = nb201.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|")
    assert tss.index(arch) == nb201.index(arch)
    assert tss.benchmark.lookup(arch, "cifar10", "test") == nb201.benchmark.lookup(arch, "cifar10", "test")
    a, b = tss.build(arch, 10, seed=3), nb201.build(arch, 10, seed=3)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("text, fragment", [
    ("8:16:24:32", "5 widths"), ("8:16:24:32:12", "not allowed"), ("8:16:x:32:40", "integers joined by ':'"),
    ("8:16:24:32:40:48", "5 widths"),
])
def test_sss_strings_are_validated(text, fragment):
    with pytest.raises(InvalidArchitectureError, match=fragment):
        SizeArch.from_str(text)


def test_sss_space_size_order_and_network():
    space = NATSSizeSpace()
    order = list(space.product_order())
    assert len(space) == len(order) == len(set(order)) == 8 ** 5
    assert order[0].to_str() == "8:8:8:8:8" and order[-1].to_str() == "64:64:64:64:64"
    net = space.build("8:16:24:32:40", 10, seed=0)
    assert isinstance(net, SizeNetwork)
    assert net.stem[0].out_channels == 8 and net.classifier.in_features == 40
    assert [type(c).__name__ for c in net.cells] == ["InferCell", "ReductionCell", "InferCell", "ReductionCell",
                                                     "InferCell"]
    # a cell whose input width differs: conv edges map 16 -> 24, the skip edge is a 1x1 conv + BN
    cell = net.cells[2]
    assert cell.layers[0].op[1].in_channels == 16 and cell.layers[0].op[1].out_channels == 24
    assert type(cell.layers[3]).__name__ == "FactorizedReduce"
    assert space.build("64:64:64:64:64", 10).cells[0].layers[3].__class__ is torch.nn.Identity
    assert SSS_CELL.ops == ("nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3",
                            "nor_conv_3x3")
    out = net(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    points = space.response_modules(net, "official")
    assert {p.layer for p in points} == set(range(6))
    assert len(space.response_modules(net, "paper")) < len(points)


def test_sss_mutation_changes_one_width():
    space, rng = NATSSizeSpace(), np.random.default_rng(1)
    a = space.parse("8:16:24:32:40")
    for _ in range(20):
        b = space.mutate(a, rng)
        assert sum(x != y for x, y in zip(a.channels, b.channels)) == 1
        assert all(c in CHANNELS for c in b.channels)


def test_sss_benchmark_missing_says_how_to_convert(tmp_path):
    space = NATSSizeSpace(data_dir=tmp_path)
    with pytest.raises(MissingDataFileError, match="harness.convert nats-sss"):
        space.benchmark.lookup("8:8:8:8:8", "cifar10", "test")
    # without a table, enumerate falls back to the product order
    assert next(iter(space.enumerate())).to_str() == "8:8:8:8:8"


def test_sss_benchmark_reads_a_converted_table(tmp_path):
    cols = ["index", "arch_str", "c10valid_valid_90", "c10_test_90", "c100_valid_90", "c100_test_90",
            "in16_valid_90", "in16_test_90"]
    (tmp_path / "nats").mkdir()
    rows = [[0, "64:64:64:64:64", 90.5, 93.25, 70, 71, 44, 45], [1, "8:8:8:8:8", 80, 81.5, 50, 51, 30, 31]]
    (tmp_path / "nats" / "nats_sss_ground_truth.csv").write_text(
        "\n".join([",".join(cols)] + [",".join(map(str, r)) for r in rows]) + "\n")
    space = NATSSizeSpace(data_dir=tmp_path)
    assert [a.to_str() for a in space.enumerate()] == ["64:64:64:64:64", "8:8:8:8:8"]
    assert space.benchmark.lookup("8:8:8:8:8", "cifar10", "test") == 81.5
    assert space.index("8:8:8:8:8") == 1
    assert "90 epochs" in space.benchmark.protocol("cifar10", "test")


def test_sss_enumerate_does_not_hide_a_broken_table(tmp_path):
    (tmp_path / "nats").mkdir()
    (tmp_path / "nats" / "nats_sss_ground_truth.csv").write_text("index,arch_str\n0,8:8:8:8:8\n")
    with pytest.raises(DataFileError, match="lacks column"):
        list(NATSSizeSpace(data_dir=tmp_path).enumerate())
