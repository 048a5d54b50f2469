"""NAS-Bench-101: spec validation and pruning, the graph hash, the network, the benchmark, golden scores."""
from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import torch
from torch import nn

import proxies
import spaces
from conftest import GOLDEN, needs_data
from spaces.base import InvalidArchitectureError
from spaces.nb101 import NB101Arch, NB101Network, NB101Space
from spaces.nb201 import load_state_by_position

C3, C1, MP = "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"
#: the example cell of nasbench's README (7 vertices, 9 edges)
MATRIX = [[0, 1, 1, 1, 0, 1, 0],
          [0, 0, 0, 0, 0, 0, 1],
          [0, 0, 0, 0, 0, 0, 1],
          [0, 0, 0, 0, 1, 0, 0],
          [0, 0, 0, 0, 0, 0, 1],
          [0, 0, 0, 0, 0, 0, 1],
          [0, 0, 0, 0, 0, 0, 0]]
OPS7 = ["input", C1, C3, C3, C3, MP, "output"]
GOLDEN_JSON = os.path.join(GOLDEN, "nb101_reference_scores.json")
GOLDEN_NPZ = os.path.join(GOLDEN, "nb101_reference_states.npz")
needs_golden = pytest.mark.skipif(not (os.path.exists(GOLDEN_JSON) and os.path.exists(GOLDEN_NPZ)),
                                  reason="golden reference files (../shared/golden) not found")


@pytest.fixture(scope="module")
def space():
    return NB101Space()


def test_valid_spec_is_kept_and_round_trips(space):
    a = NB101Arch(MATRIX, tuple(OPS7))
    assert a.num_vertices == 7 and a.num_edges == 9
    assert space.parse(a.to_str()) == a
    assert space.parse({"matrix": MATRIX, "ops": OPS7}) == a
    assert space.parse((MATRIX, OPS7)) == a
    assert space.parse(a.to_dict()) == a
    assert hash(a) == hash(space.parse(a.to_str()))
    with pytest.raises(AttributeError):
        a.ops = ()  # frozen


def test_pruning_removes_vertices_off_every_path():
    m = np.zeros((7, 7), dtype=int)
    m[0, 1] = m[1, 6] = 1        # input -> v1 -> output
    m[0, 2] = 1                  # v2: a dead end (no way to the output)
    m[3, 6] = 1                  # v3: unreachable from the input
    m[4, 5] = 1                  # v4 -> v5: neither
    a = NB101Arch(m, ("input", C3, C1, MP, C1, C3, "output"))
    assert a.matrix == ((0, 1, 0), (0, 0, 1), (0, 0, 0))
    assert a.ops == ("input", C3, "output")
    # pruning makes different specs the same value
    assert a == NB101Arch(((0, 1, 0), (0, 0, 1), (0, 0, 0)), ("input", C3, "output"))


@pytest.mark.parametrize("matrix, ops, fragment", [
    ([[0, 1], [0, 0], [0, 0]], ["input", "output"], "square"),
    ([[0, 2], [0, 0]], ["input", "output"], "only 0 and 1"),
    ([[0, 1], [1, 0]], ["input", "output"], "upper-triangular"),
    ([[0, 1], [0, 0]], ["input", "output", "output"], "one op per vertex"),
    ([[0, 1], [0, 0]], ["conv3x3", "output"], "first op"),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], ["input", "conv5x5", "output"], "unknown NB-101 operation"),
    ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], ["input", C3, "output"], "does not reach the output"),
    (np.triu(np.ones((8, 8), dtype=int), 1).tolist(), ["input"] + [C3] * 6 + ["output"], "at most 7 vertices"),
    (np.triu(np.ones((7, 7), dtype=int), 1).tolist(), OPS7, "at most 9 edges"),
    ([[0]], ["input"], "at least 2 vertices"),
])
def test_invalid_specs_raise_typed_errors_naming_the_problem(matrix, ops, fragment):
    with pytest.raises(InvalidArchitectureError, match=fragment):
        NB101Arch(matrix, tuple(ops))


@pytest.mark.parametrize("bad, fragment", [
    ("0100", "'<row-major 0/1 matrix>:<op;op;...>'"), ("010:input;output", "V\\*V"), (42, "cannot read"),
    ({"ops": ["input", "output"]}, "missing \\['matrix'\\]"), (None, "cannot read"),
])
def test_parse_rejects_malformed_input(space, bad, fragment):
    with pytest.raises(InvalidArchitectureError, match=fragment):
        space.parse(bad)


def _relabel(matrix, ops, perm):
    """The same graph with interior vertices renumbered (perm keeps a topological order)."""
    m = np.array(matrix)
    order = [0, *perm, len(ops) - 1]
    return m[np.ix_(order, order)], [ops[i] for i in order]


def test_hash_is_invariant_to_vertex_numbering_and_separates_cells():
    a = NB101Arch(MATRIX, tuple(OPS7))
    # v1, v2 and v5 all read the input and feed the output: any order among them is the same graph
    m, o = _relabel(MATRIX, OPS7, [2, 5, 3, 4, 1])
    b = NB101Arch(m, tuple(o))
    assert b != a and b.hash == a.hash
    c = NB101Arch(MATRIX, tuple(OPS7[:1] + [C3] + OPS7[2:]))  # one op changed
    assert c.hash != a.hash


@needs_data
def test_benchmark_merges_rows_of_one_cell_and_looks_up_any_labelling(space):
    import csv

    bench = space.benchmark
    archs = list(space.enumerate())
    assert len(archs) == len(set(archs)) == 292  # 500 NASLib rows, 292 distinct cells
    assert len({a.hash for a in archs}) == 292
    path = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "nb101", "naslib_nb101_500.csv")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    by_hash: dict[str, list[float]] = {}
    for r in rows:
        by_hash.setdefault(NB101Arch.from_rowmajor(r["matrix_rowmajor"], r["ops"]).hash, []).append(
            float(r["val_accuracy"]))
    multi = next(a for a in archs if len(by_hash[a.hash]) > 2)
    assert bench.lookup(multi, "cifar10", "valid") == pytest.approx(np.mean(by_hash[multi.hash]), rel=1e-12)
    # the unpruned spec of any of its rows finds the same value
    r = next(r for r in rows if NB101Arch.from_rowmajor(r["matrix_rowmajor"], r["ops"]).hash == multi.hash)
    unpruned = {"matrix": np.array([int(c) for c in r["matrix_rowmajor"]]).reshape(7, 7).tolist(),
                "ops": r["ops"].split(";")}
    assert bench.lookup(space.parse(unpruned), "cifar10", "valid") == bench.lookup(multi, "cifar10", "valid")
    assert "292 distinct cells" in bench.protocol("cifar10", "valid")
    assert len(bench.rows_of(multi)) == len(by_hash[multi.hash])


def test_sample_and_mutate_are_seeded_and_stay_in_the_space(space):
    s1 = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    s2 = [space.sample(np.random.default_rng(7)) for _ in range(3)]
    assert s1 == s2
    rng = np.random.default_rng(0)
    samples = [space.sample(rng) for _ in range(100)]
    # uniform random specs often prune to the same small cell (NASLib's 500 rows are 292 cells)
    assert len({a.hash for a in samples}) > 40
    assert all(a.num_vertices <= 7 and a.num_edges <= 9 for a in samples)
    rng1, rng2 = np.random.default_rng(3), np.random.default_rng(3)
    for a in samples[:30]:
        child = space.mutate(a, rng1)
        assert child == space.mutate(a, rng2)
        assert isinstance(child, NB101Arch) and child.hash != a.hash
        assert space.parse(child.to_str()) == child


def test_network_layout_and_reduced_width(space):
    a = NB101Arch(MATRIX, tuple(OPS7))
    net = space.build(a, 10, seed=0, stem_channels=16)
    assert isinstance(net, NB101Network)
    # stem, 3 cells, pool, 3 cells, pool, 3 cells
    kinds = [type(m).__name__ for m in net.layers]
    assert kinds == ["ConvBnRelu"] + ["Cell"] * 3 + ["MaxPool2d"] + ["Cell"] * 3 + ["MaxPool2d"] + ["Cell"] * 3
    assert net.classifier.in_features == 64
    assert space.build(a, 10, seed=0).classifier.in_features == 512  # the benchmark's width: 128 -> 512
    small = space.build(a, 100, seed=0, stem_channels=8, num_stacks=2, cells_per_stack=1)
    assert small(torch.randn(2, 3, 32, 32)).shape == (2, 100)
    # every parameter is used: no placeholder parameters (nasbench_pytorch's Network has some)
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    # seeded build: deterministic, global RNG untouched
    state = torch.random.get_rng_state()
    b = space.build(a, 10, seed=5, stem_channels=16)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(b.parameters(), space.build(a, 10, seed=5, stem_channels=16).parameters()))


def test_output_projection_added_to_a_relu_output_keeps_autograd_valid(space):
    # one interior conv vertex feeding the output plus an input->output edge: the reference adds
    # the projection in place to the ReLU's output, which autograd refuses; ours adds out of place
    a = NB101Arch([[0, 1, 1], [0, 0, 1], [0, 0, 0]], ("input", C3, "output"))
    net = space.build(a, 10, seed=0, stem_channels=8)
    net(torch.randn(4, 3, 16, 16)).sum().backward()
    assert net.layers[1].vertex_op[1].conv3x3.conv_bn_relu[0].weight.grad is not None


def test_response_modules_follow_the_released_layer_index(space):
    a = NB101Arch(MATRIX, tuple(OPS7))
    net = space.build(a, 10, seed=0, stem_channels=8)
    official = space.response_modules(net, "official")
    paper = space.response_modules(net, "paper")
    assert [p.module for p in official] == [p.module for p in paper]
    assert all(isinstance(p.module, nn.ReLU) and p.activation == "input" for p in official)
    assert sorted({p.layer for p in official}) == [0, 1, 2, 3, 5, 6, 7, 9, 10, 11]
    assert sorted({p.layer for p in paper}) == list(range(10))
    # per cell: 4 conv vertices + 4 input projections (v1, v2, v3, v5 read the input)
    assert sum(p.layer == 1 for p in official) == 4 + 4
    assert space.num_layers(net) == 11
    with pytest.raises(ValueError, match="convention"):
        space.response_modules(net, "bogus")
    with pytest.raises(TypeError, match="nb101"):
        space.response_modules(nn.Linear(2, 2))


# ------------------------------------------------------------------------------------------------
# golden: the released WRCor code's scores on 6 NB-101 cells (stem 16)

GOLDEN_MAP = {"wrcor_official": "act_grad_cor_weighted", "rcor": "act_grad_cor", "naswot": "act_hamming",
              "synflow": "synflow", "jacob_cov": "jacob_cor", "snip": "snip", "grad_norm": "grad_norm",
              "l2_norm": "l2_norm"}


def _golden_rows() -> list[int]:
    if not os.path.exists(GOLDEN_JSON):
        return []
    with open(GOLDEN_JSON) as f:
        return [a["row"] for a in json.load(f)["archs"]]


@pytest.fixture(scope="module")
def golden101():
    from harness.data import batch

    with open(GOLDEN_JSON) as f:
        entries = {a["row"]: a for a in json.load(f)["archs"]}
    return entries, np.load(GOLDEN_NPZ), batch("cifar10", 64, seed=None, sampling="first")


@needs_data
@needs_golden
@pytest.mark.parametrize("row", _golden_rows())
def test_golden_nb101_scores(row, golden101):
    entries, arrays, (x, y) = golden101
    entry = entries[row]
    space = spaces.get_space("nb101", stem_channels=16)
    raw = np.array([int(c) for c in entry["matrix_rowmajor"]]).reshape(7, 7)
    arch = space.parse({"matrix": raw.tolist(), "ops": entry["ops"].split(";")})
    # our pruning is the reference's
    assert [list(r) for r in arch.matrix] == entry["pruned_matrix"] and list(arch.ops) == entry["pruned_ops"]
    net = space.build(arch, 10)
    assert len(net.state_dict()) == len(entry["state_names"])
    load_state_by_position(net, [arrays[f"r{row}_{j:03d}"] for j in range(len(entry["state_names"]))])
    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # the reference's arithmetic (see conftest.py)
    try:
        ours = proxies.compute(list(GOLDEN_MAP), net, x, y, space=space)
    finally:
        torch.set_num_threads(threads)
    errors = {}
    for name, ref in GOLDEN_MAP.items():
        expected = entry["scores"][ref]
        assert math.isfinite(ours[name])
        errors[name] = abs(ours[name] - expected) / abs(expected)
    print(f"nb101 row {row}: " + ", ".join(f"{k}={v:.1e}" for k, v in errors.items()))
    assert max(errors.values()) <= 1e-6, errors
