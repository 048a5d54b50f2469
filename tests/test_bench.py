"""``harness bench``'s engine comparison: the four paths compute the same WRCor, the figures are
consistent, the last line of standard output is the JSON object, and two stores compare."""
from __future__ import annotations

import json
import math

import pytest
import torch

import spaces
from conftest import needs_data
from harness import bench
from harness.scoring.store import Record, ScoreKey, ScoreStore


def test_naive_port_equals_wrcor_on_degenerate_and_random_cells():
    space = spaces.get_space("nb201", channels=4, cells_per_stage=1)
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, 10, (8,), generator=g)
    import proxies

    for arch in ("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|",
                 "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"):
        net = space.build(arch, 10, seed=1)
        ours = proxies.compute(["wrcor"], net, x, y, space=space)["wrcor"]
        naive = bench.naive_wrcor(space, net, x, y)
        assert naive == ours if not math.isfinite(ours) else naive == pytest.approx(ours, rel=1e-5)


@needs_data
def test_engine_bench_prints_its_json_last(capsys, tmp_path):
    assert bench.main(["--archs", "0", "--search-steps", "0", "--engine-archs", "2", "--device", "cpu",
                       "--no-tracking", "--out", str(tmp_path)]) == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    res = json.loads(last)
    for k in ("device", "n_archs", "archs_per_s_naive", "archs_per_s_engine", "engine_over_plain"):
        assert k in res
    assert res["device"] == "cpu" and res["n_archs"] == 2
    assert res["max_rel_diff_engine_vs_one_arch"] <= 1e-5 and res["max_rel_diff_naive_vs_one_arch"] <= 1e-5
    assert res["engine_over_plain"] == pytest.approx(res["archs_per_s_plain"] / res["archs_per_s_engine"])
    saved = json.loads((tmp_path / "engine_cpu.json").read_text())
    assert saved["archs_per_s_engine"] == res["archs_per_s_engine"]


def test_compare_stores(tmp_path):
    def key(a, p="wrcor"):
        return ScoreKey("nb201", a, "cifar10", p, 0, 64, "real", "2")

    with ScoreStore(tmp_path / "a.sqlite") as a, ScoreStore(tmp_path / "b.sqlite") as b:
        a.put_many([Record(key("x"), 100.0, "ok", 1.0), Record(key("y"), float("-inf"), "inf", 1.0, 3),
                    Record(key("only_a"), 1.0, "ok", 1.0)])
        b.put_many([Record(key("x"), 100.0001, "ok", 1.0), Record(key("y"), float("-inf"), "inf", 1.0, 3)])
    res = bench.compare_stores(tmp_path / "a.sqlite", tmp_path / "b.sqlite")
    assert res["n_common"] == 2 and res["status_mismatches"] == 0 and res["skip_mismatches"] == 0
    assert res["max_rel_diff"] == pytest.approx(1e-6, rel=1e-3)


@needs_data
def test_each_times_every_named_proxy_alone_and_together(capsys, tmp_path):
    specs = ["params", "vkdnw_dim", "l2_norm+params"]
    assert bench.main(["--archs", "0", "--search-steps", "0", "--engine-archs", "0", "--each", *specs,
                       "--each-archs", "4", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "each proxy alone on cpu" in out and "l2_norm+params" in out and "proxies_cpu.json" in out
    res = json.loads((tmp_path / "proxies_cpu.json").read_text())
    assert res["n_archs"] == 4 and len(res["archs"]) == 4 and list(res["proxies"]) == specs
    space = spaces.get_space("nb201")
    for spec in specs:
        r = res["proxies"][spec]
        assert len(r["seconds"]) == 4 and r["q25"] <= r["s_per_arch_median"] <= r["q75"]
        assert r["over_plain"] == pytest.approx(r["s_per_arch_median"] / res["plain_fwd_bwd_s_median"])
    # rank agreement with the first row: scipy's tau over the architectures (l2_norm+params: l2_norm's)
    from scipy.stats import kendalltau

    first = [v[0] for v in res["proxies"]["params"]["values"]]
    assert res["proxies"]["params"]["tau_vs_first"] == pytest.approx(1.0)
    for spec in specs[1:]:
        mine = [v[0] for v in res["proxies"][spec]["values"]]
        assert res["proxies"][spec]["tau_vs_first"] == pytest.approx(kendalltau(mine, first)[0])
    # the values are the proxies' own, in the order named
    for arch, dim, (l2, params) in zip(res["archs"], res["proxies"]["vkdnw_dim"]["values"],
                                       res["proxies"]["l2_norm+params"]["values"]):
        net = space.build(arch, 10, seed=0)
        assert dim == [float(len(list(net.named_parameters())))]
        assert params == pytest.approx(sum(p.numel() for p in net.parameters()) / 1e6)  # in millions


@pytest.mark.parametrize("spec, words", [("bogus", "unknown proxy 'bogus'"),
                                         ("l2_norm+vkdnw(jacobian=nope)", "jacobian='nope'")])
def test_each_refuses_a_bad_proxy_in_one_line(capsys, tmp_path, spec, words):
    with pytest.raises(SystemExit) as exit_:  # the default timings would run first if it were not refused at once
        bench.main(["--each", spec, "--out", str(tmp_path)])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert words in err and len(err.strip().splitlines()) == 1
    assert not list(tmp_path.iterdir())
