"""jacob_cov, epe_nas, naswot and zen against independent numpy/torch references, pass sharing,
seeds and degenerate networks."""
from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest
import torch
from torch import nn

import proxies
import spaces
from proxies.jacobian import epe_nas_score
from proxies.naswot import hamming_kernel

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
MIXED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"
CONVS = "|nor_conv_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|avg_pool_3x3~2|"
SMALL = spaces.get_space("nb201", channels=4, cells_per_stage=1)
K = 1e-5
#: 12 samples: classes 0, 1 and 3 repeated, 2, 4 and 5 singletons
LABELS = torch.tensor([0, 3, 0, 1, 2, 3, 1, 3, 4, 0, 5, 3])


def small_net(arch: str = MIXED, seed: int = 0, num_classes: int = 10) -> nn.Module:
    return SMALL.build(arch, num_classes, seed=seed)


def small_inputs(n: int = 12, seed: int = 0) -> torch.Tensor:
    return torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


def quiet_corrcoef(z: np.ndarray):
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.corrcoef(z)


# ------------------------------------------------------------------------------------------------
# independent references (plain autograd / hooks on a deep copy, numpy arithmetic)


def reference_jacobian(net: nn.Module, x: torch.Tensor) -> np.ndarray:
    net = copy.deepcopy(net).train()
    x = x.clone().requires_grad_(True)
    y = net(x)
    y.backward(torch.ones_like(y))
    return x.grad.double().reshape(x.shape[0], -1).numpy()


def reference_jacob_cov(jacobian: np.ndarray) -> float:
    c = quiet_corrcoef(jacobian)
    if np.isnan(c).any():
        return math.nan
    v = np.linalg.eig(c)[0]
    return float(np.real(-np.sum(np.log(v + K) + 1.0 / (v + K))))


def reference_epe_nas(jacobian: np.ndarray, labels, n_outputs: int) -> float:
    """The definition, class by class with numpy (a singleton's corrcoef is the scalar var/var)."""
    labels = np.asarray(labels)
    scores = []
    for c in dict.fromkeys(labels.tolist()):
        rows = jacobian[labels == c]
        corr = quiet_corrcoef(rows[0] if len(rows) == 1 else rows)
        s = np.sum(np.log(np.abs(corr) + K))
        if n_outputs > 100:
            if np.ndim(corr) == 0:  # len() of a scalar raises in the definition: class dropped
                continue
            s /= len(corr)
        scores.append(s)
    if n_outputs <= 100:
        return float(sum(abs(s) for s in scores))
    return float(sum(abs(a - b) for a in scores for b in scores) / len(scores))


def reference_naswot(net: nn.Module, x: torch.Tensor, *, every_relu_named_module: bool = True) -> float:
    """NASWOT as released: hook every module whose type string contains 'ReLU' (or, if not
    ``every_relu_named_module``, only the nn.ReLU modules), codes of their inputs, numpy K."""
    net = copy.deepcopy(net).train()
    n = x.shape[0]
    kernel = np.zeros((n, n))

    def hook(module, inputs, output):
        c = (inputs[0].detach().reshape(n, -1) > 0).double().numpy()
        nonlocal kernel
        kernel = kernel + c @ c.T + (1.0 - c) @ (1.0 - c).T

    handles = [m.register_forward_hook(hook) for m in net.modules()
               if ("ReLU" in str(type(m)) if every_relu_named_module else isinstance(m, nn.ReLU))]
    try:
        net(x)
    finally:
        for h in handles:
            h.remove()
    return float(np.linalg.slogdet(kernel)[1])


def reference_zen(net: nn.Module, x: torch.Tensor, seed: int) -> float:
    """Zen-NAS's compute_zen_score on a fresh copy, drawing from the global CPU RNG after
    torch.manual_seed(seed) (inside fork_rng): the same stream as a CPU generator with that seed."""
    net = copy.deepcopy(net).train()
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.reset_running_stats()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        for m in net.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.normal_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        a = torch.randn(x.shape)
        b = torch.randn(x.shape)
        f1 = net.forward_features(a)
        f2 = net.forward_features(a + 0.01 * b)
        delta = float(torch.sum(torch.abs(f1 - f2), dim=[1, 2, 3]).mean())
        bn = sum(math.log(math.sqrt(float(m.running_var.double().mean())))
                 for m in net.modules() if isinstance(m, nn.BatchNorm2d))
    return math.log(delta) + bn


# ------------------------------------------------------------------------------------------------
# registry


def test_registered_metadata():
    expected = {"jacob_cov": ("input_jacobian", False), "epe_nas": ("input_jacobian", True),
                "naswot": ("standard", True), "zen": ("zen", False)}
    for name, (kind, labels) in expected.items():
        info = proxies.get_proxy(name)
        assert (info.pass_kind, info.needs_labels, info.bn, info.higher_is_better) == (kind, labels, True, True), name
    assert proxies.get_proxy("naswot").params == {"convention": "official"}
    with pytest.raises(ValueError, match="'nature'"):
        proxies.get_proxy("naswot(convention=nature)")


def test_label_free_proxies_run_without_targets():
    net, x = small_net(seed=1), small_inputs(seed=1)
    out = proxies.compute(["jacob_cov", "zen"], net, x, space=SMALL)
    assert all(math.isfinite(v) for v in out.values()), out
    with pytest.raises(ValueError, match="label"):
        proxies.compute(["epe_nas"], net, x, space=SMALL)


# ------------------------------------------------------------------------------------------------
# jacob_cov and epe_nas


@pytest.mark.parametrize("arch", [MIXED, CONVS])
def test_jacob_cov_and_epe_nas_match_numpy(arch):
    net, x = small_net(arch, seed=2), small_inputs(seed=2)
    jacobian = reference_jacobian(net, x)
    out = proxies.compute(["jacob_cov", "epe_nas"], net, x, LABELS, space=SMALL)
    expected_cov = reference_jacob_cov(jacobian)
    expected_epe = reference_epe_nas(jacobian, LABELS.numpy(), 10)
    assert math.isfinite(expected_cov) and math.isfinite(expected_epe)
    assert rel(out["jacob_cov"], expected_cov) <= 1e-9, (out["jacob_cov"], expected_cov)
    assert rel(out["epe_nas"], expected_epe) <= 1e-9, (out["epe_nas"], expected_epe)


def test_epe_nas_with_more_than_100_outputs_drops_singletons():
    net, x = small_net(seed=3, num_classes=120), small_inputs(seed=3)
    labels = torch.tensor([7, 110, 7, 42, 110, 7, 99, 42, 110, 5, 42, 7])  # 99 and 5 are singletons
    jacobian = reference_jacobian(net, x)
    got = proxies.compute(["epe_nas"], net, x, labels, space=SMALL)["epe_nas"]
    expected = reference_epe_nas(jacobian, labels.numpy(), 120)
    assert math.isfinite(expected) and expected > 0
    assert rel(got, expected) <= 1e-9, (got, expected)
    # the singletons are dropped: the score is what the three repeated classes give alone
    keep = torch.isin(labels, torch.tensor([7, 110, 42]))
    only_repeated = reference_epe_nas(jacobian[keep.numpy()], labels[keep].numpy(), 120)
    assert rel(got, only_repeated) <= 1e-9
    # with <= 100 outputs they count (log(1 + k) each)
    small = epe_nas_score(torch.from_numpy(jacobian), labels % 100, 100)
    assert rel(float(small), reference_epe_nas(jacobian, (labels % 100).numpy(), 100)) <= 1e-9


def test_epe_nas_singletons_and_constant_rows_follow_the_definition():
    g = torch.Generator().manual_seed(4)
    jac = torch.randn(9, 20, generator=g, dtype=torch.float64)
    labels = torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 4])  # 2 and 4 singletons
    for n_out in (10, 150):
        expected = reference_epe_nas(jac.numpy(), labels.numpy(), n_out)
        assert rel(float(epe_nas_score(jac, labels, n_out)), expected) <= 1e-12
    # a constant row in a singleton class: NaN when singletons count, dropped (finite) when not
    jac_single = jac.clone()
    jac_single[5] = 3.0
    assert math.isnan(reference_epe_nas(jac_single.numpy(), labels.numpy(), 10))
    assert math.isnan(float(epe_nas_score(jac_single, labels, 10)))
    expected = reference_epe_nas(jac_single.numpy(), labels.numpy(), 150)
    assert math.isfinite(expected)
    assert rel(float(epe_nas_score(jac_single, labels, 150)), expected) <= 1e-12
    # a constant row in a repeated class makes that class, and the score, NaN; other classes
    # are untouched by it (no NaN leaks through the masking)
    jac_pair = jac.clone()
    jac_pair[0] = 0.0
    assert math.isnan(float(epe_nas_score(jac_pair, labels, 10)))
    others = labels != 0
    assert math.isfinite(float(epe_nas_score(jac_pair[others], labels[others], 10)))
    # no class with two samples and > 100 outputs: 0 / 0, NaN as the definition's handler gives
    assert math.isnan(float(epe_nas_score(jac[:3], torch.tensor([0, 1, 2]), 150)))


def test_jacob_cov_and_epe_nas_share_one_pass():
    net, x = small_net(seed=5), small_inputs(seed=5)
    outcomes = proxies.compute_outcomes(["jacob_cov", "epe_nas"], net, x, LABELS, space=SMALL)
    assert outcomes["jacob_cov"].seconds == outcomes["epe_nas"].seconds > 0
    assert all(o.status == "ok" for o in outcomes.values())
    for name in ("jacob_cov", "epe_nas"):
        alone = proxies.compute([name], net, x, LABELS, space=SMALL)[name]
        assert outcomes[name].value == pytest.approx(alone, rel=1e-12, abs=0), name
    calls = _count_forwards(["jacob_cov", "epe_nas"], net, x, LABELS)
    assert calls == 1


# ------------------------------------------------------------------------------------------------
# naswot


@pytest.mark.parametrize("arch", [MIXED, CONVS])
def test_naswot_matches_the_released_definition(arch):
    net, x = small_net(arch, seed=6), small_inputs(seed=6)
    y = LABELS
    out = proxies.compute(["naswot", "naswot(convention=paper)"], net, x, y, space=SMALL)
    released = reference_naswot(net, x)
    relu_only = reference_naswot(net, x, every_relu_named_module=False)
    assert released != relu_only  # the ReLUConvBN wrappers make a difference
    assert rel(out["naswot"], released) <= 1e-12, (out["naswot"], released)
    assert rel(out["naswot(convention=paper)"], relu_only) <= 1e-12


def test_hamming_kernel_is_exact():
    x = torch.randn(7, 5, 9, 9, generator=torch.Generator().manual_seed(7))
    x[2] = x[4]  # two identical codes agree everywhere
    c = (x.reshape(7, -1) > 0).double().numpy()
    expected = c @ c.T + (1 - c) @ (1 - c).T
    got = hamming_kernel(x)
    assert got.dtype == torch.float64
    assert np.array_equal(got.numpy(), expected)
    assert got[2, 4] == got[2, 2] == 5 * 9 * 9


def test_naswot_costs_nothing_next_to_wrcor():
    net, x = small_net(seed=8), small_inputs(seed=8)
    together = proxies.compute_outcomes(["wrcor", "naswot"], net, x, LABELS, space=SMALL)
    assert together["wrcor"].seconds == together["naswot"].seconds
    for name in ("wrcor", "naswot"):
        assert together[name].value == proxies.compute([name], net, x, LABELS, space=SMALL)[name], name
    assert _count_forwards(["wrcor", "naswot"], net, x, LABELS) == 1


# ------------------------------------------------------------------------------------------------
# zen


def test_zen_matches_reference_and_is_seeded():
    net, x = small_net(CONVS, seed=9), small_inputs(seed=9)
    state = torch.get_rng_state()
    a = proxies.compute(["zen"], net, x, seed=3, space=SMALL)["zen"]
    assert torch.equal(torch.get_rng_state(), state)  # the global RNG is never drawn from
    torch.manual_seed(1234)  # the global seed is irrelevant
    assert proxies.compute(["zen"], net, x, seed=3, space=SMALL)["zen"] == a
    b = proxies.compute(["zen"], net, x, seed=4, space=SMALL)["zen"]
    assert math.isfinite(a) and math.isfinite(b) and a != b
    assert rel(a, reference_zen(net, x, 3)) <= 1e-6
    assert rel(b, reference_zen(net, x, 4)) <= 1e-6


def test_zen_ignores_weights_buffers_and_data_values():
    net, x = small_net(CONVS, seed=10), small_inputs(seed=10)
    base = proxies.compute(["zen"], net, x, seed=0, space=SMALL)["zen"]
    other = small_net(CONVS, seed=11)  # other initial weights
    with torch.no_grad():
        for m in other.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_var.fill_(7.0)
                m.num_batches_tracked.fill_(3)
    assert proxies.compute(["zen"], other, x * 5 + 1, seed=0, space=SMALL)["zen"] == pytest.approx(base, rel=1e-12)
    assert proxies.compute(["zen"], small_net(MIXED, seed=10), x, seed=0, space=SMALL)["zen"] != base  # the arch matters


class PlainWrapper(nn.Module):
    """A network with no forward_features: zen falls back to the input of its AdaptiveAvgPool2d."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        return self.net(x)


def test_zen_falls_back_to_the_global_pooling_input():
    net, x = small_net(CONVS, seed=12), small_inputs(seed=12)
    direct = proxies.compute(["zen"], net, x, seed=1, space=SMALL)["zen"]
    wrapped = proxies.compute(["zen"], PlainWrapper(net), x, seed=1, space=SMALL)["zen"]
    assert wrapped == direct
    no_pool = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))
    outcome = proxies.compute_outcomes(["zen"], no_pool, x, space=SMALL)["zen"]
    assert outcome.status == "error" and "AdaptiveAvgPool2d" in outcome.message


def test_forward_features_is_the_pre_pooling_map():
    net, x = small_net(seed=13), small_inputs(seed=13)
    f = net.forward_features(x)
    assert f.shape == (12, 16, 4, 4)
    assert (f >= 0).all()  # after the final ReLU
    assert torch.equal(net(x), net.classifier(net.global_pooling(f).flatten(1)))


# ------------------------------------------------------------------------------------------------
# degenerate network and shared bookkeeping


def test_all_none_cell():
    net, x = small_net(ALL_NONE, seed=14), small_inputs(seed=14)
    out = proxies.compute_outcomes(["jacob_cov", "epe_nas", "naswot", "zen"], net, x, LABELS, space=SMALL)
    assert math.isnan(out["jacob_cov"].value) and out["jacob_cov"].status == "nan"
    assert math.isnan(out["epe_nas"].value) and out["epe_nas"].status == "nan"
    assert out["naswot"].value == -math.inf and out["naswot"].status == "inf"
    assert out["zen"].value == -math.inf and out["zen"].status == "inf"
    assert not np.any(reference_jacobian(net, x))  # no path from input to output
    assert reference_naswot(net, x) == -math.inf


_CALLS: list[int] = []


class Counting(nn.Module):
    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x):
        _CALLS.append(1)
        return self.net(x)


def _count_forwards(names, net, x, y) -> int:
    _CALLS.clear()
    proxies.compute(names, Counting(net), x, y, responses=proxies.every_relu)
    return len(_CALLS)


def test_zen_runs_two_forwards_of_its_own():
    net, x = small_net(seed=15), small_inputs(seed=15)
    assert _count_forwards(["zen"], net, x, LABELS) == 2
    assert _count_forwards(["zen", "jacob_cov", "epe_nas", "naswot", "wrcor"], net, x, LABELS) == 2 + 1 + 1
