"""TE-NAS's indicators (``ntk_cond``, ``linear_regions``) against the released AZ-NAS code.

Golden values (``fixtures/tenas_official.json``) come from running the released
``NB201/ZeroShotProxy/compute_te_nas_score.py`` and ``NB201/custom/tss_model.py`` (+ its bundled
``xautodl``) of github.com/cvlab-yonsei/AZ-NAS (commit in the fixture's ``provenance``) on the
CPU, one thread, with the settings of ``conftest.py``.  Patches to the official code: none to
its files; at run time ``nn.Module.cuda`` and ``torch.Tensor.cuda`` were replaced by the identity
(the NTK loop calls ``inputs.cuda(device=...)`` even with ``gpu=None``) and ``gpu=None`` was
passed.  No ``symeig -> eigh`` patch was needed: TE-NAS's original ``torch.symeig`` (gone in
torch >= 2) is already ``torch.linalg.eigh`` in the AZ-NAS port.  The trainloader was a
one-element list holding the golden batch (``harness.data.batch("cifar10", 64, sampling="first")``,
its first ``batch_size`` images); the noise came from the global RNG after
``torch.manual_seed(seed)``, drawn right after the NTK (which draws nothing), as in
``compute_nas_score``.

Cases: ``nb201`` — the golden NB201 states of ``../shared/golden`` (the same state dict on both
sides), NTK on the real images and regions on noise; batch 64 is the AZ-NAS setup, and the
conv-heavy architectures at 64 take minutes here (64 backward passes through the whole batch's
graph), so they are marked ``slow`` and also checked at batch 16 in the fast run.  ``tiny`` — the
released counter on a tiny conv net (built after ``torch.manual_seed(init_seed)``) on
``image`` x ``image`` noise, where codes have few units and the count does not saturate.
``tinyntk`` — the released NTK on that tiny net (not NB201): any network with weights works.
"""
from __future__ import annotations

import copy
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
from proxies.tenas import count_linear_regions
from spaces.nb201 import load_state_by_position

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "tenas_official.json")
GOLDEN_JSON = os.path.join(GOLDEN, "nb201_reference_scores.json")
GOLDEN_NPZ = os.path.join(GOLDEN, "nb201_reference_states.npz")
needs_golden = pytest.mark.skipif(not (os.path.exists(GOLDEN_JSON) and os.path.exists(GOLDEN_NPZ)),
                                  reason="golden reference files (../shared/golden) not found")
TOL = 1e-5

with open(FIXTURE) as f:
    OFFICIAL = json.load(f)


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def cases(kind: str) -> list:
    return [pytest.param(c, id=f"{c.get('index', c.get('init_seed'))}-n{c['batch_size']}",
                         marks=[pytest.mark.slow] if c.get("slow") else [])
            for c in OFFICIAL["cases"] if c["kind"] == kind]


def tiny_net(init_seed: int, channels: int) -> nn.Module:
    """The fixture's tiny conv net, built as the golden run built it (global RNG, restored after)."""
    with torch.random.fork_rng():
        torch.manual_seed(init_seed)
        return nn.Sequential(nn.Conv2d(3, channels, 1), nn.BatchNorm2d(channels), nn.ReLU(),
                             nn.Conv2d(channels, channels, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                             nn.Linear(channels, 10))


@pytest.fixture(scope="module")
def golden_batch():
    from harness.data import batch

    x, _ = batch("cifar10", 64, seed=None, sampling="first")
    return x


@pytest.fixture(scope="module")
def golden_state():
    with open(GOLDEN_JSON) as f:
        entries = {a["index"]: a for a in json.load(f)["archs"]}
    arrays = np.load(GOLDEN_NPZ)

    def net(index: int) -> nn.Module:
        entry = entries[index]
        model = spaces.get_space("nb201").build(entry["arch_str"], 10)
        load_state_by_position(model, [arrays[f"a{index}_{j:03d}"] for j in range(len(entry["state_names"]))])
        return model

    return net


# ------------------------------------------------------------------------------------------------
# registry


def test_registered():
    for name in ("ntk_cond", "linear_regions"):
        info = proxies.get_proxy(name)
        assert info.higher_is_better and not info.needs_labels and info.bn
    assert proxies.get_proxy("linear_regions").params == {"batch_size": 0, "count": "fp16", "inputs": "noise",
                                                          "relus": "4d"}
    assert proxies.get_proxy("ntk_cond").params == {"batch_size": 0}
    assert proxies.get_aggregator("te_nas").components == ("ntk_cond", "linear_regions")
    with pytest.raises(ValueError, match="valid"):
        proxies.get_proxy("linear_regions(count=fp32)")
    with pytest.raises(ValueError, match="batch_size"):
        proxies.get_proxy("ntk_cond(batch_size=-1)")


# ------------------------------------------------------------------------------------------------
# golden


@needs_data
@needs_golden
@pytest.mark.parametrize("case", cases("nb201"))
def test_golden_nb201(case, golden_state, golden_batch):
    net = golden_state(case["index"])
    assert net.arch.to_str() == case["arch_str"]
    x = golden_batch[:case["batch_size"]]
    got = proxies.compute(["ntk_cond", "linear_regions"], net, x, seed=case["seed"])
    assert rel(got["ntk_cond"], case["ntk"]) <= TOL, (got, case)
    assert rel(got["linear_regions"], case["linear_region"]) <= TOL, (got, case)


@pytest.mark.parametrize("case", cases("tiny"))
def test_golden_tiny_linear_regions(case):
    net = tiny_net(case["init_seed"], case["channels"])
    x = torch.zeros(case["batch_size"], 3, case["image"], case["image"])  # only its shape is used
    got = proxies.compute(["linear_regions", "linear_regions(count=exact)"], net, x, seed=case["seed"])
    assert rel(got["linear_regions"], case["linear_region"]) <= TOL, (got, case)
    # exact: the number of distinct codes, an integer (the float32 sum of reciprocals can miss it)
    assert got["linear_regions(count=exact)"] == round(case["linear_region"])


@needs_data
@pytest.mark.parametrize("case", cases("tinyntk"))
def test_golden_tiny_ntk(case, golden_batch):
    net = tiny_net(case["init_seed"], case["channels"])
    got = proxies.compute("ntk_cond", net, golden_batch[:case["batch_size"]])["ntk_cond"]
    assert rel(got, case["ntk"]) <= TOL, (got, case)


def test_fixture_records_the_official_setup():
    prov = OFFICIAL["provenance"]
    assert prov["repo"] == "github.com/cvlab-yonsei/AZ-NAS" and len(prov["commit"]) == 40
    nb = [c for c in OFFICIAL["cases"] if c["kind"] == "nb201"]
    assert {c["batch_size"] for c in nb} >= {64} and len({c["index"] for c in nb}) >= 4
    # the all-none cell: every gradient is zero, 0/0 -> NaN -> the released 1e5
    assert any(c["ntk"] == -1e5 and c["linear_region"] == 1.0 for c in nb)


# ------------------------------------------------------------------------------------------------
# saturation, fp16 counting


@needs_golden
def test_linear_regions_saturate_at_the_batch_size(golden_state):
    """On whole 32x32 images a C=16 NB201 net has ~9e5 ReLU units per sample: every noise sample
    gets its own pattern, so #LR is the batch size whatever the seed; the float16 count's matrix
    overflows (entries > 65,504 -> inf) but the count, which only asks "zero or not", is exact."""
    net = golden_state(1)
    for n, seed in ((64, 0), (16, 1)):
        got = proxies.compute(["linear_regions", "linear_regions(count=exact)"], net, torch.zeros(n, 3, 32, 32),
                              seed=seed)
        assert got == {"linear_regions": float(n), "linear_regions(count=exact)": float(n)}


def test_fp16_overflow_does_not_change_the_count():
    g = torch.Generator().manual_seed(0)
    d = 300_000  # a(1-b)^T of two random codes counts ~75,000 units > 65,504 (float16 max)
    codes = (torch.rand(6, d, generator=g) > 0.5).float()
    codes[3] = codes[1]
    codes[5] = codes[1]
    m = torch.matmul(codes.half(), (1 - codes).T.half())
    assert torch.isinf(m).any()  # the released matmul overflows
    # the same count (up to the float32 sum of 1/k: 3 x (1/3) + 1 = 3.9999998)
    assert float(count_linear_regions(codes)) == pytest.approx(4.0, rel=1e-6)
    assert float(count_linear_regions(codes, "exact")) == 4.0


def test_count_of_identical_and_distinct_codes():
    codes = torch.tensor([[0., 0.], [0., 0.], [0., 0.], [1., 0.], [0., 1.], [1., 1.], [1., 1.]])
    assert float(count_linear_regions(codes)) == pytest.approx(4.0, abs=1e-6)
    assert float(count_linear_regions(codes, "exact")) == 4.0
    with pytest.raises(ValueError, match="valid"):
        count_linear_regions(codes, "fp32")


# ------------------------------------------------------------------------------------------------
# seeds, parameters, errors, the caller's network


def test_seed_reproduces_the_global_rng_draw():
    net = tiny_net(0, 1)
    x = torch.zeros(64, 3, 2, 2)
    a = proxies.compute("linear_regions", net, x, seed=11)["linear_regions"]
    assert a == proxies.compute("linear_regions", net, x, seed=11)["linear_regions"]
    values = {proxies.compute("linear_regions", net, x, seed=s)["linear_regions"] for s in range(6)}
    assert len(values) > 1  # the noise depends on the seed
    # seed s draws what torch.manual_seed(s) + torch.randn draws (the released collector)
    with torch.random.fork_rng():
        torch.manual_seed(11)
        z = torch.randn(64, 3, 2, 2)
    assert a == proxies.compute("linear_regions(inputs=real)", net, z)["linear_regions(inputs=real)"]


def test_batch_size_parameter():
    net = tiny_net(8, 2)
    x = torch.randn(12, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    assert (proxies.compute("ntk_cond(batch_size=5)", net, x)["ntk_cond(batch_size=5)"]
            == proxies.compute("ntk_cond", net, x[:5])["ntk_cond"])
    small = proxies.compute("linear_regions", tiny_net(0, 1), torch.zeros(5, 3, 2, 2), seed=3)["linear_regions"]
    assert proxies.compute("linear_regions(batch_size=5)", tiny_net(0, 1), torch.zeros(64, 3, 2, 2),
                           seed=3) == {"linear_regions(batch_size=5)": small}
    out = proxies.compute_outcomes(["ntk_cond(batch_size=20)"], net, x)["ntk_cond(batch_size=20)"]
    assert out.status == "error" and "batch_size=20" in out.message


def test_error_outcomes():
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    no_relu = nn.Sequential(nn.Conv2d(3, 2, 3), nn.Flatten(), nn.Linear(72, 10))
    out = proxies.compute_outcomes(["linear_regions"], no_relu, x)["linear_regions"]
    assert out.status == "error" and "nn.ReLU" in out.message
    relu6 = nn.Sequential(nn.Conv2d(3, 2, 3), nn.ReLU6(), nn.Flatten(), nn.Linear(72, 10))
    assert proxies.compute_outcomes(["linear_regions"], relu6, x)["linear_regions"].status == "error"
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(192, 8), nn.ReLU(), nn.Linear(8, 10))
    out = proxies.compute_outcomes(["linear_regions"], mlp, x)["linear_regions"]
    assert out.status == "error" and "4-D" in out.message and "relus=all" in out.message
    assert 1.0 <= proxies.compute("linear_regions(relus=all)", mlp, x)["linear_regions(relus=all)"] <= 4.0

    class NoWeights(nn.Module):
        def __init__(self):
            super().__init__()
            self.scale = nn.Parameter(torch.ones(1))

        def forward(self, z):
            return z.flatten(1)[:, :10] * self.scale

    out = proxies.compute_outcomes(["ntk_cond"], NoWeights(), x)["ntk_cond"]
    assert out.status == "error" and "weight" in out.message
    with pytest.raises(proxies.ProxyError):
        proxies.compute("ntk_cond", NoWeights(), x)


def test_callers_network_is_unmodified():
    net = tiny_net(8, 2)
    net.eval()
    before = copy.deepcopy(net.state_dict())
    x = torch.randn(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    got = proxies.compute(["ntk_cond", "linear_regions"], net, x, seed=1)
    assert all(math.isfinite(v) for v in got.values())
    assert not net.training and all(not m.training for m in net.modules())
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    assert all(p.grad is None for p in net.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
