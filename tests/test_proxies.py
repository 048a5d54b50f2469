"""The proxy registry, the Probe's contract, the response-correlation family and the golden scores."""
from __future__ import annotations

import copy
import json
import math
import os
import re
import warnings
from itertools import combinations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import proxies
import spaces
from conftest import GOLDEN, needs_data
from harness import golden as golden_ref
from proxies.correlation import RESPONSES, WEIGHTINGS, ResponseCorrelation
from proxies.probe import run_pass
from spaces import UnknownNameError
from spaces.nb201 import ReLUConvBN

CORRELATION_FAMILY = ["wrcor", "wrcor_official", "rcor", "acor", "gcor"]
ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
MIXED = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|none~2|"

GOLDEN_JSON = os.path.join(GOLDEN, "nb201_reference_scores.json")
GOLDEN_NPZ = os.path.join(GOLDEN, "nb201_reference_states.npz")
needs_golden = pytest.mark.skipif(not (os.path.exists(GOLDEN_JSON) and os.path.exists(GOLDEN_NPZ)),
                                  reason="golden reference files (../shared/golden) not found")

SMALL = spaces.get_space("nb201", channels=4, cells_per_stage=1)


def small_net(arch: str = MIXED, seed: int = 0, num_classes: int = 10) -> nn.Module:
    return SMALL.build(arch, num_classes, seed=seed)


def small_batch(n: int = 12, hw: int = 16, seed: int = 0, num_classes: int = 10):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, hw, hw, generator=g), torch.randint(0, num_classes, (n,), generator=g)


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-300)


# ------------------------------------------------------------------------------------------------
# registry


def test_registry_lists_the_correlation_family():
    names = proxies.list_proxies()
    assert set(CORRELATION_FAMILY) <= set(names)
    assert names == sorted(names) and len(set(names)) == len(names)
    cor = proxies.list_proxies("*cor*")
    assert set(CORRELATION_FAMILY) <= set(cor)
    assert all("cor" in n for n in cor)
    assert set(cor) == {n for n in names if "cor" in n}
    assert {"wrcor", "wrcor_official"} <= set(proxies.list_proxies("wrcor*"))
    assert "rcor" not in proxies.list_proxies("wrcor*")
    assert proxies.list_proxies("no_such_proxy_*") == []


def test_get_proxy_metadata():
    for name in CORRELATION_FAMILY:
        info = proxies.get_proxy(name)
        assert info.name == name
        assert info.higher_is_better is True
        assert info.needs_labels is True
        assert isinstance(info.create(), ResponseCorrelation)
    assert proxies.get_proxy("wrcor").params["convention"] == "paper"
    assert proxies.get_proxy("wrcor_official").params["convention"] == "official"


def test_unknown_proxy_error_lists_registered_names():
    with pytest.raises(UnknownNameError) as info:
        proxies.get_proxy("nope")
    message = str(info.value)
    assert "'nope'" in message
    for name in proxies.list_proxies():
        assert name in message
    assert isinstance(info.value, KeyError)


def test_duplicate_registration_raises_and_keeps_the_original():
    before = proxies.get_proxy("wrcor")
    snapshot = proxies.list_proxies()
    with pytest.raises(ValueError, match="wrcor"):
        proxies.register("wrcor", params={"convention": "official", "weighting": "none", "responses": "act",
                                          "power": 1.0, "precision": "float64"})(ResponseCorrelation)
    assert proxies.get_proxy("wrcor") is before
    assert proxies.list_proxies() == snapshot


# ------------------------------------------------------------------------------------------------
# contract: every registered proxy


def _perturb_buffers(net: nn.Module) -> None:
    """Give BN buffers non-default values, so that a reset or an update would show."""
    g = torch.Generator().manual_seed(99)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g))
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
                m.num_batches_tracked.fill_(7)


def _assert_untouched(net: nn.Module, snapshot: dict, training: bool) -> None:
    state = net.state_dict()
    assert list(state) == list(snapshot)
    for k, v in state.items():
        assert torch.equal(v, snapshot[k]), k
    assert all(p.grad is None for p in net.parameters())
    assert all(m.training == training for m in net.modules())
    for name, m in net.named_modules():
        assert not m._forward_hooks, name
        assert not m._forward_pre_hooks, name
        assert not m._backward_hooks, name
        assert not getattr(m, "_backward_pre_hooks", {}), name


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("name", proxies.list_proxies())
def test_proxy_contract(name, mode):
    net = small_net()
    _perturb_buffers(net)
    net.train(mode == "train")
    snapshot = {k: v.clone() for k, v in net.state_dict().items()}
    x, y = small_batch()
    x_copy = x.clone()

    first = proxies.compute([name], net, x, y, space=SMALL)
    second = proxies.compute([name], net, x, y, space=SMALL)
    assert list(first) == [name]
    value = first[name]
    assert isinstance(value, float)
    assert math.isfinite(value), value
    assert second[name] == value
    _assert_untouched(net, snapshot, training=(mode == "train"))
    assert torch.equal(x, x_copy)


@pytest.mark.parametrize("name", proxies.list_proxies())
def test_proxy_ignores_callers_mode(name):
    """The Probe always runs the pass in train mode (BN on batch statistics), so a caller's eval
    mode changes nothing."""
    net = small_net(seed=1)
    _perturb_buffers(net)
    x, y = small_batch(seed=1)
    train_value = proxies.compute(name, net.train(), x, y, space=SMALL)[name]
    eval_value = proxies.compute(name, net.eval(), x, y, space=SMALL)[name]
    assert eval_value == train_value
    assert not net.training


# ------------------------------------------------------------------------------------------------
# sharing one pass


def test_shared_pass_equals_separate_computations():
    net = small_net(seed=2)
    x, y = small_batch(seed=2)
    together = proxies.compute(CORRELATION_FAMILY, net, x, y, space=SMALL)
    assert list(together) == CORRELATION_FAMILY
    for name in CORRELATION_FAMILY:
        alone = proxies.compute([name], net, x, y, space=SMALL)[name]
        assert together[name] == pytest.approx(alone, rel=1e-12, abs=0), name
    assert len(set(together.values())) == len(CORRELATION_FAMILY)  # genuinely different proxies

    outcomes = proxies.compute_outcomes(CORRELATION_FAMILY, net, x, y, space=SMALL)
    seconds = {o.seconds for o in outcomes.values()}
    assert len(seconds) == 1 and next(iter(seconds)) > 0
    assert all(o.status == "ok" and o.message == "" for o in outcomes.values())
    assert {n: o.value for n, o in outcomes.items()} == together


# ------------------------------------------------------------------------------------------------
# an independent reference for the paper formula (plain hooks, numpy, no Probe)


def _layer_points(net: nn.Module) -> list[tuple[int, nn.Module]]:
    """(weighting layer, ReLU): a ReLU inside cell l has layer l; the final ReLU has len(cells)."""
    points = []
    for layer, cell in enumerate(net.cells):
        points.extend((layer, m) for m in cell.modules() if isinstance(m, nn.ReLU))
    points.append((len(net.cells), net.lastact[1]))
    return points


def _reference_responses(net: nn.Module, x, y, points_of=_layer_points):
    """Run a deep copy once; return [(layer, kind, responses as float64 (N, D) numpy)]."""
    net = copy.deepcopy(net).train()
    net.zero_grad(set_to_none=True)
    records: list = []
    handles = []

    def make(layer):
        def hook(module, inputs, output):
            inp = inputs[0].detach()
            records.append((layer, "act", inp))
            positive = inp > 0

            def grad_hook(grad_out):
                records.append((layer, "grad", grad_out.detach() * positive))

            output.register_hook(grad_hook)

        return hook

    for layer, module in points_of(net):
        handles.append(module.register_forward_hook(make(layer)))
    try:
        F.cross_entropy(net(x), y).backward()
    finally:
        for h in handles:
            h.remove()
    return [(layer, kind, t.double().reshape(t.shape[0], -1).numpy()) for layer, kind, t in records]


def _reference_score(records, weight=lambda layer: 2.0 ** layer, kinds=("act", "grad"), power=1.0):
    """(log|det K|, number of skipped matrices) with numpy's corrcoef."""
    n = records[0][2].shape[0]
    K = np.zeros((n, n))
    skipped = 0
    for layer, kind, z in records:
        if kind not in kinds:
            continue
        with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)
            c = np.corrcoef(z)
        if np.isnan(c).any():
            skipped += 1
            continue
        K += weight(layer) * np.abs(c) ** power
    return float(np.linalg.slogdet(K)[1]), skipped


def _paper(weighting: str, **kw) -> ResponseCorrelation:
    params = dict(convention="paper", weighting=weighting, responses="both", power=1.0, precision="float64")
    params.update(kw)
    return ResponseCorrelation(**params)


def test_wrcor_matches_independent_reference():
    net = small_net(seed=3)
    x, y = small_batch(n=16, seed=3)
    records = _reference_responses(net, x, y)
    n_points = len(_layer_points(net))
    assert len(records) == 2 * n_points
    top = len(net.cells)
    weighted, skipped_w = _reference_score(records, weight=lambda layer: 2.0 ** layer)
    unweighted, skipped_u = _reference_score(records, weight=lambda layer: 1.0)
    # node 2 of MIXED feeds only a `none` edge, so its gradient is exactly zero: in each of the 3
    # normal cells the gradient matrix of the nor_conv_1x1 edge's ReLU is NaN and skipped
    assert skipped_w == skipped_u == 3
    assert math.isfinite(weighted) and math.isfinite(unweighted) and weighted != unweighted
    # the final ReLU is weighted 2**num_cells
    assert max(layer for layer, _, _ in records) == top

    wrcor = proxies.compute(["wrcor"], net, x, y, space=SMALL)["wrcor"]
    assert rel(wrcor, weighted) <= 1e-5, (wrcor, weighted)

    out = run_pass({"none": _paper("none"), "exp": _paper("exp_bottom_to_top")}, net, x, y, responses=SMALL.response_modules)
    assert out["none"].status == "ok" and out["none"].n_skipped == out["exp"].n_skipped == 3
    assert rel(out["none"].value, unweighted) <= 1e-10, (out["none"].value, unweighted)
    assert rel(out["exp"].value, weighted) <= 1e-10, (out["exp"].value, weighted)

    # other weightings, response kinds and power, against the same reference
    out = run_pass({"lin": _paper("linear"), "top": _paper("exp_top_to_bottom"),
                    "act": _paper("none", responses="act"), "grad2": _paper("none", responses="grad", power=2.0)},
                   net, x, y, responses=SMALL.response_modules)
    assert rel(out["lin"].value, _reference_score(records, weight=lambda l: l + 1.0)[0]) <= 1e-10
    assert rel(out["top"].value, _reference_score(records, weight=lambda l: 2.0 ** (top - l))[0]) <= 1e-10
    assert rel(out["act"].value, _reference_score(records, weight=lambda l: 1.0, kinds=("act",))[0]) <= 1e-10
    assert rel(out["grad2"].value,
               _reference_score(records, weight=lambda l: 1.0, kinds=("grad",), power=2.0)[0]) <= 1e-10


# ------------------------------------------------------------------------------------------------
# ablation parameters


def test_ablation_parameters_give_distinct_finite_values():
    net = small_net(seed=4)
    x, y = small_batch(seed=4)
    configs = {f"weighting={w}": _paper(w) for w in WEIGHTINGS}
    configs.update({f"responses={r}": _paper("exp_bottom_to_top", responses=r) for r in ("act", "grad")})
    configs["power=2"] = _paper("exp_bottom_to_top", power=2.0)
    assert len(configs) == 8
    out = run_pass(configs, net, x, y, responses=SMALL.response_modules)
    values = {k: o.value for k, o in out.items()}
    assert all(o.status == "ok" and math.isfinite(o.value) for o in out.values()), values
    assert len({o.seconds for o in out.values()}) == 1  # one shared pass
    for (ka, va), (kb, vb) in combinations(values.items(), 2):
        assert rel(va, vb) > 1e-9, (ka, kb, va, vb)


@pytest.mark.parametrize("param, bad, valid", [
    ("weighting", "cubic", sorted(WEIGHTINGS)),
    ("responses", "all", list(RESPONSES)),
    ("convention", "nature", ["paper", "official"]),
    ("precision", "float16", ["float32", "float64"]),
])
def test_invalid_parameters_raise_listing_valid_values(param, bad, valid):
    params = dict(convention="paper", weighting="none", responses="both", power=1.0, precision="float64")
    params[param] = bad
    with pytest.raises(ValueError) as info:
        ResponseCorrelation(**params)
    message = str(info.value)
    assert repr(bad) in message
    for v in valid:
        assert v in message, (v, message)


# ------------------------------------------------------------------------------------------------
# NaN matrices are skipped and counted


def test_all_none_cell_gives_minus_inf_outcome():
    net = small_net(ALL_NONE, seed=5)
    x, y = small_batch(seed=5)
    outcome = proxies.compute_outcomes(["wrcor_official"], net, x, y, space=SMALL)["wrcor_official"]
    assert outcome.value == -math.inf
    assert outcome.status == "inf"
    assert outcome.n_skipped > 0
    # every response is constant: 2 reduction cells x (2 ReLUs + 2 ReLUConvBN) + the final ReLU,
    # each with an activation and a gradient matrix
    n_points = sum(isinstance(m, (nn.ReLU, ReLUConvBN)) for m in net.modules())
    assert n_points == 9
    assert outcome.n_skipped == 2 * n_points
    assert proxies.compute(["wrcor_official"], net, x, y, space=SMALL)["wrcor_official"] == -math.inf  # no raise


class DeadBranchNet(nn.Module):
    """Two ReLUs on the same features; one of them sees ``h * 0`` (constant for every sample), so its
    activation and gradient matrices are NaN while the other's are fine.  No ``response_modules``:
    the Probe's default (every ReLU, layer = index of the top-level child) applies."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.live = nn.ReLU()
        self.dead = nn.ReLU()
        self.head = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x):
        h = self.conv(x)
        return self.head((self.live(h) + self.dead(h * 0.0)).flatten(1))


def _dead_branch_points(net):
    return [(1, net.live), (2, net.dead)]  # index among named_children: conv, live, dead, head


@pytest.mark.parametrize("name", ["wrcor", "rcor", "acor", "gcor"])
def test_some_nan_matrices_are_skipped_and_counted(name):
    torch.manual_seed(0)
    net = DeadBranchNet()
    x, y = small_batch(n=10, hw=8, seed=6)
    records = _reference_responses(net, x, y, points_of=_dead_branch_points)
    info = proxies.get_proxy(name)
    kinds = {"both": ("act", "grad"), "act": ("act",), "grad": ("grad",)}[info.params["responses"]]
    weight = (lambda l: 2.0 ** l) if info.params["weighting"] == "exp_bottom_to_top" else (lambda l: 1.0)
    expected, expected_skipped = _reference_score(records, weight=weight, kinds=kinds)
    assert 0 < expected_skipped < len([r for r in records if r[1] in kinds])  # some, not all

    outcome = proxies.compute_outcomes([name], net, x, y, responses=proxies.every_relu)[name]
    assert outcome.status == "ok" and math.isfinite(outcome.value)
    assert outcome.n_skipped == expected_skipped
    assert rel(outcome.value, expected) <= 1e-5, (outcome.value, expected)


# ------------------------------------------------------------------------------------------------
# failures are outcomes


def test_failing_forward_is_an_error_outcome():
    net = small_net(seed=7)
    x = torch.randn(8, 1, 16, 16)  # one input channel: the stem wants three
    y = torch.zeros(8, dtype=torch.long)
    with pytest.raises(RuntimeError) as direct:
        net(x)
    cause = str(direct.value)
    # proxies that run no pass (l2_norm, params, vkdnw_dim: pass_kind "static") read the weights only and
    # rightly succeed; every other proxy records the forward's error
    names = [n for n in proxies.list_proxies() if proxies.get_proxy(n).pass_kind != "static"]
    static = [n for n in proxies.list_proxies() if n not in names]
    assert static == ["l2_norm", "params", "vkdnw_dim"]
    assert all(o.status == "ok" for o in proxies.compute_outcomes(static, net, x, y, space=SMALL).values())
    outcomes = proxies.compute_outcomes(names, net, x, y, space=SMALL)
    assert list(outcomes) == names
    for name, o in outcomes.items():
        assert o.status == "error", name
        assert math.isnan(o.value)
        # the same cause (proxies that forward part of the batch name another input shape)
        assert _shapeless(cause) in _shapeless(o.message) and "RuntimeError" in o.message, o.message
    with pytest.raises(proxies.ProxyError) as info:
        proxies.compute(names, net, x, y, space=SMALL)
    assert cause in str(info.value)
    assert all(n in str(info.value) for n in names)
    assert all(p.grad is None for p in net.parameters())


def _shapeless(message: str) -> str:
    return re.sub(r"input\[[^\]]*\]", "input[...]", message)


_FORWARD_CALLS: list[int] = []


class CountingNet(nn.Module):
    """Counts its forward calls in a module-level list (a deep copy shares it)."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(8, 3)

    def forward(self, x):
        _FORWARD_CALLS.append(1)
        return self.fc2(self.act(self.fc1(x)))


def test_unknown_name_and_missing_labels_fail_before_any_work():
    net = CountingNet()
    x, y = torch.randn(8, 6), torch.randint(0, 3, (8,))
    _FORWARD_CALLS.clear()
    proxies.compute_outcomes(["wrcor"], net, x, y, responses=proxies.every_relu)
    assert len(_FORWARD_CALLS) == 1  # the counter sees the Probe's pass

    _FORWARD_CALLS.clear()
    with pytest.raises(UnknownNameError, match="nope"):
        proxies.compute(["wrcor", "nope"], net, x, y, space=SMALL)
    with pytest.raises(UnknownNameError) as info:
        proxies.compute_outcomes(["nope", "wrcor"], net, x, y, space=SMALL)
    assert all(n in str(info.value) for n in proxies.list_proxies())
    assert _FORWARD_CALLS == []

    for name in proxies.list_proxies():
        if proxies.get_proxy(name).needs_labels:
            with pytest.raises(ValueError, match="label"):
                proxies.compute([name], net, x, None, space=SMALL)
            with pytest.raises(ValueError, match="label"):
                proxies.compute_outcomes([name], net, x, space=SMALL)
    assert _FORWARD_CALLS == []

    with pytest.raises(ValueError):
        proxies.compute([], net, x, y, space=SMALL)


# ------------------------------------------------------------------------------------------------
# golden: the official implementation's scores on 10 NB201 architectures

GOLDEN_MAP, GOLDEN_TOL, CANCELLING_TOL = golden_ref.GOLDEN_MAP, golden_ref.GOLDEN_TOL, golden_ref.CANCELLING_TOL


def _golden_arch_ids() -> list[int]:
    if not os.path.exists(GOLDEN_JSON):
        return []
    with open(GOLDEN_JSON) as f:
        return [a["index"] for a in json.load(f)["archs"]]


@pytest.fixture(scope="module")
def golden():
    """(index -> entry, index -> our scores of every measure, computed once per arch in ONE pass)."""
    from harness.data import batch

    entries, arrays = golden_ref.load(GOLDEN)
    x, y = batch("cifar10", 64, seed=None, sampling="first")
    assert x.shape == (64, 3, 32, 32) and x.dtype == torch.float32 and y.shape == (64,)
    cache: dict[int, dict[str, float]] = {}

    def scores(index: int) -> dict[str, float]:
        if index not in cache:
            threads = torch.get_num_threads()
            torch.set_num_threads(2)  # the reference's arithmetic (see conftest.py)
            try:
                cache[index] = golden_ref.score(entries[index], arrays, x, y, _golden_names())
            finally:
                torch.set_num_threads(threads)
        return cache[index]

    return entries, scores


def _golden_names() -> list[str]:
    return [n for n in GOLDEN_MAP if n in proxies.list_proxies()]


def test_every_golden_measure_has_a_registered_proxy():
    assert _golden_names() == list(GOLDEN_MAP)


def _golden_errors(index, entries, scores) -> dict[str, float]:
    errors = golden_ref.errors(entries[index], scores(index))
    bad = [n for n, e in errors.items() if math.isinf(e)]
    assert not bad, (index, bad, {n: (scores(index)[n], entries[index]["scores"][GOLDEN_MAP[n]]) for n in bad})
    return errors


@needs_data
@needs_golden
@pytest.mark.parametrize("index", _golden_arch_ids())
def test_golden_scores(index, golden):
    entries, scores = golden
    errors = _golden_errors(index, entries, scores)
    worst = max(errors, key=errors.get)
    summary = (f"arch {index}: worst relative error {errors[worst]:.3e} ({worst}); "
               + ", ".join(f"{k}={v:.2e}" for k, v in errors.items()))
    print(summary)
    for name, err in errors.items():
        assert err <= CANCELLING_TOL.get(name, GOLDEN_TOL), summary


@pytest.mark.parametrize("spec", ["wrcor(weighting=none)", "wrcor(responses=act, weighting=none)",
                                  "zico(accumulate=false)", "naswot(convention=paper)"])
def test_proxy_specs_used_by_configs_and_bench_resolve(spec):
    info = proxies.get_proxy(spec)
    base = spec.split("(")[0]
    assert info.params != proxies.get_proxy(base).params
    assert math.isfinite(proxies.compute([spec], small_net(), *small_batch(), space=SMALL)[spec])


def test_every_spec_of_the_ablation_config_resolves():
    import yaml

    path = os.path.join(os.path.dirname(__file__), "..", "conf", "proxy_set", "wrcor_ablation.yaml")
    with open(path) as f:
        specs = yaml.safe_load(f)["proxies"]
    names = [proxies.get_proxy(s).name for s in specs]
    assert len(set(names)) == len(specs) == 12
