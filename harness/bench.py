"""``make bench``: what a proxy costs relative to one plain forward+backward of the same network.

For each of ``--archs`` NB201 architectures (sampled with a fixed seed), on a batch of 64 real
CIFAR-10 images, it times one plain forward+backward (cross-entropy) and then one proxy
computation through ``proxies.compute`` (which includes the Probe's private copy of the net), each
the minimum of ``--repeat`` runs, and prints the per-architecture ratio's median and quartiles.
Runs on the CPU, and on the GPU too when there is one.

Then (``--search-steps``, default 1000) it times the search machinery: each strategy's
1000-step search on NB201 with every score already stored (:func:`bench_search`).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import proxies
from proxies.probe import synchronize
import spaces

from . import data

#: the eight activation/gradient proxies of the standard pass: WRCor, its unweighted RCor / ACor /
#: GCor (paper convention), NASWOT's codes, and the gradient-based snip, grad_norm, fisher
EIGHT = ["wrcor", "wrcor(weighting=none)", "wrcor(responses=act, weighting=none)",
         "wrcor(responses=grad, weighting=none)", "naswot", "snip", "grad_norm", "fisher"]
SETS = {"wrcor": ["wrcor"],
        "5 response proxies, one pass": ["wrcor", "wrcor_official", "rcor", "acor", "gcor"],
        "8 act/grad proxies, one pass": EIGHT}
#: with --all: every registered single-network proxy, all passes (about 10x a plain pass)
EVERY = "every proxy (all passes)"


def _timed(fn, device, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        synchronize(device)
        t = time.perf_counter()
        fn()
        synchronize(device)
        best = min(best, time.perf_counter() - t)
    return best


def bench(device: torch.device, n_archs: int, repeat: int, seed: int = 0, every: bool = False) -> dict:
    space = spaces.get_space("nb201")
    rng = np.random.default_rng(seed)
    archs = []
    while len(archs) < n_archs:
        a = space.sample(rng)
        if a not in archs:
            archs.append(a)
    try:
        x, y = data.batch("cifar10", 64, seed=seed, device=device)
    except Exception as err:  # no data: Gaussian inputs cost the same
        print(f"(real images unavailable: {err}; timing on Gaussian inputs)")
        x, y = data.batch("cifar10", 64, seed=seed, kind="noise", device=device)
    sets = dict(SETS)
    if every:
        sets[EVERY] = proxies.list_proxies(votes=False)
    ratios: dict[str, list[float]] = {k: [] for k in sets}
    plain_s: list[float] = []
    for i, arch in enumerate(archs):
        net = space.build(arch, 10, seed=i).to(device)

        def plain():
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()

        plain()  # warm-up (allocator, kernels)
        t_plain = _timed(plain, device, repeat)
        plain_s.append(t_plain)
        for label, names in sets.items():
            t = _timed(lambda: proxies.compute(names, net, x, y), device, repeat)
            ratios[label].append(t / t_plain)
    out = {"device": device.type, "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
           else platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "n_archs": n_archs, "repeat": repeat,
           "plain_fwd_bwd_s_median": statistics.median(plain_s), "sets": sets, "ratios": {}}
    for label, r in ratios.items():
        q = np.percentile(r, [25, 50, 75])
        out["ratios"][label] = {"median": float(q[1]), "q25": float(q[0]), "q75": float(q[2]), "max": float(max(r))}
    return out


def bench_search(steps: int = 1000, objectives=("wrcor", "vote_sjw"), seed: int = 0) -> dict:
    """The search machinery alone: ``steps``-step searches of every strategy on NB201 with every
    score already in the store.  A temporary store is filled with synthetic scores under the real
    keys for all 15,625 architectures (so no network is built), then each search runs through
    :func:`harness.search.run_search` exactly as the CLI does (store lookups, votes, the policy
    updates, the trajectory, the ground-truth lookups, the files and the figure)."""
    import tempfile

    from hydra import compose, initialize_config_dir

    from .run import score_keys, space_from_cfg
    from .search import run_search
    from .store import Record, ScoreStore

    conf = str(Path(__file__).resolve().parents[1] / "conf")
    out: dict = {"steps": steps, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        def cfg_for(*overrides):
            with initialize_config_dir(config_dir=conf, version_base="1.3"):
                return compose(config_name="search_run", overrides=["tracking=none", "device=cpu",
                                                                    f"store.path={tmp}/s.sqlite", *overrides])

        base = cfg_for()
        space, space_kw = space_from_cfg(base)
        comps = sorted({c for o in objectives for c in (proxies.get_proxy(o).components or (o,))})
        keys = score_keys(space=space, archs=list(space.enumerate()), proxy_names=comps, dataset="cifar10", seed=0,
                          batch_size=int(base.batch.size), input_kind=base.batch.kind, sampling=base.batch.sampling,
                          device=torch.device("cpu"), space_kw=space_kw)
        rng = np.random.default_rng(seed)
        with ScoreStore(f"{tmp}/s.sqlite") as store:
            store.put_many(Record(k, float(rng.normal()), "ok", float(rng.uniform(0.5, 1.5)))
                           for ks in keys.values() for k in ks.values())
        for objective in objectives:
            for strategy in ("random", "evolution", "reinforce"):
                cfg = cfg_for(f"search={strategy}", f"objective={objective}", f"budget={steps}", f"seed={seed}",
                              "progress_every=100000")
                t = time.perf_counter()
                res = run_search(cfg, output_dir=f"{tmp}/{strategy}-{objective}")
                total = time.perf_counter() - t
                if res["n_computed"]:
                    raise RuntimeError(f"the search bench computed {res['n_computed']} scores: the store was not full")
                out["runs"].append({"strategy": strategy, "objective": objective, "loop_s": res["wall_s"],
                                    "total_s": total, "n_scored": res["n_scored"]})
        # the whole command as a user runs it: interpreter start, imports, Hydra, the search, the files
        import subprocess
        import sys

        cmd = [sys.executable, "-m", "harness.search", "search=reinforce", "objective=vote_sjw", f"budget={steps}",
               "tracking=none", "device=cpu", f"store.path={tmp}/s.sqlite", f"hydra.run.dir={tmp}/cli"]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=Path(conf).parent)
        out["cli"] = {"command": " ".join(cmd[1:4] + cmd[4:7]), "total_s": time.perf_counter() - t,
                      "ok": proc.returncode == 0, "last_line": proc.stdout.strip().splitlines()[-1:]}
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=50, help="architectures for the proxy timing (0: skip it)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--all", action="store_true", help="also time every registered proxy together")
    ap.add_argument("--search-steps", type=int, default=1000,
                    help="steps of the cached-search timing (0: skip it)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    Path(args.out).mkdir(parents=True, exist_ok=True)
    for dev in devices if args.archs > 0 else []:  # --archs 0: only the search timing
        res = bench(dev, args.archs, args.repeat, every=args.all)
        print(f"\n{dev.type} ({res['device_name']}, {res['threads']} thread(s), torch {res['torch']}): "
              f"{res['n_archs']} NB201 archs, batch 64, min of {res['repeat']} runs each")
        print(f"  plain forward+backward: median {res['plain_fwd_bwd_s_median']:.3f} s")
        print(f"  {'proxy set':32s} {'median':>7s} {'q25':>6s} {'q75':>6s} {'max':>6s}   (time / plain fwd+bwd)")
        for label, r in res["ratios"].items():
            print(f"  {label:32s} {r['median']:7.2f} {r['q25']:6.2f} {r['q75']:6.2f} {r['max']:6.2f}")
        print(f"  (8 act/grad proxies: {', '.join(EIGHT)})")
        (Path(args.out) / f"nb201_{dev.type}.json").write_text(json.dumps(res, indent=2))
    if args.search_steps:
        res = bench_search(args.search_steps)
        print(f"\nsearch machinery (CPU, every NB201 score already stored): {res['steps']} steps per search")
        print(f"  {'strategy':10s} {'objective':10s} {'loop s':>7s} {'total s':>8s} {'distinct':>8s}")
        for r in res["runs"]:
            print(f"  {r['strategy']:10s} {r['objective']:10s} {r['loop_s']:7.2f} {r['total_s']:8.2f} {r['n_scored']:8d}")
        cli = res["cli"]
        print(f"  the command line, end to end (python {cli['command']} ...): {cli['total_s']:.2f} s"
              + ("" if cli["ok"] else " FAILED"))
        (Path(args.out) / "search_cpu.json").write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
