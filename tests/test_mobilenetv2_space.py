"""The MobileNetV2-like ImageNet space of WRCor (``spaces.mobilenetv2``): strings, membership,
sampling and mutation as released, the network, its response points and the resource accounting,
checked against numbers of the official code (``tests/fixtures/mobilenetv2_official.json``, see its
``_provenance``) and the spec's section 6 (``shared/specs/mobilenetv2_space.md``)."""
from __future__ import annotations

import ast
import json
import math
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import proxies
import spaces
from spaces.base import Benchmark, InvalidArchitectureError, Space, UnknownNameError
from spaces.mobilenetv2 import (
    C_RANGES,
    MBBlock,
    MobileNetV2Arch,
    MobileNetV2Network,
    MobileNetV2Space,
    SqueezeExcite,
)
from spaces.mobilenetv2.network import InvertedResidual
from spaces.mobilenetv2.space import FlopsLimitError, NoBenchmarkTableError

FIXTURE = Path(__file__).parent / "fixtures" / "mobilenetv2_official.json"
GOLDEN = json.loads(FIXTURE.read_text())["genotypes"]
#: the official code, read-only (a git mirror without a work tree); the tests reading it skip without it
MIRROR = Path("/work/.mirror/kunjing96+ZSNAS-WRCor/repo")
OFFICIAL_COMMIT = "270ce7a"
#: the released genotypes outside the search space (Zen-NAS's: widths off the grid, a 10-sub-layer block)
OUTSIDE = {"zennet_flops400M_res192", "zennet_flops600M_res256", "zennet_flops900M_res224"}
LIMIT = 600e6

EA600 = GOLDEN["EA_our_vote_600M"]


@pytest.fixture(scope="module")
def space() -> MobileNetV2Space:
    return spaces.get_space("mobilenetv2")


def pair(name: str) -> tuple[str, int]:
    return GOLDEN[name]["structure"], GOLDEN[name]["resolution"]


# ------------------------------------------------------------------------------------------------
# the released genotypes: strings and the accounting, exact


def _literal(node: ast.expr):
    """A string/int/tuple expression of genotypes.py (string concatenations with +), never evaluated."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return _literal(node.left) + _literal(node.right)
    if isinstance(node, ast.Tuple):
        return tuple(_literal(e) for e in node.elts)
    raise ValueError(f"unexpected expression {ast.dump(node)}")


def official_genotypes() -> dict[str, tuple[str, int]]:
    if not (MIRROR / "HEAD").exists():
        pytest.skip(f"the official code's mirror is not at {MIRROR}")
    text = subprocess.run(["git", "-C", str(MIRROR), "show", f"{OFFICIAL_COMMIT}:genotypes.py"], check=True,
                          capture_output=True, text=True).stdout
    return {t.id: _literal(node.value) for node in ast.parse(text).body if isinstance(node, ast.Assign)
            for t in node.targets}


def test_every_released_genotype_round_trips_exactly(space):
    released = official_genotypes()
    assert sorted(released) == sorted(GOLDEN)  # the fixture covers every genotype of genotypes.py
    for name, (structure, resolution) in released.items():
        assert (structure, resolution) == pair(name)
        arch = space.read((structure, resolution))
        assert arch.to_official() == (structure, resolution)
        assert arch.to_str() == f"{structure}@{resolution}"
        assert MobileNetV2Arch.from_str(arch.to_str()) == arch and hash(arch) == hash(space.read(arch.to_str()))
        if name in OUTSIDE:
            with pytest.raises(InvalidArchitectureError):
                space.parse((structure, resolution))
        else:
            assert space.parse((structure, resolution)) == arch == space.parse(arch.to_str())
            assert space.to_str(arch) == arch.to_str()


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_the_accounting_equals_the_official_code(space, name):
    g = GOLDEN[name]
    arch = space.read(pair(name))
    assert space.flops(arch) == g["flops"]  # exact: the released float arithmetic, term by term
    assert space.model_size(arch) == g["model_size"]
    assert space.params(arch) == g["numel"]
    assert space.macs(arch) == g["conv_linear_macs"]
    assert arch.sub_layers == g["official_relu_hooks"] == g["num_layers"] - 2


def test_the_spec_section_6_numbers(space):
    """Spec section 4/6, written out (independently of the fixture)."""
    expect = {  # name: (official FLOPs, Σ numel, get_model_size, conv+linear MACs)
        "EA_our_vote_600M": (591_710_478, 10_807_432, 10_775_601, 587_680_672),
        "MobileNetV2": (277_036_312, 4_465_880, 4_450_113, 270_959_360),
        "RL_our_vote_600M": (266_178_776, 7_582_312, 7_557_825, 262_517_184),
        "EA_our_vote": (1_658_275_280, 8_503_880, 8_474_281, 1_641_965_632),
    }
    for name, (flops, numel, size, macs) in expect.items():
        arch = space.parse(pair(name))
        assert (space.flops(arch), space.params(arch), space.model_size(arch), space.macs(arch)) == \
            (flops, numel, size, macs), name
    # the three un-suffixed searched genotypes are above the released 600M limit
    assert all(space.flops(pair(n)) > LIMIT for n in ("EA_our_vote", "RL_our_vote", "R_our_vote"))


def _meta_build(space, arch, num_classes=1000) -> MobileNetV2Network:
    with torch.device("meta"):  # shapes only: no memory, no arithmetic
        return space.build(arch, num_classes)


def _hooked_macs(net: nn.Module, resolution: int) -> int:
    """Conv2d and Linear MACs counted by forward hooks during one forward (independent of the formula)."""
    total = [0]

    def count(m, args, out):
        if isinstance(m, nn.Conv2d):
            total[0] += out.shape[1] * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1] \
                * out.shape[2] * out.shape[3]
        else:
            total[0] += m.in_features * m.out_features

    handles = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 3, resolution, resolution, device=next(net.parameters()).device))
    finally:
        for h in handles:
            h.remove()
    return total[0]


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_the_built_network_has_the_counted_macs_and_parameters(space, name):
    g = GOLDEN[name]
    net = _meta_build(space, pair(name))
    assert sum(p.numel() for p in net.parameters()) == g["numel"]
    assert _hooked_macs(net, g["resolution"]) == g["conv_linear_macs"]


def test_macs_and_params_follow_the_geometry_on_odd_resolutions_and_off_grid_widths(space):
    rng = np.random.default_rng(3)
    for t in range(6):
        arch = space.sample(rng).with_resolution(int(rng.integers(97, 333)))
        if t % 2:
            arch = arch.replace_block(int(rng.integers(7)), bottleneck=int(rng.integers(9, 99)), sub_layers=3)
        net = _meta_build(space, arch, 10)
        assert sum(p.numel() for p in net.parameters()) == space.params(arch, 10)
        assert _hooked_macs(net, arch.resolution) == space.macs(arch, 10), arch.to_str()


def test_the_official_flops_by_hand_with_the_projection_quirk(space):
    """A tiny structure counted by hand with the released rules (spec section 3)."""
    arch = space.read("SuperConvK3BNRELU(3,8,2,1)SuperResIDWE1K3(8,8,2,8,1)SuperConvK1BNRELU(8,8,1,1)@32")
    stem = 3 * 8 * 9 * 32 ** 2 // 4 + 16 ** 2 * 8                      # conv 3x3 s2, BN at 16x16
    m, se = 8, 2                                                          # M = round8(8 * 1), SE 8 -> 2
    block = (8 * m * 16 ** 2 + 16 ** 2 * m                                # expand + BN at 16x16
             + m * 9 * 16 ** 2 // 4 + 8 ** 2 * m                          # depthwise s2 + BN at 8x8
             + 2 * m * se + m + m * 8 ** 2                                # SE
             + m * 8 * 8 ** 2 + 8 ** 2 * 8)                               # project + BN
    projection = 8 * 8 * (8 / 2) ** 2 + (8 / 2) ** 2 * 8                  # on (R_out / s)**2: 4x too low
    head = 8 * 8 * 8 ** 2 + 8 ** 2 * 8
    assert space.flops(arch, num_classes=1) == stem + block + projection + head + 8 == 91824.0
    # the geometrically correct projection (conv + bias) has 4x the positions
    assert space.macs(arch, 1) - (3 * 8 * 9 * 16 ** 2 + 8 * m * 16 ** 2 + m * 9 * 8 ** 2 + 2 * m * se
                                 + m * 8 * 8 ** 2 + 8 * 8 * 8 ** 2 + 8) == 8 * 8 * 8 ** 2
    # on the released genotypes that makes the official count 0.8-1.1% below the corrected one
    for name in ("EA_our_vote_600M", "MobileNetV2", "RL_our_vote_600M", "EA_our_vote"):
        a = space.parse(pair(name))
        res, missing = a.resolution // 2, 0.0
        for b in a.blocks:
            out = res // b.stride
            missing += (b.in_channels * b.out_channels + b.out_channels) * (out ** 2 - (out / b.stride) ** 2)
            res = out
        assert 0.0075 < missing / (space.flops(a) + missing) < 0.011, name


# ------------------------------------------------------------------------------------------------
# the network


def test_build_and_forward_at_320(space):
    arch = space.parse(pair("EA_our_vote_600M"))
    net = space.build(arch, 1000, seed=0)
    x = torch.randn(2, 3, 320, 320, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = net.eval()(x)
    assert out.shape == (2, 1000) and torch.isfinite(out).all()
    assert sum(p.numel() for p in net.parameters()) == EA600["numel"]
    # SE in every sub-layer, BN eps 1e-3 everywhere, a projection with bias + BN on every first sub-layer
    assert sum(isinstance(m, SqueezeExcite) for m in net.modules()) == arch.sub_layers == 26
    assert {m.eps for m in net.modules() if isinstance(m, nn.BatchNorm2d)} == {1e-3}
    for i, block in enumerate(net.blocks[1:-1], 1):
        layers = list(block.layers)
        assert len(layers) == arch.blocks[i - 1].sub_layers
        proj = layers[0].shortcut
        assert isinstance(proj[0], nn.Conv2d) and proj[0].bias is not None and isinstance(proj[1], nn.BatchNorm2d)
        assert proj[0].stride == (arch.blocks[i - 1].stride,) * 2
        assert all(layer.shortcut is None for layer in layers[1:])
        assert layers[0].depthwise.groups == arch.blocks[i - 1].mid_channels
    assert net.classifier.in_features == 1264 and net.classifier.bias is not None


def test_the_relu_follows_the_residual_addition():
    torch.manual_seed(0)
    layer = InvertedResidual(8, 8, 16, 3, 1, project=False).eval()
    x = torch.randn(2, 8, 6, 6)
    with torch.no_grad():
        body = layer.bn3(layer.project(layer.se(layer.relu2(layer.bn2(layer.depthwise(
            layer.relu1(layer.bn1(layer.expand(x)))))))))
        assert torch.equal(layer(x), torch.relu(body + x))


def test_any_input_size_is_resized_to_the_resolution(space):
    net = space.build(pair("MobileNetV2"), 10, seed=1).eval()
    seen = []
    handle = net.blocks[0].conv.register_forward_hook(lambda m, a, o: seen.append(tuple(a[0].shape)))
    try:
        with torch.no_grad():
            assert net(torch.randn(1, 3, 40, 56)).shape == (1, 10)
    finally:
        handle.remove()
    assert seen == [(1, 3, 224, 224)]
    small = spaces.get_space("mobilenetv2", resize=False).build(pair("MobileNetV2"), 10, seed=1)
    assert small.resize is False and small(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_build_is_seeded_and_leaves_the_global_rng_alone(space):
    torch.manual_seed(5)
    before = torch.random.get_rng_state()
    a, b = (space.build(pair("RL_our_vote_600M"), 10, seed=3) for _ in range(2))
    c = space.build(pair("RL_our_vote_600M"), 10, seed=4)
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(p, q) for p, q in zip(a.parameters(), c.parameters()))


def test_the_response_points_official_and_paper(space):
    arch = space.parse(pair("EA_our_vote_600M"))
    net = _meta_build(space, arch)
    official = space.response_modules(net, "official")
    assert len(official) == arch.sub_layers == EA600["official_relu_hooks"] == 26
    assert all(isinstance(p.module, nn.ReLU) and p.name.endswith(".se.relu") and p.activation == "input"
               for p in official)
    # block i (1..7) is weighting layer i, so the 2**layer weighting gives it 2**i, as released
    assert Counter(p.layer for p in official) == {i: b.sub_layers for i, b in enumerate(arch.blocks, 1)}
    paper = space.response_modules(net, "paper")
    relus = [m for m in net.modules() if isinstance(m, nn.ReLU)]
    assert len(paper) == len(relus) == 2 + 4 * arch.sub_layers
    assert {p.layer for p in paper} == set(range(9)) and space.num_layers(net) == 9
    assert max(p.layer for p in paper) < space.num_layers(net)
    with pytest.raises(TypeError):
        space.response_modules(nn.Sequential(nn.ReLU()), "paper")
    with pytest.raises(ValueError, match="convention"):
        space.response_modules(net, "other")


def test_the_proxies_report_the_space_accounting_and_read_its_responses():
    space = spaces.get_space("mobilenetv2", resize=False)  # at the input's size: a quick pass
    arch = space.parse(pair("RL_our_vote_600M"))
    net = space.build(arch, 10, seed=0)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(4, 3, 64, 64, generator=g), torch.randint(0, 10, (4,), generator=g)
    out = proxies.compute(["flops", "params", "wrcor", "wrcor_official"], net, x, y, space=space)
    assert out["flops"] == space.flops(arch, 10) / 1e6  # the released get_FLOPs, not the hook count
    assert out["params"] == space.params(arch, 10) / 1e6 == sum(p.numel() for p in net.parameters()) / 1e6
    assert math.isfinite(out["wrcor"]) and math.isfinite(out["wrcor_official"])


# ------------------------------------------------------------------------------------------------
# sampling and mutation as released


def _on_grid(space, arch) -> None:
    assert space.parse(arch.to_str()) == arch  # a member: every width on its grid, ranges, 4 stride-2 blocks
    assert all(w % 8 == 0 and lo <= w <= hi for w, (lo, hi) in zip(arch.widths, C_RANGES))
    assert sum(s == 2 for s in arch.strides) == 4


def test_200_samples_under_the_released_limit(space):
    rng = np.random.default_rng(42)
    rejected = 0
    for _ in range(200):
        arch = space.sample(rng, flops_max=LIMIT)
        rejected += space.last_rejections
        assert space.flops(arch) <= LIMIT
        _on_grid(space, arch)
    # spec: about 41% of raw draws pass 600M
    assert 0.3 < 200 / (200 + rejected) < 0.55
    a = space.sample_counted(np.random.default_rng(7), flops_max=LIMIT)
    b = space.sample_counted(np.random.default_rng(7), flops_max=LIMIT)
    assert a == b and a.rejections >= 0


def test_samples_without_a_limit_follow_the_released_rounding(space):
    rng = np.random.default_rng(0)
    draws = [space.sample(rng) for _ in range(3000)]
    assert space.last_rejections == 0
    c0 = Counter(a.stem_channels for a in draws)
    # uniform on 16..48, then round(x/8)*8 with halves to even: 16 <- 16..20, 24 <- 21..27, 32 <- 28..36, ...
    for width, n in {16: 5, 24: 7, 32: 9, 40: 7, 48: 5}.items():
        assert abs(c0[width] / len(draws) - n / 33) < 0.03, (width, c0)
    assert Counter(a.resolution for a in draws).keys() == {192, 224, 256, 288, 320}
    assert all(sum(s == 2 for s in a.strides) == 4 for a in draws)


def test_mutate_as_released(space):
    rng = np.random.default_rng(1)
    parents = [space.sample(rng, flops_max=LIMIT) for _ in range(20)]
    for t in range(200):
        parent = parents[t % len(parents)]
        child = space.mutate(parent, rng, flops_max=LIMIT)
        assert space.flops(child) <= LIMIT
        _on_grid(space, child)
        assert child.strides == parent.strides
        assert child.widths[7:] == parent.widths[7:]  # C7, C8
        changed = [i for i, (a, b) in enumerate(zip(parent.blocks, child.blocks))
                   if (a.expansion, a.kernel) != (b.expansion, b.kernel)]
        assert len(changed) == 1
        i = changed[0]
        # only block i (its Cin, B, L, e, k), the previous element's Cout and the resolution move
        for j, (a, b) in enumerate(zip(parent.blocks, child.blocks)):
            if j not in (i - 1, i):
                assert a == b
        if i > 0:
            prev_a, prev_b = parent.blocks[i - 1], child.blocks[i - 1]
            assert (prev_a.expansion, prev_a.kernel, prev_a.in_channels, prev_a.bottleneck, prev_a.sub_layers) == \
                (prev_b.expansion, prev_b.kernel, prev_b.in_channels, prev_b.bottleneck, prev_b.sub_layers)
        else:
            assert child.stem_channels == child.blocks[0].in_channels


def test_a_limit_that_cannot_be_met_is_a_clear_error(space):
    rng = np.random.default_rng(0)
    with pytest.raises(FlopsLimitError, match="below the smallest official FLOPs"):
        space.sample(rng, flops_max=space.min_flops - 1)
    tight = spaces.get_space("mobilenetv2")
    tight.max_redraws = 5
    with pytest.raises(FlopsLimitError, match="in 6 draws"):
        tight.sample(rng, flops_max=space.min_flops)
    with pytest.raises(ValueError, match="flops_max"):
        space.sample(rng, flops_max=float("nan"))


# ------------------------------------------------------------------------------------------------
# validation


BASE = pair("MobileNetV2")[0]


@pytest.mark.parametrize("text, fragment", [
    (BASE.replace("SuperResIDWE6K3(16,24", "SuperResIDWE3K3(16,24"), "unknown block type 'SuperResIDWE3K3'"),
    (BASE.replace("SuperResIDWE6K3(16,24", "SuperResIDWE6K9(16,24"), "k in [3, 5, 7]"),
    (BASE.replace("SuperResIDWE1K3(32,16,1,32,1)", "SuperConvK3BNRELU(32,16,1,1)"), "unknown block type"),
    (BASE.replace("SuperResIDWE6K3(160,320,1,160,1)", "SuperResIDWE6K3(160,320,1,160,1)"
                  "SuperResIDWE6K3(320,320,1,160,1)"), "7 SuperResIDWE blocks"),
    (BASE.replace("(16,24,2,16,2)", "(16,30,2,16,2)").replace("(24,32,2,24,3)", "(30,32,2,24,3)"),
     "C2 (block 2's output width) = 30"),
    (BASE.replace("SuperConvK3BNRELU(3,32,2,1)", "SuperConvK3BNRELU(3,56,2,1)")
     .replace("(32,16,1,32,1)", "(56,16,1,32,1)"),
     "C0 (the stem's output width) = 56 is not allowed: a multiple of 8 in [16, 48]"),
    (BASE.replace("(16,24,2,16,2)", "(24,24,2,16,2)"), "Cin must equal the previous Cout"),
    (BASE.replace("(64,96,1,64,3)", "(64,96,3,64,3)"), "stride 3 is not allowed"),
    (BASE.replace("(64,96,1,64,3)", "(64,96,2,64,3)"),
     "exactly 4 stride-2 blocks (output stride 32 with the stem), got 5 (blocks [2, 3, 4, 5, 6])"),
    (BASE.replace("(64,96,1,64,3)", "(64,96,1,64,9)"), "L5 (block 5's sub-layers) = 9 is not allowed: 2..6"),
    (BASE.replace("(32,64,2,32,4)", "(32,64,2,36,4)"), "B4 (block 4's bottleneck width) = 36"),
    (BASE.replace("SuperResIDWE1K3(32,16,1,32,1)", "SuperResIDWE1K3(32,16,1,32)"), "takes 5 integers"),
    (BASE.replace("SuperResIDWE1K3(32,16,1,32,1)", "SuperResIDWE1K3(32,16,x,32,1)"), "malformed arguments"),
    (BASE[:-1], "malformed structure string"),
    (BASE.replace("SuperConvK3BNRELU(3,32,2,1)", ""), "must start with the stem"),
    (BASE.replace("SuperConvK1BNRELU(320,1280,1,1)", ""), "must end with the head"),
    (BASE.replace("SuperConvK1BNRELU(320,", "SuperConvK1BNRELU(32,"), "head's input width 32"),
])
def test_bad_architectures_say_what_is_wrong(space, text, fragment):
    with pytest.raises(InvalidArchitectureError) as err:
        space.parse(f"{text}@224")
    assert fragment in str(err.value)


@pytest.mark.parametrize("arch, fragment", [
    (f"{BASE}@200", "resolution 200 is not allowed: one of [192, 224, 256, 288, 320]"),
    (f"{BASE}@big", "the resolution after '@' must be a positive integer"),
    (BASE, "no resolution"),
    ((BASE, "224"), "the resolution must be an integer"),
    ("not an architecture", "no resolution"),
    (42, "cannot read a MobileNetV2 architecture from int"),
    (None, "cannot read a MobileNetV2 architecture from NoneType"),
])
def test_bad_forms_and_resolutions(space, arch, fragment):
    with pytest.raises(InvalidArchitectureError) as err:
        space.parse(arch)
    assert fragment in str(err.value)


def test_out_of_space_genotypes_are_readable_but_not_members(space):
    zen = pair("zennet_flops600M_res256")
    with pytest.raises(InvalidArchitectureError, match="C3"):
        space.parse(zen)
    arch = space.read(zen)
    assert arch.blocks[6].sub_layers == 10 and space.flops(arch) == GOLDEN["zennet_flops600M_res256"]["flops"]
    with pytest.raises(InvalidArchitectureError):
        space.to_str(arch)
    assert arch.to_str() == f"{zen[0]}@{zen[1]}"


def test_values_are_immutable_and_checked():
    block = MBBlock(6, 3, 16, 24, 2, 16, 2)
    with pytest.raises(AttributeError):
        block.stride = 1  # type: ignore[misc]
    with pytest.raises(InvalidArchitectureError, match="positive"):
        MBBlock(6, 3, 16, 24, 2, 16, 0)
    assert block.mid_channels == 96 and MBBlock(1, 3, 8, 8, 1, 244, 1).mid_channels == 240  # 30.5 -> 30 (to even)


# ------------------------------------------------------------------------------------------------
# the rest of the protocol


def test_the_space_protocol_size_and_no_benchmark(space):
    assert isinstance(space, Space)
    assert space.size == 5 ** 4 * 7 * 23 ** 2 * 49 * 177 * (5 ** 4 * 7 * 23 ** 2) * (2 * 2 * 2 * 3 * 5 * 5 * 2) \
        * 12 ** 7 * 35 * 5
    with pytest.raises(OverflowError, match="use MobileNetV2Space.size"):
        len(space)
    with pytest.raises(NoBenchmarkTableError, match="no benchmark table"):
        space.enumerate()
    with pytest.raises(KeyError):
        space.index(pair("MobileNetV2"))
    bench = space.benchmark
    assert isinstance(bench, Benchmark) and bench.available() == [] and len(bench) == 0
    assert pair("MobileNetV2") not in bench and bench.keys() == []
    with pytest.raises(UnknownNameError, match="no ground truth"):
        bench.protocol("imagenet", "val")
    with pytest.raises(UnknownNameError, match="no ground truth"):
        bench.lookup(pair("MobileNetV2"), "imagenet", "val")
    assert bench.key_of(pair("MobileNetV2")) == space.to_str(pair("MobileNetV2"))
    assert bench.published_search("imagenet") == [] and bench.suite_zero_reference("imagenet") is None


def test_choices_round_trip_and_invalid_combinations(space):
    decisions = space.choices()
    assert [len(o) for n, o in decisions if n.startswith("C")] == [5, 5, 5, 5, 7, 23, 23, 49, 177]
    rng = np.random.default_rng(0)
    for _ in range(30):
        arch = space.sample(rng)
        assert space.from_choices(space.to_choices(arch)) == arch
    idx = list(space.to_choices(pair("MobileNetV2")))
    assert space.from_choices(idx) == space.parse(pair("MobileNetV2"))
    dup = idx[:-1] + [idx[-2]]
    with pytest.raises(InvalidArchitectureError, match="distinct"):
        space.from_choices(dup)
    with pytest.raises(InvalidArchitectureError, match="out of range"):
        space.from_choices(idx[:-1] + [7])
    with pytest.raises(InvalidArchitectureError, match="above flops_max"):
        space.from_choices(space.to_choices(pair("EA_our_vote")), flops_max=LIMIT)
    with pytest.raises(InvalidArchitectureError):
        space.from_choices([0])
