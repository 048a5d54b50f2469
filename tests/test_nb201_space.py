"""The NAS-Bench-201 space: architecture values, enumeration order, sampling, networks, probes."""
from __future__ import annotations

import csv
import json
import os
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import spaces
from conftest import GOLDEN, needs_data
from spaces import InvalidArchitectureError, NB201Arch
from spaces.nb201 import OPS, ReLUConvBN, load_state_by_position

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"
MIXED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
MIXED_OPS = ("nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3", "skip_connect", "nor_conv_3x3", "none")

GOLDEN_JSON = os.path.join(GOLDEN, "nb201_reference_scores.json")
GOLDEN_NPZ = os.path.join(GOLDEN, "nb201_reference_states.npz")
needs_golden = pytest.mark.skipif(not (os.path.exists(GOLDEN_JSON) and os.path.exists(GOLDEN_NPZ)),
                                  reason="golden reference files (../shared/golden) not found")


@pytest.fixture(scope="module")
def space():
    return spaces.get_space("nb201")


# ------------------------------------------------------------------------------------------------
# values: strings and parsing


def test_product_order_round_trips_every_cell(space):
    archs = list(space.product_order())
    assert len(archs) == 15_625 == len(space)
    assert len(set(archs)) == 15_625
    for arch in archs:
        text = arch.to_str()
        back = NB201Arch.from_str(text)
        assert back == arch and hash(back) == hash(arch)
        assert back.to_str() == text
        assert str(arch) == text
        assert space.to_str(arch) == text
    # lexicographic in OPS order: first all-none, last all-avg_pool
    assert archs[0].ops == ("none",) * 6
    assert archs[-1].ops == ("avg_pool_3x3",) * 6
    assert archs[1].ops == ("none",) * 5 + ("skip_connect",)


def test_to_str_format():
    arch = NB201Arch(MIXED_OPS)
    assert arch.to_str() == MIXED
    assert list(arch.edges()) == [(1, 0, "nor_conv_3x3"), (2, 0, "nor_conv_1x1"), (2, 1, "avg_pool_3x3"),
                                  (3, 0, "skip_connect"), (3, 1, "nor_conv_3x3"), (3, 2, "none")]


def test_arch_is_frozen_and_hashable():
    arch = NB201Arch(list(MIXED_OPS))  # a list is frozen into a tuple
    assert isinstance(arch.ops, tuple)
    with pytest.raises(Exception):
        arch.ops = ("none",) * 6  # type: ignore[misc]
    assert {arch: 1}[NB201Arch(MIXED_OPS)] == 1


def test_parse_accepts_string_value_and_sequence(space):
    arch = NB201Arch(MIXED_OPS)
    assert space.parse(MIXED) == arch
    assert space.parse(arch) is arch
    assert space.parse(MIXED_OPS) == arch
    assert space.parse(list(MIXED_OPS)) == arch
    assert space.parse("  " + MIXED + "\n") == arch  # surrounding whitespace is tolerated


@pytest.mark.parametrize("bad", [42, None, 3.5, {"ops": MIXED_OPS}, (1, 2, 3, 4, 5, 6)])
def test_parse_rejects_other_types(space, bad):
    with pytest.raises(InvalidArchitectureError, match="cannot read an NB201 architecture"):
        space.parse(bad)


@pytest.mark.parametrize("ops, pattern", [
    (("none",) * 5, r"6 edges, got 5"),
    (("none",) * 7, r"6 edges, got 7"),
    (("none",) * 5 + ("conv_5x5",), r"unknown NB201 operation.*conv_5x5"),
])
def test_value_rejects_bad_ops(space, ops, pattern):
    with pytest.raises(InvalidArchitectureError, match=pattern):
        NB201Arch(ops)
    with pytest.raises(InvalidArchitectureError, match=pattern):
        space.parse(ops)


MALFORMED = [
    # wrong node count
    ("|none~0|+|none~0|none~1|", [r"3 '\+'-separated nodes", "got 2"]),
    (ALL_NONE + "+|none~0|", [r"3 '\+'-separated nodes", "got 4"]),
    ("", [r"3 '\+'-separated nodes", "got 1"]),
    # missing pipes
    ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", ["node 1", "enclosed in '|'"]),
    ("|none~0|+|none~0|none~1+|none~0|none~1|none~2|", ["node 2", "enclosed in '|'"]),
    # wrong edge count for a node
    ("|none~0|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", ["node 1 must have 1 incoming", "got 2"]),
    ("|none~0|+|none~0|+|none~0|none~1|none~2|", ["node 2 must have 2 incoming", "got 1"]),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|", ["node 3 must have 3 incoming", "got 2"]),
    # bad op~src syntax
    ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", ["'none0'", "op~source"]),
    ("|none~a|+|none~0|none~1|+|none~0|none~1|none~2|", ["'none~a'", "op~source"]),
    ("|none~|+|none~0|none~1|+|none~0|none~1|none~2|", ["'none~'", "op~source"]),
    # wrong source index
    ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", ["must come from node 0", "not 1"]),
    ("|none~0|+|none~0|none~1|+|none~0|none~2|none~1|", ["node 3", "must come from node 1", "not 2"]),
    # unknown op: the message lists the valid ones
    ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", ["unknown NB201 operation 'conv_5x5'", *OPS]),
    ("|none~0|+|none~0|none~1|+|none~0|none~1|Skip_Connect~2|", ["'Skip_Connect'", *OPS]),
]


@pytest.mark.parametrize("text, fragments", MALFORMED)
def test_malformed_strings_raise_typed_error_naming_the_problem(space, text, fragments):
    for parse in (NB201Arch.from_str, space.parse):
        with pytest.raises(InvalidArchitectureError) as info:
            parse(text)
        message = str(info.value)
        for fragment in fragments:
            assert fragment in message or re.search(fragment, message), (fragment, message)


@pytest.mark.parametrize("bad", [None, 7, b"|none~0|", ["|none~0|"]])
def test_from_str_rejects_non_str(bad):
    with pytest.raises(InvalidArchitectureError, match=r"must be a str, got " + type(bad).__name__):
        NB201Arch.from_str(bad)


def test_non_ascii_digit_source_raises_typed_error():
    with pytest.raises(InvalidArchitectureError, match="op~source"):
        NB201Arch.from_str("|none~\u00b2|+|none~0|none~1|+|none~0|none~1|none~2|")
    with pytest.raises(InvalidArchitectureError, match="op~source"):  # Arabic-Indic zero is no source 0
        NB201Arch.from_str("|none~\u0660|+|none~0|none~1|+|none~0|none~1|none~2|")


# ------------------------------------------------------------------------------------------------
# enumeration (official order from the ground-truth table)


@needs_data
def test_enumerate_follows_ground_truth_order(space):
    from spaces.datafiles import resolve_data_dir

    path = Path(resolve_data_dir()) / "nb201" / "nb201_ground_truth.csv"
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    expected = [r["arch_str"] for r in rows]
    official_index = [int(r["index"]) for r in rows]
    assert len(expected) == 15_625

    archs = list(space.enumerate())
    assert len(archs) == 15_625
    assert all(isinstance(a, NB201Arch) for a in archs)
    assert [a.to_str() for a in archs] == expected
    assert set(archs) == set(space.product_order())  # the same cells, another order
    assert [space.index(a) for a in archs] == official_index
    assert space.index(expected[123]) == official_index[123]  # strings are accepted too


# ------------------------------------------------------------------------------------------------
# sampling and mutation


def test_sample_is_reproducible_and_covers_all_ops(space):
    draws = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]

    rng_a, rng_b = np.random.default_rng(11), np.random.default_rng(11)
    seq_a = [space.sample(rng_a) for _ in range(400)]
    seq_b = [space.sample(rng_b) for _ in range(400)]
    assert seq_a == seq_b
    assert all(isinstance(a, NB201Arch) for a in seq_a)
    rng_c = np.random.default_rng(12)
    assert [space.sample(rng_c) for _ in range(400)] != seq_a
    for edge in range(6):
        assert {a.ops[edge] for a in seq_a} == set(OPS), edge
    assert len(set(seq_a)) > 350  # 400 draws from 15,625 cells: few repeats


def test_mutate_changes_exactly_one_edge_reproducibly(space):
    parents = [space.sample(np.random.default_rng(s)) for s in range(40)]
    new_ops: Counter = Counter()
    edges_hit: Counter = Counter()
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for parent in parents:
        for _ in range(10):
            child = space.mutate(parent, rng_a)
            assert space.mutate(parent, rng_b) == child  # same generator state, same child
            assert isinstance(child, NB201Arch)
            diff = [i for i in range(6) if child.ops[i] != parent.ops[i]]
            assert len(diff) == 1, (parent, child)
            (edge,) = diff
            assert child.ops[edge] in OPS and child.ops[edge] != parent.ops[edge]
            new_ops[child.ops[edge]] += 1
            edges_hit[edge] += 1
    assert set(new_ops) == set(OPS)
    assert set(edges_hit) == set(range(6))
    # a string parent works and gives the same child as its value
    assert space.mutate(MIXED, np.random.default_rng(3)) == space.mutate(NB201Arch(MIXED_OPS),
                                                                         np.random.default_rng(3))


# ------------------------------------------------------------------------------------------------
# networks


def _golden():
    with open(GOLDEN_JSON) as f:
        meta = json.load(f)
    return meta["archs"], np.load(GOLDEN_NPZ)


@needs_golden
def test_build_matches_reference_state_layout_and_loads_by_position(space):
    archs, arrays = _golden()
    assert len(archs) == 10
    for entry in archs:
        names = entry["state_names"]
        stored = [arrays[f"a{entry['index']}_{j:03d}"] for j in range(len(names))]
        net = space.build(entry["arch_str"], 10)
        state = net.state_dict()
        assert len(state) == len(names) == len(stored), entry["index"]
        assert list(state) == names, entry["index"]
        assert [tuple(t.shape) for t in state.values()] == [a.shape for a in stored], entry["index"]

        load_state_by_position(net, stored)
        for (name, tensor), array in zip(net.state_dict().items(), stored):
            assert tensor.dtype == torch.as_tensor(array).dtype, name
            assert np.array_equal(tensor.numpy(), array), (entry["index"], name)


def test_load_state_by_position_rejects_mismatches(space):
    net = space.build(MIXED, 10, seed=0)
    arrays = [t.numpy().copy() for t in net.state_dict().values()]
    with pytest.raises(ValueError, match="entries"):
        load_state_by_position(net, arrays[:-1])
    bad = list(arrays)
    bad[0] = np.zeros((1, 2, 3), dtype=np.float32)
    with pytest.raises(ValueError, match="shape"):
        load_state_by_position(net, bad)


def _states_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_build_with_seed_is_deterministic_and_keeps_global_rng(space):
    before = torch.get_rng_state()
    net_a = space.build(MIXED, 10, seed=123)
    net_b = space.build(NB201Arch(MIXED_OPS), 10, seed=123)
    after = torch.get_rng_state()
    assert torch.equal(before, after)
    assert _states_equal(net_a, net_b)
    assert not _states_equal(net_a, space.build(MIXED, 10, seed=124))


@pytest.mark.parametrize("num_classes", [10, 100, 120])
def test_output_shape(space, num_classes):
    net = space.build(MIXED, num_classes, seed=0).eval()
    with torch.no_grad():
        for hw in (32, 16):
            x = torch.randn(3, 3, hw, hw, generator=torch.Generator().manual_seed(hw))
            out = net(x)
            assert out.shape == (3, num_classes)
            assert torch.isfinite(out).all()


def test_reduced_network_has_fewer_cells():
    small = spaces.get_space("nb201", channels=4, cells_per_stage=1)
    net = small.build(MIXED, 10, seed=0)
    assert len(net.cells) == 5  # 1 + reduction + 1 + reduction + 1
    assert small.num_layers(net) == 5
    assert net.classifier.in_features == 16
    assert net(torch.randn(2, 3, 16, 16)).shape == (2, 10)


# ------------------------------------------------------------------------------------------------
# response points


def _relu_layers(net) -> dict[int, int]:
    """id(ReLU) -> index of the cell containing it (len(cells) for the final ReLU)."""
    out = {}
    for layer, cell in enumerate(net.cells):
        for m in cell.modules():
            if isinstance(m, nn.ReLU):
                out[id(m)] = layer
    out[id(net.lastact[1])] = len(net.cells)
    return out


def test_response_modules_paper(space):
    net = space.build(MIXED, 10, seed=0)
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    # 3 conv edges x 15 normal cells + 2 per reduction cell x 2 + the final ReLU
    assert len(relus) == 3 * 15 + 4 + 1
    points = space.response_modules(net, "paper")
    assert len(points) == len(relus)
    assert {id(p.module) for p in points} == {id(m) for m in relus}
    assert len({p.name for p in points}) == len(points)
    layers = _relu_layers(net)
    for p in points:
        assert isinstance(p.module, nn.ReLU)
        assert p.layer == layers[id(p.module)], p.name
        assert p.activation == "input"
    assert {p.layer for p in points} == set(range(18))
    assert points[-1].module is net.lastact[1] and points[-1].layer == 17
    assert space.num_layers(net) == 17
    assert space.response_modules(net) == points  # "paper" is the default


def test_response_modules_paper_without_conv_edges(space):
    net = space.build(ALL_SKIP, 10, seed=0)
    points = space.response_modules(net, "paper")
    # only the two reduction cells (cells 5 and 11, two ReLUs each) and the final ReLU
    assert [p.layer for p in points] == [5, 5, 11, 11, 17]
    assert len(points) == sum(isinstance(m, nn.ReLU) for m in net.modules())


def test_response_modules_official(space):
    net = space.build(MIXED, 10, seed=0)
    paper = space.response_modules(net, "paper")
    official = space.response_modules(net, "official")
    wrappers = [m for m in net.modules() if isinstance(m, ReLUConvBN)]
    assert len(wrappers) == 3 * 15 + 2 * 2
    assert len(official) == len(paper) + len(wrappers)
    extra = [p for p in official if isinstance(p.module, ReLUConvBN)]
    assert {id(p.module) for p in extra} == {id(m) for m in wrappers}
    assert {id(p.module) for p in official if isinstance(p.module, nn.ReLU)} == {id(p.module) for p in paper}
    # each wrapper sits in the same cell (layer) as the ReLU inside it
    layers = _relu_layers(net)
    for p in extra:
        assert p.layer == layers[id(p.module.op[0])]
    final = official[-1]
    assert final.module is net.lastact[1] and final.layer == 17 and final.activation == "output"
    assert all(p.activation == "input" for p in official[:-1])


def test_response_modules_rejects_unknown_convention_and_foreign_nets(space):
    net = space.build(MIXED, 10, seed=0)
    with pytest.raises(ValueError, match="paper"):
        space.response_modules(net, "nonsense")
    with pytest.raises(TypeError):
        space.response_modules(nn.Sequential(nn.ReLU()), "paper")
