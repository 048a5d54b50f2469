"""SWAP / regularised SWAP (proxies.swap) against the released code, and their contract.

Golden: ``tests/fixtures/swap_official.json`` holds what the authors' code (github.com/pym1024/SWAP
@ f6049f7, ``src/metrics/swap.py`` unmodified) gives on AZ-NAS's NB201 ``TinyNetwork`` (its xautodl,
unmodified) for 5 NB201 architectures, 16 real CIFAR-10 images (the first 16 of the offline
subset, NB201 normalisation; the released train transform's crop without padding and channel
choice are the identity on 32x32x3 images) and 3 repeats after ``torch.manual_seed(seed)``.  The
one patch the released code needed: ``count_parameters`` summed a generator with ``np.sum``, a
TypeError on numpy >= 2 (now a list).  ``correlation.py``'s per-network loop was re-typed (it
reads a DARTS csv and never seeds): SWAP(model, inputs, seed), then per repeat
``net.apply(network_weight_gaussian_init)``, ``reinit``, ``forward``, ``clear``.  The
``swap_init_none`` value is the released ``SWAP.forward()`` once on the project network's own
weights (``space.build(arch, 10, seed=build_seed)``), loaded into TinyNetwork by position.
SWAP is an integer count averaged, so the values agree exactly.  Scratch and script:
/work/golden/swap/run_golden.py (outside the project).
"""
from __future__ import annotations

import json
import math
import os

import pytest
import torch
from torch import nn

import proxies
import spaces
from conftest import needs_data
from proxies.swap import RegularisedSWAP, SWAP, capacity, count_parameters_k, saturation

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "swap_official.json")
MIXED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
SMALL = spaces.get_space("nb201", channels=4, cells_per_stage=1)


def small_net(arch: str = MIXED, seed: int = 0) -> nn.Module:
    return SMALL.build(arch, 10, seed=seed)


def noise(n: int = 16, hw: int = 16, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, hw, hw, generator=torch.Generator().manual_seed(seed))


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def test_registration():
    for name, cls in (("swap", SWAP), ("swap_reg", RegularisedSWAP)):
        info = proxies.get_proxy(name)
        assert info.higher_is_better and not info.needs_labels and info.bn
        assert info.params["repeats"] == 32 and info.params["init"] == "normal" and info.params["batch"] == 16
        assert type(info.create()) is cls
    assert {"mu", "sigma"} <= set(proxies.get_proxy("swap_reg").params)
    with pytest.raises(ValueError, match="init"):
        proxies.get_proxy("swap(init=kaiming)")
    with pytest.raises(ValueError, match="repeats"):
        proxies.get_proxy("swap(repeats=0)")
    with pytest.raises(ValueError, match="sigma"):
        proxies.get_proxy("swap_reg(sigma=0.0)")


@needs_data
def test_matches_the_released_code():
    from harness import data
    fixture = json.load(open(FIXTURE))
    x, _ = data.batch("cifar10", fixture["batch"], seed=None, sampling="first")
    nb201 = spaces.get_space("nb201")
    for row in fixture["rows"]:
        net = nb201.build(row["arch"], 10, seed=row["build_seed"])
        r = row["repeats"]
        mu, sigma = fixture["provenance"]["regularisation"]["mu"], fixture["provenance"]["regularisation"]["sigma"]
        specs = {"swap": f"swap(repeats={r})", "swap_reg": f"swap_reg(mu={mu}, repeats={r}, sigma={sigma})",
                 "swap_init_none": "swap(init=none)"}
        got = proxies.compute(list(specs.values()), net, x, seed=row["seed"])
        for key, spec in specs.items():
            assert rel(got[spec], row["official"][key]) <= 1e-5, (row["arch"], key, got[spec], row["official"][key])
            assert got[spec] == row["official"][key]  # an averaged integer count: exact
        assert count_parameters_k(net) == row["params_k"]
        assert capacity(net, x)["bound"] == row["bound"]


def test_regularised_is_swap_times_the_gaussian_factor():
    net, x = small_net(), noise()
    p_k = sum(p.numel() for p in net.parameters()) / 1000  # no "auxiliary" parameter here
    mu, sigma = p_k - 1.5, 4.0
    got = proxies.compute(["swap(repeats=2)", f"swap_reg(mu={mu}, repeats=2, sigma={sigma})"], net, x, seed=3)
    plain = got["swap(repeats=2)"]
    assert 0 < plain == int(plain * 2) / 2
    expected = plain * math.exp(-(1.5 ** 2) / 4.0)
    assert rel(got[f"swap_reg(mu={mu}, repeats=2, sigma={sigma})"], expected) < 1e-12


def test_saturates_at_two_to_the_batch_on_a_wide_net():
    wide = nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.Flatten(),
                         nn.Linear(64 * 256, 10))
    x = noise(16)
    for b in (4, 6):
        value = proxies.compute(f"swap(batch={b}, repeats=2)", wide, x, seed=0)[f"swap(batch={b}, repeats=2)"]
        cap = capacity(wide, x, batch=b)
        assert cap == {"neurons": 64 * 256, "batch": b, "bound": 2 ** b}
        assert value == 2 ** b and saturation(value, cap["bound"]) == 1.0
    # fewer neurons than 2**B: the bound is N, and a net below it is unsaturated
    narrow = nn.Sequential(nn.Conv2d(3, 1, 3, padding=1), nn.ReLU(), nn.AvgPool2d(4), nn.ReLU())
    cap = capacity(narrow, x)
    assert cap == {"neurons": 256 + 16, "batch": 16, "bound": 272}
    value = proxies.compute("swap(repeats=2)", narrow, x, seed=0)["swap(repeats=2)"]
    assert 0 < saturation(value, cap["bound"]) <= 1.0


def test_seeded_and_independent_of_the_global_rng():
    net, x = small_net(), noise()
    state = torch.get_rng_state()
    a = proxies.compute("swap(repeats=2)", net, x, seed=5)["swap(repeats=2)"]
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(1234)
    assert proxies.compute("swap(repeats=2)", net, x, seed=5)["swap(repeats=2)"] == a
    assert proxies.compute("swap(repeats=2)", net, x, seed=6)["swap(repeats=2)"] != a
    # init=normal ignores the caller's weights; init=none reads them and needs one pass only
    assert proxies.compute("swap(repeats=2)", small_net(seed=9), x, seed=5)["swap(repeats=2)"] == a
    none1 = proxies.compute("swap(init=none, repeats=1)", net, x)["swap(init=none, repeats=1)"]
    assert proxies.compute("swap(init=none, repeats=7)", net, x, seed=4)["swap(init=none, repeats=7)"] == none1
    assert proxies.compute("swap(init=none)", small_net(seed=9), x)["swap(init=none)"] != none1


def test_first_batch_images_only():
    net, x = small_net(), noise(20)
    y = torch.cat([x[:16], noise(4, seed=8)])
    assert (proxies.compute("swap(repeats=1)", net, x, seed=0) == proxies.compute("swap(repeats=1)", net, y, seed=0))


def test_no_relu_is_an_error_outcome():
    x = noise(8)
    no_relu = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Tanh())
    o = proxies.compute_outcomes(["swap", "swap_reg"], no_relu, x)
    for name in ("swap", "swap_reg"):
        assert o[name].status == "error" and "has no nn.ReLU" in o[name].message and math.isnan(o[name].value)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 256, 8), nn.ReLU())  # ReLUs, but none on a 4-D input
    o = proxies.compute_outcomes("swap(repeats=1)", mlp, x)["swap(repeats=1)"]
    assert o.status == "error" and "4-D" in o.message
    with pytest.raises(proxies.ProxyError, match="nn.ReLU"):
        proxies.compute("swap(repeats=1)", no_relu, x)
    with pytest.raises(ValueError, match="nn.ReLU"):
        capacity(no_relu, x)


@pytest.mark.parametrize("mode", ["train", "eval"])
def test_callers_network_is_untouched(mode):
    net = small_net(seed=2).train(mode == "train")
    snapshot = {k: v.clone() for k, v in net.state_dict().items()}
    x = noise()
    x_copy = x.clone()
    proxies.compute(["swap(repeats=2)", "swap_reg(repeats=2)"], net, x, seed=0)
    capacity(net, x)
    state = net.state_dict()
    assert list(state) == list(snapshot) and all(torch.equal(state[k], v) for k, v in snapshot.items())
    assert all(p.grad is None for p in net.parameters())
    assert all(m.training == (mode == "train") for m in net.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert torch.equal(x, x_copy)


@pytest.mark.parametrize("space, kw", [("nb101", dict(stem_channels=8, num_stacks=1, cells_per_stack=1)),
                                       ("darts", dict(init_channels=4, layers=2))])
def test_other_spaces(space, kw):
    import numpy as np
    sp = spaces.get_space(space, **kw)
    net = sp.build(sp.sample(np.random.default_rng(0)), 10, seed=0)
    x = noise(16)
    value = proxies.compute("swap(repeats=1)", net, x, seed=0)["swap(repeats=1)"]
    assert 0 < value <= capacity(net, x)["bound"]


@pytest.mark.parametrize("b", [16, 70])
def test_packed_count_equals_the_released_unique(b):
    """The packed count (one int64 word per 63 samples) is the released
    ``torch.unique(sign(A).T, dim=0)`` count."""
    from proxies.swap import distinct_patterns, pack_patterns
    g = torch.Generator().manual_seed(b)
    a = torch.relu(torch.randn(b, 3000, generator=g))
    a[:, 1000:2000] = a[:, :1000]  # repeated patterns
    a[: b // 2, 2000:2500] = 0.0
    released = torch.unique(torch.sign(a).T, dim=0).shape[0]
    assert distinct_patterns(pack_patterns(a > 0)) == released
