"""The scoring engine (proxies/engine.py, spaces/nb201/stacked.py) against the one-architecture
path (proxies.compute_outcomes on space.build's network): same scores, skip counts and causes,
for every grouping, through out-of-memory splits, build failures and worker processes."""
from __future__ import annotations

import math
import shutil

import numpy as np
import pytest
import torch

import proxies
import spaces
from harness.scoring.builds import make_engine
from proxies.engine import Engine, score_many, supports
from proxies.probe import batched_abs_correlation, corrcoef
from spaces.base import seed_for
from spaces.nb201.stacked import pack_group

FAMILY = ["wrcor", "wrcor(precision=float64)", "wrcor_official", "rcor", "acor", "gcor",
          "wrcor(power=2, weighting=linear)", "wrcor(weighting=exp_top_to_bottom, responses=grad)"]
DEGENERATE = ["|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # K = 0: -inf
              "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|",
              "|avg_pool_3x3~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|avg_pool_3x3~2|",
              "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|nor_conv_1x1~2|",  # node 1 feeds only none edges
              "|nor_conv_1x1~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"]


def small_space(**kw):
    return spaces.get_space("nb201", **{"channels": 4, "cells_per_stage": 1, **kw})


def sample(space, n, seed=0):
    rng = np.random.default_rng(seed)
    out = list(dict.fromkeys([space.to_str(a) for a in map(space.parse, DEGENERATE)]
                             + [space.to_str(space.sample(rng)) for _ in range(n)]))
    return [(a, seed_for(0, a)) for a in out]


def batch(n=8, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g, dtype=dtype), torch.randint(0, 10, (n,), generator=g)


def one_arch(space, archs, names, x, y, dtype):
    out = {}
    for a, s in archs:
        net = space.build(a, 10, seed=s).to(dtype)
        out[a] = proxies.compute_outcomes(names, net, x, y, space=space)
    return out


def rel(a: float, b: float) -> float:
    if not (math.isfinite(a) and math.isfinite(b)):
        return 0.0 if (a == b or (math.isnan(a) and math.isnan(b))) else math.inf
    return abs(a - b) / max(abs(a), 1e-300)


def assert_same(ref, got, names, tol):
    worst = 0.0
    for a, outs in ref.items():
        for n in names:
            r, e = outs[n], got[a][n]
            assert r.status == e.status, (a, n, r, e)
            assert r.n_skipped == e.n_skipped, (a, n, r.n_skipped, e.n_skipped)
            assert r.message == e.message, (a, n)
            worst = max(worst, rel(r.value, e.value))
    assert worst <= tol, worst
    return worst


@pytest.fixture(scope="module")
def reference64():
    space = small_space()
    archs = sample(space, 20)
    x, y = batch()
    return space, archs, x, y, one_arch(space, archs, FAMILY, x, y, torch.float64)


@pytest.mark.parametrize("group", [1, 3, 8, 64])
def test_float64_engine_equals_one_architecture_path(reference64, group):
    """Every family member, any grouping: the one-architecture path's values to 1e-9 relative
    (float64 networks; in practice equal to the last bits), the same skip counts and causes."""
    space, archs, x, y, ref = reference64
    got = score_many(space, FAMILY, archs, x, y, num_classes=10, device=torch.device("cpu"), group_size=group,
                     dtype=torch.float64)
    assert set(got) == set(ref)
    assert_same(ref, got, FAMILY, 1e-9)
    empty = got[space.to_str(space.parse(DEGENERATE[0]))]["wrcor"]
    assert empty.status == "inf" and "K is singular" in empty.message and "were skipped" in empty.message


def test_full_width_network_float64():
    """The benchmark's own network (C=16, N=5: 17 cells, two reduction blocks), a group of 4."""
    space = spaces.get_space("nb201")
    archs = sample(space, 1)[-4:]
    x, y = batch(6)
    names = ["wrcor", "wrcor_official"]
    ref = one_arch(space, archs, names, x, y, torch.float64)
    got = score_many(space, names, archs, x, y, num_classes=10, device=torch.device("cpu"), group_size=4,
                     dtype=torch.float64)
    assert_same(ref, got, names, 1e-9)


def test_float32_engine_is_within_float32_noise_of_the_one_architecture_path():
    """The production setting (float32 networks): grouped kernels sum in another order; the
    scores stay within 1e-5 relative (measured: ~1e-8 with groups of 1, ~1e-7 grouped)."""
    space = small_space()
    archs = sample(space, 12, seed=1)
    x, y = batch(16, torch.float32)
    ref = one_arch(space, archs, ["wrcor", "wrcor_official"], x, y, torch.float32)
    for group in (1, 6):
        got = score_many(space, ["wrcor", "wrcor_official"], archs, x, y, num_classes=10,
                         device=torch.device("cpu"), group_size=group)
        assert_same(ref, got, ["wrcor", "wrcor_official"], 1e-5)


def test_out_of_memory_splits_the_group_and_loses_nothing(reference64, monkeypatch):
    space, archs, x, y, ref = reference64
    real = type(space).stacked_pass
    sizes = []

    def limited(self, group, *a):
        sizes.append(len(group))
        if len(group) > 3:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return real(self, group, *a)

    monkeypatch.setattr(type(space), "stacked_pass", limited)
    engine = Engine(space, FAMILY, num_classes=10, device=torch.device("cpu"), group_size=16, dtype=torch.float64)
    got = {a: o for g in engine.run(archs, x, y) for a, o in g}
    assert_same(ref, got, FAMILY, 1e-9)
    assert engine.n_oom_splits >= 2 and engine.group_size <= 3
    assert max(sizes[sizes.index(16) + 1:]) <= 8  # split in halves, then the smaller size is kept


def test_one_architecture_out_of_memory_is_recorded_and_the_rest_scored(reference64, monkeypatch):
    space, archs, x, y, ref = reference64
    victim = archs[2][0]
    real = type(space).stacked_pass

    def fails_on_victim(self, group, *a):
        if any(space.to_str(g) == victim for g in group.archs):
            raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")
        return real(self, group, *a)

    monkeypatch.setattr(type(space), "stacked_pass", fails_on_victim)
    got = score_many(space, ["wrcor"], archs, x, y, num_classes=10, device=torch.device("cpu"), group_size=4,
                     dtype=torch.float64)
    assert got[victim]["wrcor"].status == "oom" and "one architecture" in got[victim]["wrcor"].message
    others = {a: o for a, o in ref.items() if a != victim}
    assert_same(others, {a: got[a] for a in others}, ["wrcor"], 1e-9)


def test_a_build_failure_is_recorded_for_its_architecture_only(reference64):
    space, archs, x, y, ref = reference64
    bad = [("|not_an_op~0|+|none~0|none~1|+|none~0|none~1|none~2|", 1)]
    got = score_many(space, ["wrcor"], archs[:3] + bad + archs[3:5], x, y, num_classes=10,
                     device=torch.device("cpu"), group_size=4, dtype=torch.float64)
    assert got[bad[0][0]]["wrcor"].status == "error" and "not_an_op" in got[bad[0][0]]["wrcor"].message
    good = dict(archs[:5])
    assert_same({a: ref[a] for a in good}, {a: got[a] for a in good}, ["wrcor"], 1e-9)


def test_worker_processes_build_the_same_groups(reference64):
    space, archs, x, y, ref = reference64
    engine, workers = make_engine(space, ["wrcor", "gcor"], num_classes=10, device=torch.device("cpu"), group_size=3,
                                  workers=2, dtype=torch.float64)
    assert workers == 2 or shutil.disk_usage("/dev/shm").free < 1 << 30
    got = {a: o for g in engine.run(archs[:8], x, y) for a, o in g}
    assert_same({a: ref[a] for a, _ in archs[:8]}, got, ["wrcor", "gcor"], 1e-9)


def test_subset_of_a_group_scores_its_architectures_alone(reference64):
    space, archs, x, y, ref = reference64
    nets = [space.build(a, 10, seed=s) for a, s in archs[:7]]
    group = pack_group(nets)
    sub = group.subset([1, 4, 6])
    assert [space.to_str(a) for a in sub.archs] == [archs[i][0] for i in (1, 4, 6)]
    for name, t in sub.tensors.items():
        assert t.shape[0] == len(sub.holders(name))
    with pytest.raises(ValueError, match="increasing"):
        group.subset([4, 1])


def test_pack_group_needs_fresh_networks():
    space = small_space()
    net = space.build(sample(space, 1)[0][0], 10, seed=0)
    net.stem[1].weight.data.fill_(2.0)
    with pytest.raises(ValueError, match="freshly initialised"):
        pack_group([net])


def test_batched_correlation_matches_the_one_matrix_version():
    g = torch.Generator().manual_seed(3)
    t = torch.randn(9, 5, 7, 3, generator=g)
    t[:, 2] = 1.0  # one architecture whose samples are all constant: NaN, flagged
    c, bad = batched_abs_correlation(t, torch.float64)
    for j in range(5):
        ref, ref_bad = corrcoef(t[:, j])
        assert bool(bad[j]) == bool(ref_bad)
        if not ref_bad:
            torch.testing.assert_close(c[j], ref.abs(), rtol=0, atol=1e-12)
            np.testing.assert_allclose(c[j].numpy(), np.abs(np.corrcoef(t[:, j].reshape(9, -1).double().numpy())),
                                       atol=1e-12)


def test_supports_only_the_correlation_family_on_stacked_spaces():
    assert supports(spaces.get_space("nb201"), "wrcor") and supports(spaces.get_space("nats_tss"), "gcor")
    assert not supports(spaces.get_space("nb201"), "synflow")
    assert not supports(spaces.get_space("darts"), "wrcor")
    with pytest.raises(ValueError, match="cannot score"):
        Engine(spaces.get_space("nb201"), ["wrcor", "snip"], num_classes=10, device=torch.device("cpu"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_gpu_engine_equals_one_architecture_path_on_the_gpu():
    """The GPU path (pinned memory, asynchronous copies, build workers, cuDNN's grouped kernels):
    float64 to 1e-9, float32 within 1e-5 of the one-architecture path on the same GPU."""
    space = spaces.get_space("nb201")
    archs = sample(space, 40, seed=5)
    cuda = torch.device("cuda")
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False  # the harness's default
    for dtype, tol in ((torch.float64, 1e-9), (torch.float32, 1e-5)):
        x, y = batch(16, dtype)
        x, y = x.to(cuda), y.to(cuda)
        ref = {}
        for a, s in archs:
            ref[a] = proxies.compute_outcomes(["wrcor", "wrcor_official"], space.build(a, 10, seed=s).to(cuda, dtype),
                                              x, y, space=space)
        engine, _ = make_engine(space, ["wrcor", "wrcor_official"], num_classes=10, device=cuda, group_size=16,
                                workers=2, dtype=dtype)
        got = {a: o for g in engine.run(archs, x, y) for a, o in g}
        assert_same(ref, got, ["wrcor", "wrcor_official"], tol)


def test_build_workers_are_limited_by_shared_memory(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from harness.scoring import builds as eng

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, 64 << 20))  # docker's default /dev/shm
    assert eng.workers_that_fit(8, 32) == 0
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, 64 << 30))
    assert eng.workers_that_fit(8, 32) == 8
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(0, 0, 2 << 30))
    assert 0 < eng.workers_that_fit(8, 32) < 8
    assert eng.workers_that_fit(0, 32) == 0


def test_build_workers_that_cannot_start_fall_back_to_this_process(reference64, monkeypatch, caplog):
    space, archs, x, y, ref = reference64
    real_iter = torch.utils.data.DataLoader.__iter__

    def no_children(self):
        if self.num_workers:
            raise AssertionError("daemonic processes are not allowed to have children")
        return real_iter(self)

    monkeypatch.setattr(torch.utils.data.DataLoader, "__iter__", no_children)
    engine, _ = make_engine(space, ["wrcor"], num_classes=10, device=torch.device("cpu"), group_size=4, workers=2,
                            dtype=torch.float64)
    with caplog.at_level("WARNING"):
        got = {a: o for g in engine.run(archs[:6], x, y) for a, o in g}
    assert "building in this process" in caplog.text
    assert_same({a: ref[a] for a, _ in archs[:6]}, got, ["wrcor"], 1e-9)
