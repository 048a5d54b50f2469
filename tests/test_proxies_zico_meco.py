"""ZiCo and MeCo against independent references (plain torch + numpy, no Probe)."""
from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import proxies
import spaces
from conftest import needs_data
from proxies.meco import MeCo
from proxies.probe import run_pass
from proxies.zico import ZiCo

MIXED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
SMALL = spaces.get_space("nb201", channels=4, cells_per_stage=1)


def small_net(arch: str = MIXED, seed: int = 0) -> nn.Module:
    return SMALL.build(arch, 10, seed=seed)


def small_batch(n: int = 12, hw: int = 16, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, hw, hw, generator=g), torch.randint(0, 10, (n,), generator=g)


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


class PlainCNN(nn.Module):
    """No ``response_modules``, no cells: any nn.Module must do."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(),
                                  nn.Conv2d(6, 8, 3, stride=2, padding=1), nn.ReLU())
        self.head = nn.Linear(8, 10)

    def forward(self, x):
        return self.head(self.body(x).mean(dim=(2, 3)))


class ChannelMask(nn.Module):
    def __init__(self, mask) -> None:
        super().__init__()
        self.register_buffer("mask", torch.tensor(mask, dtype=torch.float32)[None, :, None, None])

    def forward(self, x):
        return x * self.mask


class PartlyDeadNet(nn.Module):
    """Channel 2 of the masked map is constant (zero): one NaN row/column in its correlation."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU()
        self.mask = ChannelMask([1.0, 1.0, 0.0, 1.0])
        self.head = nn.Linear(4, 10)

    def forward(self, x):
        return self.head(self.mask(self.act(self.conv(x))).mean(dim=(2, 3)))


# ------------------------------------------------------------------------------------------------
# ZiCo


def zico_reference(net, x, y, *, splits=2, accumulate=True, ddof=0, std_of="signed"):
    """(score, skipped layers), the statistics in numpy on float64 copies of the gradients."""
    net = copy.deepcopy(net).train()
    net.zero_grad(set_to_none=True)
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    grads = [[] for _ in layers]
    n = x.shape[0]
    for s in range(splits):
        if not accumulate:
            net.zero_grad(set_to_none=True)
        lo, hi = s * n // splits, (s + 1) * n // splits
        F.cross_entropy(net(x[lo:hi]), y[lo:hi]).backward()
        for rec, m in zip(grads, layers):
            rec.append(m.weight.grad.numpy().astype(np.float64).ravel())
    score, skipped = 0.0, 0
    for rec in grads:
        g = np.stack(rec)
        std = np.std(np.abs(g) if std_of == "abs" else g, axis=0, ddof=ddof)
        keep = np.nonzero(std)[0]
        total = np.sum(np.mean(np.abs(g), axis=0)[keep] / std[keep])
        if total == 0:
            skipped += 1
        else:
            score += math.log(total)
    return score, skipped


def test_zico_registration():
    info = proxies.get_proxy("zico")
    assert (info.higher_is_better, info.needs_labels, info.bn, info.pass_kind) == (True, True, True, "zico")
    assert not proxies.is_shared_pass(info.pass_kind)
    assert info.params == {"splits": 2, "accumulate": True, "ddof": 0, "std_of": "signed"}


@pytest.mark.parametrize("params", [
    {},
    {"accumulate": False},
    {"ddof": 1},
    {"std_of": "abs"},
    {"splits": 3, "accumulate": False},
])
def test_zico_matches_reference(params):
    net = small_net(seed=3)
    x, y = small_batch(seed=3)
    expected, skipped = zico_reference(net, x, y, **params)
    # node 2 of MIXED feeds only a `none` edge: the nor_conv_1x1 edge's conv (one per normal cell,
    # 3 cells) gets an exactly-zero gradient, std 0 everywhere, and is skipped
    assert skipped == 3
    out = run_pass({"zico": ZiCo(**params)}, net, x, y, pass_kind="zico")["zico"]
    assert out.status == "ok" and out.n_skipped == skipped
    assert rel(out.value, expected) <= 1e-10, (out.value, expected)
    if params:  # each parameter really changes the score
        assert rel(out.value, proxies.compute("zico", net, x, y)["zico"]) > 1e-6


def test_zico_on_a_plain_module():
    net = PlainCNN()
    x, y = small_batch(n=8, seed=4)
    expected, skipped = zico_reference(net, x, y)
    assert skipped == 0
    assert rel(proxies.compute("zico", net, x, y)["zico"], expected) <= 1e-10


def test_zico_identical_minibatches():
    """Two identical halves: the per-split gradients are equal (g, g).  With independent
    gradients every std is 0, every layer is skipped and the score is 0; with the released
    code's accumulation the recorded gradients are g and 2g, so mean|.| / std = 1.5 / 0.5 = 3 for
    every element with g != 0 and a layer gives log(3 * nnz)."""
    net = small_net(seed=5)
    half_x, half_y = small_batch(n=6, seed=5)
    x, y = torch.cat([half_x, half_x]), torch.cat([half_y, half_y])
    n_layers = sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules())

    independent = run_pass({"z": ZiCo(accumulate=False)}, net, x, y, pass_kind="zico")["z"]
    assert independent.status == "ok"
    assert independent.value == 0.0
    assert independent.n_skipped == n_layers

    ref = copy.deepcopy(net).train()
    F.cross_entropy(ref(half_x), half_y).backward()
    nnz = [int(torch.count_nonzero(m.weight.grad)) for m in ref.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    expected = sum(math.log(3 * k) for k in nnz if k)
    accumulated = run_pass({"z": ZiCo()}, net, x, y, pass_kind="zico")["z"]
    assert accumulated.n_skipped == sum(k == 0 for k in nnz) == 3
    assert rel(accumulated.value, expected) <= 1e-12, (accumulated.value, expected)


def test_zico_deterministic_and_label_dependent():
    net = small_net(seed=6)
    x, y = small_batch(seed=6)
    a = proxies.compute("zico", net, x, y)["zico"]
    assert proxies.compute("zico", net, x, y)["zico"] == a
    assert proxies.compute("zico", net, x, (y + 1) % 10)["zico"] != a


@pytest.mark.parametrize("kw, message", [
    ({"splits": 1}, "splits"), ({"ddof": 2}, "ddof"), ({"std_of": "var"}, "signed"),
    ({"accumulate": "yes"}, "accumulate"),
])
def test_zico_invalid_parameters(kw, message):
    with pytest.raises(ValueError, match=message):
        ZiCo(**kw)


def test_zico_too_small_batch_is_an_error_outcome():
    net = small_net()
    x, y = small_batch(n=12)
    out = proxies.compute_outcomes(["zico(splits=13)"], net, x, y)["zico(splits=13)"]
    assert out.status == "error" and "at least 13 samples" in out.message


# ------------------------------------------------------------------------------------------------
# MeCo


def meco_reference(net, x, *, sample=0, batch="single", leaves=False):
    """(score, number of matrices with NaN), numpy's corrcoef and eigvalsh in float64."""
    net = copy.deepcopy(net).train()
    feats = []
    row = 0 if batch == "single" else sample

    def hook(module, args, out):
        if isinstance(out, torch.Tensor) and out.dim() >= 2:
            feats.append(out[row].double().reshape(out.shape[1], -1).numpy().copy())

    modules = [m for m in net.modules() if not leaves or not list(m.children())]
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.no_grad():
            net(x[sample:sample + 1] if batch == "single" else x)
    finally:
        for h in handles:
            h.remove()
    total, n_nan = 0.0, 0
    for f in feats:
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            c = np.corrcoef(f)
        if not np.isfinite(c).all():
            n_nan += 1
            c = np.where(np.isfinite(c), c, 0.0)
        total += np.linalg.eigvalsh(c)[0]
    return total, n_nan, len(feats)


def test_meco_registration():
    info = proxies.get_proxy("meco")
    assert (info.higher_is_better, info.needs_labels, info.bn, info.pass_kind) == (True, False, True, "meco")
    assert info.params["sample"] == 0 and info.params["batch"] == "single" and info.params["modules"] == "all"


@pytest.mark.parametrize("params", [
    {}, {"sample": 5}, {"modules": "leaves"}, {"batch": "full", "sample": 2},
])
def test_meco_matches_reference(params):
    net = small_net(seed=7)
    x, _ = small_batch(seed=7)
    expected, n_nan, n_outputs = meco_reference(net, x, sample=params.get("sample", 0),
                                                batch=params.get("batch", "single"),
                                                leaves=params.get("modules") == "leaves")
    # the `none` edge's zeros, the pooled (C, 1) map and the (10, 1) logits are NaN matrices
    assert 0 < n_nan < n_outputs
    out = run_pass({"meco": MeCo(**params)}, net, x, None, pass_kind="meco")["meco"]
    assert out.status == "ok" and out.n_skipped == n_nan
    assert abs(out.value - expected) <= 1e-9 * max(1.0, abs(expected)), (out.value, expected)


def test_meco_on_a_plain_module_and_partly_constant_maps():
    x, _ = small_batch(n=4, seed=8)
    for net in (PlainCNN(), PartlyDeadNet()):
        expected, n_nan, _ = meco_reference(net, x)
        out = proxies.compute_outcomes(["meco"], net, x)["meco"]
        assert out.n_skipped == n_nan
        assert abs(out.value - expected) <= 1e-10 * max(1.0, abs(expected))
    # the masked map has one constant channel: the NaN row/column is zeroed (not dropped), so its
    # matrix has the eigenvalue 0 and lambda_min <= 0 (dropping the channel would give > 0)
    net = PartlyDeadNet()
    seen = []
    handle = net.mask.register_forward_hook(lambda m, a, out: seen.append(out[0].reshape(4, -1).double()))
    with torch.no_grad():
        net.train()(x[:1])
    handle.remove()
    live = np.corrcoef(seen[0][[0, 1, 3]].numpy())
    assert np.linalg.eigvalsh(live)[0] > 1e-3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        full = np.nan_to_num(np.corrcoef(seen[0].numpy()), nan=0.0)
    assert np.linalg.eigvalsh(full)[0] <= 1e-12


def test_meco_uses_only_the_chosen_sample():
    net = small_net(seed=9)
    x, _ = small_batch(seed=9)
    base = proxies.compute("meco(sample=3)", net, x)["meco(sample=3)"]
    others = x.clone()
    others[torch.arange(12) != 3] = torch.randn(11, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    assert proxies.compute("meco(sample=3)", net, others)["meco(sample=3)"] == base
    assert proxies.compute("meco", net, x[3:4])["meco"] == base  # the sample alone, as a batch of one
    changed = x.clone()
    changed[3] = others[0]
    assert proxies.compute("meco(sample=3)", net, changed)["meco(sample=3)"] != base
    # reading the sample from a whole-batch forward: train-mode BN mixes in the other samples
    full = proxies.compute("meco(batch=full, sample=3)", net, x)["meco(batch=full, sample=3)"]
    assert full != base
    assert proxies.compute("meco(batch=full, sample=3)", net, others)["meco(batch=full, sample=3)"] != full


def test_meco_samples_average_and_channel_sampling():
    net = small_net(seed=10)
    x, _ = small_batch(seed=10)
    one = [proxies.compute(f"meco(sample={i})", net, x)[f"meco(sample={i})"] for i in range(3)]
    avg = proxies.compute("meco(samples=3)", net, x)["meco(samples=3)"]
    assert rel(avg, sum(one) / 3) <= 1e-12
    # MeCo_opt: all channels drawn (in a random order) is MeCo itself
    assert rel(proxies.compute("meco(channels=100)", net, x)["meco(channels=100)"], one[0]) <= 1e-9
    # fewer channels: random, deterministic for a seed, changed by another seed
    a = proxies.compute("meco(channels=3)", net, x, seed=0)["meco(channels=3)"]
    assert proxies.compute("meco(channels=3)", net, x, seed=0)["meco(channels=3)"] == a
    assert proxies.compute("meco(channels=3)", net, x, seed=1)["meco(channels=3)"] != a
    assert math.isfinite(a) and a != one[0]


def test_meco_deterministic_and_invalid_parameters():
    net = small_net(seed=11)
    x, _ = small_batch(seed=11)
    assert proxies.compute("meco", net, x)["meco"] == proxies.compute("meco", net, x)["meco"]
    out = proxies.compute_outcomes(["meco(sample=12)"], net, x)["meco(sample=12)"]
    assert out.status == "error" and "the batch has 12" in out.message
    for kw, message in [({"batch": "half"}, "single"), ({"modules": "convs"}, "leaves"),
                        ({"sample": -1}, "sample"), ({"samples": 0}, "samples"), ({"channels": 1}, "channels")]:
        with pytest.raises(ValueError, match=message):
            MeCo(**kw)


def test_sub_batch_failures_are_recorded_errors():
    net = small_net()
    x = torch.randn(8, 1, 16, 16)  # one input channel: the stem wants three
    for name, out in proxies.compute_outcomes(["zico", "meco"], net, x, torch.zeros(8, dtype=torch.long)).items():
        assert out.status == "error" and "RuntimeError" in out.message and "channels" in out.message, (name, out)


# ------------------------------------------------------------------------------------------------
# the full NB201 network on real CIFAR-10


@needs_data
def test_full_nb201_network_on_cifar10():
    from harness.data import batch

    x, y = batch("cifar10", 64, seed=0)
    net = spaces.get_space("nb201").build(MIXED, 10, seed=0)
    out = proxies.compute_outcomes(["zico", "meco"], net, x, y)
    z_expected, z_skipped = zico_reference(net, x, y)
    assert z_skipped == 15 == out["zico"].n_skipped  # the dead nor_conv_1x1 of each of the 15 normal cells
    assert rel(out["zico"].value, z_expected) <= 1e-10
    m_expected, m_nan, _ = meco_reference(net, x)
    assert out["meco"].n_skipped == m_nan
    assert abs(out["meco"].value - m_expected) <= 1e-9 * abs(m_expected)
