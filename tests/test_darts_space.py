"""The DARTS (NAS-Bench-301) space: genotype values, parsing, sampling, mutation, networks, probes."""
from __future__ import annotations

import ast
import csv
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from conftest import needs_data
from spaces.base import InvalidArchitectureError
from spaces.darts import OPS, DartsGenotype, DartsNetwork, DartsSpace, ReLUConvBN, darts_benchmark

NORMAL = [("max_pool_3x3", 0), ("dil_conv_3x3", 1), ("avg_pool_3x3", 1), ("avg_pool_3x3", 0),
          ("sep_conv_3x3", 1), ("sep_conv_3x3", 0), ("sep_conv_3x3", 1), ("skip_connect", 3)]
REDUCE = [("max_pool_3x3", 1), ("skip_connect", 0), ("sep_conv_3x3", 1), ("sep_conv_3x3", 0),
          ("max_pool_3x3", 3), ("avg_pool_3x3", 0), ("max_pool_3x3", 2), ("dil_conv_5x5", 3)]
TEXT = (f"Genotype(normal={NORMAL!r}, normal_concat=[2, 3, 4, 5], "
        f"reduce={REDUCE!r}, reduce_concat=[2, 3, 4, 5])")
GENO = DartsGenotype(normal=NORMAL, reduce=REDUCE)
# every op, and every input of every node, somewhere in the network
ALL_OPS = DartsGenotype(
    normal=[("sep_conv_3x3", 0), ("sep_conv_5x5", 1), ("dil_conv_3x3", 2), ("dil_conv_5x5", 0),
            ("skip_connect", 3), ("max_pool_3x3", 1), ("avg_pool_3x3", 4), ("sep_conv_3x3", 2)],
    reduce=[("skip_connect", 0), ("sep_conv_3x3", 1), ("dil_conv_5x5", 2), ("max_pool_3x3", 1),
            ("avg_pool_3x3", 0), ("skip_connect", 3), ("sep_conv_5x5", 4), ("dil_conv_3x3", 1)])


@pytest.fixture(scope="module")
def space():
    return DartsSpace()


@pytest.fixture(scope="module")
def small():
    return DartsSpace(init_channels=8, layers=5)


@pytest.fixture(scope="module")
def rows():
    from spaces.datafiles import resolve_data_dir

    with open(Path(resolve_data_dir()) / "darts" / "naslib_nb301_725.csv", newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------------------------------------
# values and strings


@needs_data
def test_every_csv_string_round_trips_exactly(rows):
    assert len(rows) == 725
    seen = set()
    for row in rows:
        text = row["genotype"]
        g = DartsGenotype.from_str(text)
        assert g.to_str() == text and str(g) == text
        assert DartsGenotype.from_str(g.to_str()) == g
        # NASLib's compact column encodes the same genotype (input, op index in OPS)
        assert g.to_compact() == tuple(tuple(cell) for cell in ast.literal_eval(row["naslib_compact"]))
        assert DartsGenotype.from_compact(g.to_compact()) == g
        seen.add(g)
    assert len(seen) == 725


def test_to_str_format_and_forms(space):
    assert GENO.to_str() == TEXT
    assert TEXT.startswith("Genotype(normal=[('max_pool_3x3', 0), ('dil_conv_3x3', 1), ")
    assert space.parse(TEXT) == GENO and space.to_str(GENO) == TEXT
    assert space.parse(GENO) is GENO
    assert space.parse(GENO.to_dict()) == GENO
    assert space.parse({"normal": [list(p) for p in NORMAL], "reduce": REDUCE}) == GENO  # concat optional
    assert space.parse({"normal": tuple(NORMAL), "normal_concat": (2, 3, 4, 5),
                        "reduce": REDUCE, "reduce_concat": range(2, 6)}) == GENO
    squeezed = TEXT.replace(", ", ",").replace("=", " = ")
    assert squeezed != TEXT and space.parse("\n  " + squeezed + "  ") == GENO
    assert space.parse(TEXT.replace("[2, 3, 4, 5]", "range(2, 6)")) == GENO  # DARTS' genotypes.py form
    assert space.parse(f"Genotype({NORMAL!r}, [2, 3, 4, 5], {REDUCE!r}, [2, 3, 4, 5])") == GENO  # positional
    assert space.parse(TEXT.replace("'", '"')) == GENO


def test_value_is_frozen_and_hashable():
    g = DartsGenotype(normal=[list(p) for p in NORMAL], reduce=REDUCE, normal_concat=[2, 3, 4, 5])
    assert isinstance(g.normal, tuple) and all(isinstance(p, tuple) for p in g.normal)
    assert isinstance(g.normal_concat, tuple)
    assert g == GENO and hash(g) == hash(GENO) and {g: 1}[GENO] == 1
    with pytest.raises(Exception):
        g.normal = g.reduce  # type: ignore[misc]
    # the order of the two pairs of a node is part of the value
    swapped = list(NORMAL)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    assert DartsGenotype(normal=swapped, reduce=REDUCE) != GENO


def _with(cell, pair, value):
    pairs = list(NORMAL if cell == "normal" else REDUCE)
    pairs[pair] = value
    return pairs


BAD_VALUES = [
    (dict(normal=NORMAL[:7], reduce=REDUCE), ["normal cell must have 8", "got 7"]),
    (dict(normal=NORMAL, reduce=REDUCE + [("skip_connect", 0)]), ["reduce cell must have 8", "got 9"]),
    (dict(normal=_with("normal", 3, ("conv_7x1_1x7", 1)), reduce=REDUCE),
     ["unknown DARTS operation 'conv_7x1_1x7'", "pair 3 of the normal cell", *OPS]),
    (dict(normal=_with("normal", 0, ("none", 1)), reduce=REDUCE), ["unknown DARTS operation 'none'"]),
    (dict(normal=NORMAL, reduce=_with("reduce", 1, ("skip_connect", 2))),
     ["input 2 of pair 1 of the reduce cell", "node 0 may read inputs 0..1"]),
    (dict(normal=_with("normal", 7, ("skip_connect", 5)), reduce=REDUCE),
     ["input 5 of pair 7", "node 3 may read inputs 0..4"]),
    (dict(normal=_with("normal", 2, ("skip_connect", -1)), reduce=REDUCE), ["input -1 of pair 2", "out of range"]),
    (dict(normal=_with("normal", 3, ("avg_pool_3x3", 1)), reduce=REDUCE),
     ["two inputs of node 1 of the normal cell must differ", "both are 1"]),
    (dict(normal=_with("normal", 2, ("skip_connect", "0")), reduce=REDUCE), ["input of pair 2", "must be an int"]),
    (dict(normal=_with("normal", 2, ("skip_connect", True)), reduce=REDUCE), ["must be an int"]),
    (dict(normal=_with("normal", 2, ("skip_connect",)), reduce=REDUCE), ["pair 2 of the normal cell", "(op, input)"]),
    (dict(normal="skip_connect", reduce=REDUCE), ["normal cell must be a sequence", "str"]),
    (dict(normal=NORMAL, reduce=REDUCE, normal_concat=[2, 3, 4]), ["normal_concat must be [2, 3, 4, 5]"]),
    (dict(normal=NORMAL, reduce=REDUCE, reduce_concat=[2, 3, 4, 5, 6]), ["reduce_concat must be [2, 3, 4, 5]"]),
    (dict(normal=NORMAL, reduce=REDUCE, reduce_concat=[2.0, 3, 4, 5]), ["reduce_concat must be [2, 3, 4, 5]"]),
]


def _assert_message(info, fragments):
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message or re.search(fragment, message), (fragment, message)


@pytest.mark.parametrize("kwargs, fragments", BAD_VALUES)
def test_invalid_values_raise_typed_error_naming_the_problem(space, kwargs, fragments):
    with pytest.raises(InvalidArchitectureError) as info:
        DartsGenotype(**kwargs)
    _assert_message(info, fragments)
    with pytest.raises(InvalidArchitectureError) as info:
        space.parse(kwargs)  # the mapping form is validated the same way
    _assert_message(info, fragments)


MALFORMED = [
    ("", ["not a Genotype(...) expression"]),
    (TEXT[:-1], ["not a Genotype(...) expression"]),
    ("Genotype(normal=[('max_pool_3x3', 0)", ["not a Genotype(...) expression"]),
    ("|nor_conv_3x3~0|+|none~0|none~1|", ["not a Genotype(...) expression"]),
    ("[('max_pool_3x3', 0)]", ["must be a call 'Genotype(normal=..."]),
    (TEXT.replace("Genotype(", "Phenotype("), ["must be a call 'Genotype("]),
    (TEXT.replace("reduce_concat=", "reduce_cat="), ["unknown Genotype field 'reduce_cat'", "reduce_concat"]),
    (TEXT.replace(", reduce_concat=[2, 3, 4, 5]", ""), ["field(s) ['reduce_concat'] missing"]),
    (TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal=[2, 3, 4, 5]"), ["field 'normal' is given twice"]),
    (TEXT.replace("('max_pool_3x3', 0)", "(__import__('os').getcwd(), 0)", 1), ["field normal must be a literal"]),
    (TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=range(2, 5)"), ["normal_concat must be [2, 3, 4, 5]"]),
    (TEXT.replace("normal_concat=[2, 3, 4, 5]", "normal_concat=list(range(2, 6))"), ["normal_concat must be a list"]),
    (TEXT.replace("('max_pool_3x3', 0)", "('max_pool_3x3', 0), ('max_pool_3x3', 1)", 1),
     ["normal cell must have 8", "got 9"]),
    (TEXT.replace("('skip_connect', 3)", "('skip_connect', 6)"), ["input 6 of pair 7 of the normal cell"]),
    (TEXT.replace("('dil_conv_5x5', 3)", "('dil_conv_7x7', 3)"), ["unknown DARTS operation 'dil_conv_7x7'"]),
    (TEXT.replace("('dil_conv_3x3', 1)", "('dil_conv_3x3', 0)", 1), ["two inputs of node 0 of the normal cell"]),
]


@pytest.mark.parametrize("text, fragments", MALFORMED)
def test_malformed_strings_raise_typed_error_naming_the_problem(space, text, fragments):
    for parse in (DartsGenotype.from_str, space.parse):
        with pytest.raises(InvalidArchitectureError) as info:
            parse(text)
        _assert_message(info, fragments)


@pytest.mark.parametrize("bad", [None, 3, 2.5, b"Genotype()", [NORMAL, REDUCE]])
def test_parse_rejects_other_types(space, bad):
    with pytest.raises(InvalidArchitectureError, match="cannot read a DARTS architecture from " + type(bad).__name__):
        space.parse(bad)
    with pytest.raises(InvalidArchitectureError, match="must be a str, got " + type(bad).__name__):
        DartsGenotype.from_str(bad)


def test_parse_rejects_bad_mappings(space):
    with pytest.raises(InvalidArchitectureError, match=r"unknown DARTS genotype key\(s\) \['cells'\]"):
        space.parse({**GENO.to_dict(), "cells": 8})
    with pytest.raises(InvalidArchitectureError, match=r"needs the key\(s\) \['reduce'\]"):
        space.parse({"normal": NORMAL})


def test_size(space):
    per_cell = 1
    for node in range(4):  # an ordered pair of distinct inputs among node+2 states, 7 ops each
        per_cell *= (node + 2) * (node + 1) * 7 * 7
    assert space.size == DartsSpace.size == per_cell ** 2 == (2880 * 7 ** 8) ** 2 == 275_647_219_316_498_534_400
    assert space.size > sys.maxsize  # hence no len(): it says so and where to look
    with pytest.raises(OverflowError, match="use DartsSpace.size"):
        len(space)


# ------------------------------------------------------------------------------------------------
# sampling and mutation


def test_sample_is_reproducible_valid_and_seed_dependent(space):
    a = [space.sample(np.random.default_rng(3)) for _ in range(2)]
    assert a[0] == a[1]
    rng_a, rng_b, rng_c = (np.random.default_rng(s) for s in (11, 11, 12))
    seq_a = [space.sample(rng_a) for _ in range(300)]
    assert seq_a == [space.sample(rng_b) for _ in range(300)]
    assert seq_a != [space.sample(rng_c) for _ in range(300)]
    assert len(set(seq_a)) == 300
    assert all(isinstance(g, DartsGenotype) for g in seq_a)
    for cell in ("normal", "reduce"):
        for pair in range(8):
            node = pair // 2
            assert {getattr(g, cell)[pair][0] for g in seq_a} == set(OPS), (cell, pair)
            assert {getattr(g, cell)[pair][1] for g in seq_a} == set(range(node + 2)), (cell, pair)
    # both orders of a node's two inputs occur (NASLib draws them as an ordered pair)
    assert {g.normal[0][1] for g in seq_a} == {0, 1}


def _diffs(a: DartsGenotype, b: DartsGenotype):
    return [(cell, i) for cell in ("normal", "reduce") for i in range(8) if getattr(a, cell)[i] != getattr(b, cell)[i]]


def test_mutate_changes_one_pair_reproducibly(space):
    parents = [space.sample(np.random.default_rng(s)) for s in range(30)]
    kinds: Counter = Counter()
    hit: Counter = Counter()
    rng_a, rng_b = np.random.default_rng(5), np.random.default_rng(5)
    for parent in parents:
        for _ in range(20):
            child = space.mutate(parent, rng_a)
            assert space.mutate(parent.to_str(), rng_b) == child  # same generator state, same child
            assert isinstance(child, DartsGenotype) and child != parent
            assert DartsGenotype.from_str(child.to_str()) == child  # a valid member of the space
            (cell, i), = _diffs(parent, child)
            (op_p, in_p), (op_c, in_c) = getattr(parent, cell)[i], getattr(child, cell)[i]
            assert (op_p != op_c) != (in_p != in_c)  # exactly one of op / input changed
            kinds["op" if op_p != op_c else "input"] += 1
            hit[cell, i] += 1
            if in_p != in_c:
                assert i >= 2  # node 0 has no other input to move to
    assert kinds["op"] > 0 and kinds["input"] > 0
    assert len(hit) == 16  # every pair of both cells is reachable


# ------------------------------------------------------------------------------------------------
# networks


def _states_equal(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return list(sa) == list(sb) and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_build_many_samples_at_reduced_size(small):
    rng = np.random.default_rng(0)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 16, 16, generator=gen)
    with torch.no_grad():
        for i in range(200):
            num_classes = (10, 100)[i % 2]
            net = small.build(small.sample(rng), num_classes, seed=i).eval()
            out = net(x)
            assert out.shape == (2, num_classes)
            assert torch.isfinite(out).all()


def test_network_structure(small):
    net = small.build(ALL_OPS, 10, seed=0)
    assert isinstance(net, DartsNetwork) and len(net.cells) == 5 == small.num_layers(net)
    assert [c.reduction for c in net.cells] == [False, True, False, True, False]  # layers//3, 2*layers//3
    assert net.stem[0].out_channels == 24  # 3 * C
    assert net.classifier.in_features == 4 * 32  # 4 concatenated nodes of 4C channels
    assert net.auxiliary_head is None
    kinds = Counter(type(op).__name__ for cell in net.cells for op in cell.ops)
    assert kinds["FactorizedReduce"] == 2  # skip from input 0 (a stride-2 edge) in each reduction cell
    assert kinds["Identity"] == 3 * 1 + 2 * 1  # skip from node 3 (stride 1) in every cell
    pools = [m for m in net.modules() if isinstance(m, nn.AvgPool2d)]
    assert pools and all(p.count_include_pad is False for p in pools)
    # the cell after a reduction preprocesses its older input with FactorizedReduce
    assert [type(c.preprocess0).__name__ for c in net.cells] == [
        "ReLUConvBN", "ReLUConvBN", "FactorizedReduce", "ReLUConvBN", "FactorizedReduce"]
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    feats = net.forward_features(x)
    assert feats.shape == (2, 128, 8, 8)
    assert torch.allclose(net(x), net.classifier(feats.mean((2, 3))), atol=1e-6)


def test_build_default_size(space):
    net = space.build(GENO, 10, seed=0)
    assert len(net.cells) == 8 and net.stem[0].out_channels == 96
    assert [i for i, c in enumerate(net.cells) if c.reduction] == [2, 5]
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = net(x)
    assert out.shape == (2, 10) and torch.isfinite(out).all()
    out.sum().backward()
    assert net.stem[0].weight.grad is not None and net.stem[0].weight.grad.abs().sum() > 0


@needs_data
def test_parameter_count_matches_naslib_with_non_affine_ops(rows):
    # NASLib's NB301 graph keeps the edge ops' BNs non-affine; its parameter count is the 'params' column
    naslib = DartsSpace(affine_ops=False)
    for row in rows[:25]:
        net = naslib.build(row["genotype"], 10)
        assert sum(p.numel() for p in net.parameters()) == round(float(row["params"]) * 1e6)
    g = DartsGenotype.from_str(rows[0]["genotype"])
    n_affine = sum(p.numel() for p in DartsSpace().build(g, 10).parameters())
    assert n_affine > round(float(rows[0]["params"]) * 1e6)


def test_build_with_seed_is_deterministic_and_keeps_global_rng(small):
    before = torch.get_rng_state()
    a = small.build(GENO, 10, seed=123)
    b = small.build(TEXT, 10, seed=123)
    assert torch.equal(before, torch.get_rng_state())
    assert _states_equal(a, b)
    assert not _states_equal(a, small.build(GENO, 10, seed=124))


def test_auxiliary_head_does_not_change_forward():
    aux = DartsSpace(init_channels=8, layers=5, auxiliary=True)
    net = aux.build(GENO, 10, seed=0)
    assert net.auxiliary_head is not None
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    out = net(x)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 10)
    logits, logits_aux = net.forward_with_auxiliary(x)
    assert torch.allclose(logits, net(x)) and logits_aux.shape == (2, 10)
    assert net.eval().forward_with_auxiliary(x)[1] is None


# ------------------------------------------------------------------------------------------------
# response points


def test_response_modules_paper(small):
    net = small.build(ALL_OPS, 10, seed=0)
    points = small.response_modules(net, "paper")
    assert points == small.response_modules(net)  # "paper" is the default
    relus = {id(m): layer for layer, c in enumerate(net.cells) for m in c.modules() if isinstance(m, nn.ReLU)}
    assert len(relus) == sum(isinstance(m, nn.ReLU) for m in net.modules())  # every ReLU sits in a cell
    assert [id(p.module) for p in points] and {id(p.module) for p in points} == set(relus)
    assert len(points) == len(relus) and len({p.name for p in points}) == len(points)
    for p in points:
        assert isinstance(p.module, nn.ReLU) and p.layer == relus[id(p.module)] and p.activation == "input"
        assert net.get_submodule(p.name) is p.module
    assert sorted({p.layer for p in points}) == list(range(5))
    # normal cell 0: 2 preprocess + 2 per sep conv (3 of them) + 1 per dil conv (2 of them)
    assert Counter(p.layer for p in points)[0] == 2 + 3 * 2 + 2
    assert max(p.layer for p in points) < small.num_layers(net)


def test_response_modules_official(small):
    net = small.build(ALL_OPS, 10, seed=0)
    paper = small.response_modules(net, "paper")
    official = small.response_modules(net, "official")
    by_name = [m for c in net.cells for m in c.modules() if "ReLU" in type(m).__name__]
    assert {id(p.module) for p in official} == {id(m) for m in by_name}  # the released code's rule
    assert {id(p.module) for p in paper} < {id(p.module) for p in official}
    extra = [p for p in official if not isinstance(p.module, nn.ReLU)]
    assert extra and all(isinstance(p.module, ReLUConvBN) for p in extra)
    assert len(official) == len(paper) + len(extra)
    # the cells' 1x1 preprocessing wrappers: two per cell except after a reduction (one)
    assert Counter(p.layer for p in extra) == {0: 2, 1: 2, 2: 1, 3: 2, 4: 1}
    for p in extra:
        assert p.layer == next(q.layer for q in official if q.module is p.module.op[0])


def test_response_modules_rejects_unknown_convention_and_foreign_nets(small):
    net = small.build(GENO, 10, seed=0)
    with pytest.raises(ValueError, match="official"):
        small.response_modules(net, "nonsense")
    with pytest.raises(TypeError, match="darts"):
        small.response_modules(nn.Sequential(nn.ReLU()), "paper")
    with pytest.raises(TypeError):
        small.num_layers(nn.Sequential(nn.ReLU()))


# ------------------------------------------------------------------------------------------------
# ground truth


@needs_data
def test_benchmark_lookup_and_enumerate(space, rows):
    bench = space.benchmark
    assert bench is space.benchmark  # cached
    assert "surrogate" in bench.protocol("cifar10", "valid")
    assert bench.available() == [("cifar10", "valid")]
    for i in (0, 1, 363, 724):
        text = rows[i]["genotype"]
        g = DartsGenotype.from_str(text)
        assert bench.lookup(g, "cifar10", "valid") == float(rows[i]["val_accuracy"])
        assert bench.lookup(text.replace(", ", ","), "cifar10", "valid") == float(rows[i]["val_accuracy"])
        assert space.index(text) == space.index(g) == i
    archs = list(space.enumerate())
    assert len(archs) == 725 == len(set(archs))
    assert [a.to_str() for a in archs] == [r["genotype"] for r in rows]
    vals = bench.lookup_many(archs[:5], "cifar10", "valid")
    assert vals.tolist() == [float(r["val_accuracy"]) for r in rows[:5]]
    other = space.sample(np.random.default_rng(0))
    assert other not in bench
    assert len(darts_benchmark()) == 725
