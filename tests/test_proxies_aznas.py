"""AZ-NAS's expressivity, progressivity and trainability (proxies/aznas.py) against the official
scorer's values, seeds, degenerate cells, unsupported networks and the caller's network.

Golden values: ``tests/fixtures/aznas_official.json``, produced by the authors' released code
(github.com/cvlab-yonsei/AZ-NAS @ 5e6683a, ``NB201/ZeroShotProxy/compute_az_nas_score.py`` on
``NB201/custom/tss_model.py``'s TinyNetwork, C=16, N=5) on the CPU after ``torch.manual_seed(seed)``
(its own Kaiming re-initialisation, Gaussian noise input, Rademacher probes).  The one patch the
official code needed: ``nn.Module.cuda`` shimmed to the identity (the scorer calls ``model.cuda()``),
with ``gpu=None`` so the scorer picks the CPU; the scorer itself is unchanged.  The fixture's
``provenance`` field says how it was produced.  The harness builds the same architectures with
``spaces.get_space("nb201")`` (any weights: they are re-initialised) and must agree to 1e-5
relative (it agrees bit for bit on this CPU); -inf must be -inf.
"""
from __future__ import annotations

import copy
import doctest
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import proxies
import spaces
import proxies.aznas as aznas_module
from proxies.aznas import AZTrainability, az_nas_scores
from proxies.probe import run_pass

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "aznas_official.json").read_text())
NAMES = ["az_expressivity", "az_progressivity", "az_trainability"]
NB201 = spaces.get_space("nb201")
SMALL = spaces.get_space("nb201", channels=4, cells_per_stage=1)
OPT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
IDENTITY = "|skip_connect~0|+|none~0|skip_connect~1|+|skip_connect~0|none~1|none~2|"
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
MIXED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
RTOL = 1e-5


def rel(a: float, b: float) -> float:
    if a == b:  # equal infinities included
        return 0.0
    return abs(a - b) / abs(b) if math.isfinite(b) and b != 0 else math.inf


def batch(n: int = 8, size: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------------------
# golden values


@pytest.mark.parametrize("row", FIXTURE["rows"], ids=lambda r: f"{r['arch'][:30]}-s{r['seed']}-b{r['batch_size']}")
def test_matches_the_official_scorer(row):
    assert "5e6683a" in FIXTURE["provenance"] and "nn.Module.cuda" in FIXTURE["provenance"]
    net = NB201.build(row["arch"], FIXTURE["num_classes"], seed=123)
    x = torch.zeros(row["batch_size"], 3, FIXTURE["resolution"], FIXTURE["resolution"])  # noise: only the shape
    got = proxies.compute(NAMES, net, x, seed=row["seed"])
    for name in NAMES:
        want = row[name.removeprefix("az_")]
        assert rel(got[name], want) <= RTOL, (name, got[name], want)


def test_fixture_covers_the_degenerate_cells():
    by = {(r["arch"], r["seed"]): r for r in FIXTURE["rows"]}
    assert by[(IDENTITY, 1)]["trainability"] == -math.inf and math.isfinite(by[(IDENTITY, 1)]["expressivity"])
    assert by[(ALL_NONE, 1)]["expressivity"] == -math.inf and by[(ALL_NONE, 1)]["progressivity"] == -math.inf
    assert math.isfinite(by[(ALL_NONE, 1)]["trainability"])  # zero gradients: 2 - 1/1e-6, not NaN
    assert {r["batch_size"] for r in FIXTURE["rows"]} == {8, 64}


# ------------------------------------------------------------------------------------------------
# registry, doctests


def test_doctests_pass():
    result = doctest.testmod(aznas_module)
    assert result.attempted > 0 and result.failed == 0


def test_registered_metadata():
    for name in NAMES:
        info = proxies.get_proxy(name)
        assert (info.higher_is_better, info.needs_labels, info.bn, info.pass_kind) == (True, False, True, "aznas")
        assert info.params == {"inputs": "noise", "init": "kaiming"}
        assert info.description
    assert proxies.list_proxies("az_*") == sorted(NAMES)
    assert "flops" in proxies.list_proxies()  # the complexity term is the existing proxy
    assert proxies.get_proxy("az_trainability(inputs=real, init=none)").params == {"inputs": "real", "init": "none"}
    with pytest.raises(ValueError, match="'noise'"):
        proxies.get_proxy("az_expressivity(inputs=gaussian)")
    with pytest.raises(ValueError, match="'kaiming'"):
        proxies.get_proxy("az_expressivity(init=xavier)")


# ------------------------------------------------------------------------------------------------
# seeds, inputs, init


def test_seed_reproduces_and_another_differs():
    net, x = SMALL.build(MIXED, 10, seed=1), batch(seed=1)
    a = proxies.compute(NAMES, net, x, seed=3)
    assert proxies.compute(NAMES, net, x, seed=3) == a
    b = proxies.compute(NAMES, net, x, seed=4)
    assert all(a[n] != b[n] for n in NAMES), (a, b)
    assert all(math.isfinite(v) for v in (*a.values(), *b.values()))


def test_noise_kaiming_ignore_weights_and_data_values():
    """The default setup uses only the batch's shape and the architecture: the given weights,
    buffers and input values do not matter."""
    x = batch(seed=2)
    base = proxies.compute(NAMES, SMALL.build(MIXED, 10, seed=2), x, seed=0)
    other = proxies.compute(NAMES, SMALL.build(MIXED, 10, seed=9), x * 5 + 1, seed=0)
    assert other == base
    real = proxies.compute([f"{n}(inputs=real)" for n in NAMES], SMALL.build(MIXED, 10, seed=2), x, seed=0)
    assert list(real.values()) != list(base.values())
    keep = proxies.compute([f"{n}(init=none)" for n in NAMES], SMALL.build(MIXED, 10, seed=2), x, seed=0)
    keep9 = proxies.compute([f"{n}(init=none)" for n in NAMES], SMALL.build(MIXED, 10, seed=9), x, seed=0)
    assert list(keep.values()) != list(keep9.values())  # init=none: the given weights count


def test_one_shared_session_computes_once_and_agrees():
    """If the three ever share a session (one private pass), they compute once, with the same
    values as three separate passes (forward-only for expressivity/progressivity)."""
    net, x = SMALL.build(MIXED, 10, seed=5), batch(seed=5)
    separate = proxies.compute(NAMES, net, x, seed=2)
    calls = []
    probe = copy.deepcopy(net)
    probe.stem.register_forward_hook(lambda m, a, o: calls.append(1))
    out = run_pass({n: proxies.get_proxy(n).create() for n in NAMES}, probe, x, None, pass_kind="aznas", seed=2)
    assert {n: o.value for n, o in out.items()} == separate
    assert len(calls) == 1


# ------------------------------------------------------------------------------------------------
# degenerate cells: recorded, not raised


def test_identity_and_none_cells_give_minus_inf_outcomes():
    x = batch(seed=6)
    ident = proxies.compute_outcomes(NAMES, SMALL.build(IDENTITY, 10, seed=6), x, seed=1)
    assert ident["az_trainability"].value == -math.inf and ident["az_trainability"].status == "inf"
    assert "G_in == G_out" in ident["az_trainability"].message
    assert math.isfinite(ident["az_expressivity"].value)
    assert ident["az_progressivity"].value == 0.0  # the identity cell keeps the entropy
    none = proxies.compute_outcomes(NAMES, SMALL.build(ALL_NONE, 10, seed=6), x, seed=1)
    for n in ("az_expressivity", "az_progressivity"):
        assert none[n].value == -math.inf and none[n].status == "inf", none[n]
        assert "entropy is NaN" in none[n].message
    assert math.isfinite(none["az_trainability"].value)


# ------------------------------------------------------------------------------------------------
# networks without feature stages; the caller's network


class NoCells(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU())
        self.classifier = nn.Linear(4, 10)

    def forward(self, x):
        return self.classifier(self.features(x).mean((2, 3)))


class TwoInputCell(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 1)

    def forward(self, s0, s1):
        return self.conv(s0) + s1


class TwoInputCells(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.cells = nn.ModuleList([TwoInputCell()])

    def forward(self, x):
        s = self.stem(x)
        return self.cells[0](s, s)


def test_network_without_stages_is_an_error_outcome():
    x = batch(n=4, size=8)
    out = proxies.compute_outcomes(NAMES, NoCells(), x)
    for o in out.values():
        assert o.status == "error" and "NoCells" in o.message and "'stem'" in o.message and "'cells'" in o.message
    two = proxies.compute_outcomes(["az_expressivity"], TwoInputCells(), x)["az_expressivity"]
    assert two.status == "error" and "TwoInputCell" in two.message and "2 inputs" in two.message
    with pytest.raises(proxies.ProxyError, match="NoCells"):
        proxies.compute(["az_trainability"], NoCells(), x)


def test_callers_network_is_untouched():
    net = SMALL.build(MIXED, 10, seed=8)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.add_(0.3)
                m.num_batches_tracked.fill_(7)
    net.eval()
    snapshot = {k: v.clone() for k, v in net.state_dict().items()}
    x = batch(seed=8)
    x_copy = x.clone()
    a = proxies.compute(NAMES, net, x, seed=0)
    assert proxies.compute(NAMES, net.train(), x, seed=0) == a  # the caller's mode does not matter
    net.eval()
    for k, v in net.state_dict().items():
        assert torch.equal(v, snapshot[k]), k
    assert all(p.grad is None for p in net.parameters())
    assert all(not m.training for m in net.modules())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in net.modules())
    assert torch.equal(x, x_copy)


def test_scorer_matches_the_definition_on_a_tiny_chain():
    """The scorer on a 2-cell chain against the definition written out directly (init=none,
    inputs=real: no random draws but the Rademacher probes)."""
    torch.manual_seed(0)
    net = nn.Module()
    net.stem = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4))
    net.cells = nn.ModuleList([nn.Sequential(nn.ReLU(), nn.Conv2d(4, 8, 3, stride=2, padding=1)),
                               nn.Sequential(nn.ReLU(), nn.Conv2d(8, 8, 1))])
    x = batch(n=4, size=8, seed=3)
    got = az_nas_scores(copy.deepcopy(net), x, torch.Generator().manual_seed(11), input_kind="real", init="none")

    feats = [net.stem(x)]
    for c in net.cells:
        feats.append(c(feats[-1]))

    def entropy(f):
        z = f.detach().permute(0, 2, 3, 1).reshape(-1, f.shape[1]).double()
        z = z - z.mean(0)
        lam = torch.linalg.eigvalsh(z.T @ z / z.shape[0])
        p = lam / lam.sum()
        return float(-(p * torch.log(p + 1e-8)).sum())

    h = [entropy(f) for f in feats]
    assert float(got["expressivity"]) == pytest.approx(sum(h), rel=1e-5)
    assert float(got["progressivity"]) == pytest.approx(min(h[2] - h[1], h[1] - h[0]), abs=1e-5)
    g = torch.Generator().manual_seed(11)
    scores = []
    for i in (2, 1):  # the last pair first, as the draws go
        g_out = (torch.bernoulli(torch.full_like(feats[i], 0.5), generator=g) - 0.5) * 2
        (g_in,) = torch.autograd.grad(feats[i], feats[i - 1], g_out, retain_graph=True)
        if g_in.shape[2] != g_out.shape[2]:
            g_in = nn.functional.pixel_unshuffle(g_in, g_in.shape[2] // g_out.shape[2])
        a = g_in.permute(0, 2, 3, 1).reshape(-1, g_in.shape[1]).double()
        b = g_out.permute(0, 2, 3, 1).reshape(-1, g_out.shape[1]).double()
        s = float(torch.linalg.svdvals(a.T @ b / b.shape[0]).max())
        scores.append(2 - s - 1 / (s + 1e-6))
    assert float(got["trainability"]) == pytest.approx(sum(scores) / 2, rel=1e-5)
    assert AZTrainability().component == "trainability"
