"""``make bench``: what a proxy costs relative to one plain forward+backward of the same network.

For each of ``--archs`` NB201 architectures (sampled with a fixed seed), on a batch of 64 real
CIFAR-10 images, it times one plain forward+backward (cross-entropy) and then one proxy
computation through ``proxies.compute`` (which includes the Probe's private copy of the net), each
the minimum of ``--repeat`` runs, and prints the per-architecture ratio's median and quartiles.
Runs on the CPU, and on the GPU too when there is one.

Then (``--search-steps``, default 1000) it times the search machinery: each strategy's
1000-step search on NB201 with every score already stored (:func:`bench_search`).

Last (``--engine-archs``), the scoring engine against the alternatives, on the same
architectures and batch, on the GPU when there is one (else the CPU), end to end per
architecture (network construction included): (a) a naive port of the released WRCor code's
approach (:func:`naive_wrcor`), (b) the one-architecture path (``proxies.compute_outcomes``), (c)
the engine (:class:`proxies.engine.Engine`), and (d) one plain forward+backward (construction
excluded).  It logs them to MLflow (experiment ``zsnas-bench-bench``) and prints, as its last line
of standard output, one JSON object: ``device``, ``n_archs``, ``archs_per_s_naive``,
``archs_per_s_one_arch``, ``archs_per_s_engine``, ``archs_per_s_plain``, ``engine_over_plain``
(the engine's time per architecture / one plain forward+backward), ``engine_speedup_over_naive``
and the largest relative score differences between the paths.
"""
from __future__ import annotations

import copy
import os
import platform
import statistics
import time
from typing import Any
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

import proxies
from proxies.probe import synchronize, watching
import spaces
from spaces.base import seed_for

from . import data
from .jsonio import dumps, write_json
from .reports.metrics import kendall_tau
from .scoring.builds import make_engine

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


def _sample_archs(space: Any, n: int, seed: int) -> list:
    """``n`` distinct architectures of ``space``, drawn with a fixed seed (the same for every
    timing of one run)."""
    rng = np.random.default_rng(seed)
    archs: list = []
    while len(archs) < n:
        a = space.sample(rng)
        if a not in archs:
            archs.append(a)
    return archs


def _batch(device: torch.device, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """64 real CIFAR-10 images; Gaussian inputs of the same shape (which cost the same) where the
    images are not there."""
    try:
        return data.batch("cifar10", 64, seed=seed, device=device)
    except Exception as err:
        print(f"(real images unavailable: {err}; timing on Gaussian inputs)")
        return data.batch("cifar10", 64, seed=seed, kind="noise", device=device)


def bench(device: torch.device, n_archs: int, repeat: int, seed: int = 0, every: bool = False) -> dict:
    space = spaces.get_space("nb201")
    archs = _sample_archs(space, n_archs, seed)
    x, y = _batch(device, seed)
    sets = dict(SETS)
    if every:
        sets[EVERY] = proxies.list_proxies()
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
            t = _timed(lambda: proxies.compute(names, net, x, y, space=space), device, repeat)
            ratios[label].append(t / t_plain)
    out = {"device": device.type, "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
           else platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "n_archs": n_archs, "repeat": repeat,
           "plain_fwd_bwd_s_median": statistics.median(plain_s), "sets": sets, "ratios": {}}
    for label, r in ratios.items():
        q = np.percentile(r, [25, 50, 75])
        out["ratios"][label] = {"median": float(q[1]), "q25": float(q[0]), "q75": float(q[2]), "max": float(max(r))}
    return out


def bench_each(device: torch.device, specs: list[str], n_archs: int, seed: int = 0) -> dict:
    """Each proxy of ``specs`` alone (its own ``proxies.compute_outcomes`` call: its pass, the
    Probe's private copy of the net; ``a+b`` times proxies together, e.g. AZ-NAS's three, which
    share one pass), once per architecture, on the first ``n_archs`` of the same
    fixed NB201 sample as :func:`bench` and the same batch of 64 real CIFAR-10 images: seconds per
    architecture (median, quartiles), the ratio to one plain forward+backward, and the values."""
    space = spaces.get_space("nb201")
    archs = _sample_archs(space, n_archs, seed)
    x, y = _batch(device, seed)
    seconds: dict[str, list[float]] = {s: [] for s in specs}
    values: dict[str, list[list[float | None]]] = {s: [] for s in specs}
    plain_s = []
    for i, arch in enumerate(archs):
        net = space.build(arch, 10, seed=i).to(device)

        def plain():
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()

        plain()
        plain_s.append(_timed(plain, device, 2))
        for spec in specs:
            t = time.perf_counter()
            outcomes = proxies.compute_outcomes(spec.split("+"), net, x, y, space=space, seed=seed)
            synchronize(device)
            seconds[spec].append(time.perf_counter() - t)
            values[spec].append([o.value if o.status in ("ok", "nan", "inf") else None for o in outcomes.values()])
    out = {"device": device.type, "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
           else platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
           "torch": torch.__version__, "n_archs": n_archs, "batch": 64,
           "archs": [str(a) for a in archs],
           "plain_fwd_bwd_s_median": statistics.median(plain_s), "proxies": {}}
    for spec in specs:
        q = np.percentile(seconds[spec], [25, 50, 75])
        out["proxies"][spec] = {"s_per_arch_median": float(q[1]), "q25": float(q[0]), "q75": float(q[2]),
                                "over_plain": float(q[1]) / out["plain_fwd_bwd_s_median"],
                                "tau_vs_first": _nan_to_none(kendall_tau(_floats(values[spec]), _floats(values[specs[0]]))),
                                "seconds": seconds[spec], "values": values[spec]}
    return out


def _floats(values: list[list]) -> list[float]:
    """Each architecture's first value (an error: NaN, which the rank metrics drop)."""
    return [float("nan") if v[0] is None else v[0] for v in values]


def _nan_to_none(x: float) -> float | None:
    return None if np.isnan(x) else x


def naive_wrcor(space: Any, net: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """WRCor (paper convention) the way the released code computes it: a deep copy of the network
    for the measure, a hook on every ReLU (installed by the probe) that moves the response to
    the host and runs ``numpy.corrcoef`` on it (one device synchronisation per hook), K accumulated
    in numpy, ``slogdet`` in numpy.  The bench's baseline; its value equals ``wrcor``'s up to
    wrcor's float32 correlations."""
    net = copy.deepcopy(net)
    net.train()
    net.zero_grad(set_to_none=True)
    n = x.shape[0]
    K = np.zeros((n, n))

    def add(t: torch.Tensor, layer: int) -> None:
        with np.errstate(invalid="ignore", divide="ignore"):  # a constant sample: NaN, skipped
            c = np.corrcoef(t.detach().reshape(n, -1).cpu().numpy())
        if not np.isnan(c).any():
            K[:] += 2.0 ** layer * np.abs(c)

    with watching(space.response_modules(net, "paper"), on_activation=lambda p, t: add(t, p.layer),
                  on_gradient=lambda p, g: add(g, p.layer)):
        F.cross_entropy(net(x), y).backward()
    return float(np.linalg.slogdet(K)[1])


def _rel(a: float, b: float) -> float:
    if not (np.isfinite(a) and np.isfinite(b)):
        return 0.0 if a == b else float("inf")
    return abs(a - b) / max(abs(b), 1e-300)


def bench_engine(device: torch.device, n_archs: int, *, batch: int = 64, group: int | None = None,
                 workers: int | None = None, seed: int = 0) -> dict:
    """(a) naive port, (b) one-architecture path, (c) engine, (d) plain forward+backward, on the
    same ``n_archs`` NB201 architectures and batch of real CIFAR-10 images: seconds and
    architectures per second, end to end (construction included, except for (d))."""
    space = spaces.get_space("nb201")
    rng = np.random.default_rng(seed + 1)
    archs: list[str] = []
    while len(archs) < n_archs:
        a = space.to_str(space.sample(rng))
        if a not in archs:
            archs.append(a)
    pairs = [(a, seed_for(seed, a)) for a in archs]
    x, y = data.batch("cifar10", batch, seed=seed, device=device)
    engine, n_workers = make_engine(space, ["wrcor"], num_classes=10, device=device, group_size=group, workers=workers)
    build = lambda a, s: space.build(a, 10, seed=s).to(device)  # noqa: E731

    # warm-up, untimed: allocator, kernels, cuDNN's choices for every path
    w_net = build(*pairs[0])
    naive_wrcor(space, w_net, x, y), proxies.compute_outcomes(["wrcor"], w_net, x, y, space=space)
    list(engine.run(pairs[: engine.group_size], x, y))
    synchronize(device)

    def timed(fn):
        synchronize(device)
        t = time.perf_counter()
        out = fn()
        synchronize(device)
        return out, time.perf_counter() - t

    naive, t_naive = timed(lambda: [naive_wrcor(space, build(a, s), x, y) for a, s in pairs])
    one, t_one = timed(lambda: [proxies.compute_outcomes(["wrcor"], build(a, s), x, y, space=space)["wrcor"].value
                                for a, s in pairs])
    got, t_engine = timed(lambda: {a: o["wrcor"].value for g in engine.run(pairs, x, y) for a, o in g})
    t_plain = 0.0
    for a, s in pairs:
        net = build(a, s)

        def plain():
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x), y).backward()

        t_plain += timed(plain)[1]
    per = {k: v / n_archs for k, v in (("naive", t_naive), ("one_arch", t_one), ("engine", t_engine),
                                       ("plain", t_plain))}
    return {
        "device": device.type,
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(), "torch": torch.__version__, "n_archs": n_archs, "batch": batch,
        "group": engine.group_size, "workers": n_workers, "oom_splits": engine.n_oom_splits,
        **{f"s_per_arch_{k}": v for k, v in per.items()},
        **{f"archs_per_s_{k}": 1.0 / v for k, v in per.items()},
        "engine_over_plain": per["engine"] / per["plain"],
        "one_arch_over_plain": per["one_arch"] / per["plain"],
        "engine_speedup_over_naive": per["naive"] / per["engine"],
        "max_rel_diff_engine_vs_one_arch": max(_rel(got[a], v) for a, v in zip(archs, one)),
        "max_rel_diff_naive_vs_one_arch": max(_rel(v, o) for v, o in zip(naive, one)),
    }


def compare_stores(a: str | Path, b: str | Path) -> dict:
    """Two stores' common keys (e.g. a job with the engine and one without): how many, whether
    the statuses and skip counts agree, and the largest relative difference of the values."""
    from .scoring.store import ScoreStore

    with ScoreStore(a) as sa, ScoreStore(b) as sb:
        ra = {r.key: r for r in sa.records()}
        rb = sb.get_many(ra)
    common = [k for k in ra if k in rb]
    diffs = [_rel(ra[k].value, rb[k].value) for k in common]
    return {"n_common": len(common), "n_archs": len({k.arch for k in common}),
            "proxies": sorted({k.proxy for k in common}),
            "status_mismatches": sum(ra[k].status != rb[k].status for k in common),
            "skip_mismatches": sum(ra[k].n_skipped != rb[k].n_skipped for k in common),
            "max_rel_diff": max(diffs, default=float("nan")),
            "median_rel_diff": float(np.median(diffs)) if diffs else float("nan")}


def _track_engine(res: dict) -> None:
    """The engine bench as an MLflow run (experiment ``zsnas-bench-bench``), next to the sweeps."""
    from .tracking import make_tracker

    tracker = make_tracker({"enabled": True, "uri": os.environ.get("ZSNAS_MLFLOW_URI", "mlruns.db"),
                            "experiment": "zsnas-bench-bench"})
    with tracker.run(f"engine-{res['device']}-{res['n_archs']}") as handle:
        handle.log_params({k: v for k, v in res.items() if isinstance(v, (str, int)) and not isinstance(v, bool)})
        handle.log_metrics({k: float(v) for k, v in res.items() if isinstance(v, float)})


def bench_search(steps: int = 1000, objectives=("wrcor", "vote_sjw"), seed: int = 0) -> dict:
    """The search machinery alone: ``steps``-step searches of every strategy on NB201 with every
    score already in the store.  A temporary store is filled with synthetic scores under the real
    keys for all 15,625 architectures (so no network is built), then each search runs through
    :func:`harness.search.run_search` exactly as the CLI does (store lookups, votes, the policy
    updates, the trajectory, the ground-truth lookups, the files and the figure)."""
    import tempfile

    from .config import SearchConfig, compose, config_dir, load
    from .scoring.run import score_keys, space_from_cfg
    from .search import run_search
    from .scoring.store import Record, ScoreStore

    out: dict = {"steps": steps, "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        def cfg_for(*overrides):
            return compose("search_run", ["tracking=none", "device=cpu", f"store.path={tmp}/s.sqlite", *overrides])

        base = load(cfg_for(), SearchConfig)
        space, space_kw = space_from_cfg(base)
        comps = sorted({c for o in objectives for c in proxies.components_of(o)})
        keys = score_keys(space=space, archs=list(space.enumerate()), proxy_names=comps, dataset="cifar10", seed=0,
                          batch_size=base.batch.size, input_kind=base.batch.kind.value,
                          sampling=base.batch.sampling.value, device=torch.device("cpu"), space_kw=space_kw)
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

        cmd = [sys.executable, "-m", "harness", "search", "search=reinforce", "objective=vote_sjw", f"budget={steps}",
               "tracking=none", "device=cpu", f"store.path={tmp}/s.sqlite", f"hydra.run.dir={tmp}/cli"]
        t = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=config_dir().parent)
        out["cli"] = {"command": " ".join(cmd[1:4] + cmd[4:7]), "total_s": time.perf_counter() - t,
                      "ok": proc.returncode == 0, "last_line": proc.stdout.strip().splitlines()[-1:]}
    return out


def _print_where(written: list[Path], tracked: bool) -> None:
    """The closing lines: the JSON files written, and the MLflow store of the engine run."""
    from .progress import files_entries, print_outputs
    from .tracking import tracking_entry

    entries = files_entries(written) or [("results", "none", "nothing was timed")]
    if tracked:
        entries.append(tracking_entry(True, os.environ.get("ZSNAS_MLFLOW_URI", "mlruns.db"), "zsnas-bench-bench"))
    print_outputs(entries)


def main(argv=None) -> int:
    from .commands import command_parser

    ap = command_parser("bench")
    ap.add_argument("--archs", type=int, default=50, help="architectures for the proxy timing (0: skip it)")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    ap.add_argument("--out", default="results/bench")
    ap.add_argument("--all", action="store_true", help="also time every registered proxy together")
    ap.add_argument("--each", nargs="+", metavar="PROXY", default=[],
                    help="also time each of these proxies alone per architecture (e.g. the peers: vkdnw swap ntk_cond); "
                         "a+b: together, in one call (proxies that share a pass)")
    ap.add_argument("--each-archs", type=int, default=5, help="architectures for --each (default 5)")
    ap.add_argument("--search-steps", type=int, default=1000,
                    help="steps of the cached-search timing (0: skip it)")
    ap.add_argument("--engine-archs", type=int, default=None,
                    help="architectures for the engine comparison (default: 200 on a GPU, 16 on the CPU; 0: skip)")
    ap.add_argument("--device", default="auto", help="device of the engine comparison: auto | cpu | cuda")
    ap.add_argument("--group", type=int, default=None, help="the engine's group size (default: its auto)")
    ap.add_argument("--workers", type=int, default=None, help="the engine's build workers (default: its auto)")
    ap.add_argument("--no-tracking", action="store_true", help="do not log the engine comparison to MLflow")
    ap.add_argument("--compare", nargs=2, metavar=("STORE_A", "STORE_B"),
                    help="only compare two score stores' common keys (see make verify-engine) and exit")
    ap.add_argument("--tf32", action="store_true", help="allow TensorFloat-32 on a GPU (off: float32 as on the CPU)")
    args = ap.parse_args(argv)
    for spec in (one for group in args.each for one in group.split("+")):  # before anything is timed
        try:
            proxies.get_proxy(spec)
        except (ValueError, KeyError) as err:  # a bad parameter; an unknown name (UnknownNameError)
            ap.exit(2, f"harness bench: --each {spec}: {err}\n")
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = args.tf32
    if args.compare:
        res = compare_stores(*args.compare)
        print(dumps(res, indent=None))
        return 0 if res["n_common"] and not res["status_mismatches"] else 1
    torch.set_num_threads(args.threads)
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if torch.cuda.is_available() else [])
    Path(args.out).mkdir(parents=True, exist_ok=True)
    written: list[Path] = []  # the files of this run, named by the closing lines
    tracked = False
    for dev in devices if args.archs > 0 else []:  # --archs 0: only the search timing
        res = bench(dev, args.archs, args.repeat, every=args.all)
        print(f"\n{dev.type} ({res['device_name']}, {res['threads']} thread(s), torch {res['torch']}): "
              f"{res['n_archs']} NB201 archs, batch 64, min of {res['repeat']} runs each")
        print(f"  plain forward+backward: median {res['plain_fwd_bwd_s_median']:.3f} s")
        print(f"  {'proxy set':32s} {'median':>7s} {'q25':>6s} {'q75':>6s} {'max':>6s}   (time / plain fwd+bwd)")
        for label, r in res["ratios"].items():
            print(f"  {label:32s} {r['median']:7.2f} {r['q25']:6.2f} {r['q75']:6.2f} {r['max']:6.2f}")
        print(f"  (8 act/grad proxies: {', '.join(EIGHT)})")
        written.append(write_json(Path(args.out) / f"nb201_{dev.type}.json", res))
    for dev in devices if args.each else []:
        res = bench_each(dev, args.each, args.each_archs)
        print(f"\neach proxy alone on {dev.type} ({res['device_name']}, {res['threads']} thread(s)): "
              f"{res['n_archs']} NB201 archs, batch 64, one run each; plain forward+backward "
              f"{res['plain_fwd_bwd_s_median']:.3f} s")
        width = max(len("proxy"), *(len(spec) for spec in res["proxies"]))
        print(f"  {'proxy':{width}s} {'s/arch':>7s} {'q25':>7s} {'q75':>7s} {'/ plain':>8s} {'tau vs first':>12s}")
        for spec, r in res["proxies"].items():
            tau = "-" if r["tau_vs_first"] is None else f"{r['tau_vs_first']:.3f}"
            print(f"  {spec:{width}s} {r['s_per_arch_median']:7.2f} {r['q25']:7.2f} {r['q75']:7.2f} {r['over_plain']:8.1f} "
                  f"{tau:>12s}")
        print("  (tau vs first: Kendall tau over the architectures between each row's value and the first row's; "
              "for a+b, a's)")
        written.append(write_json(Path(args.out) / f"proxies_{dev.type}.json", res))
    if args.search_steps:
        res = bench_search(args.search_steps)
        print(f"\nsearch machinery (CPU, every NB201 score already stored): {res['steps']} steps per search")
        print(f"  {'strategy':10s} {'objective':10s} {'loop s':>7s} {'total s':>8s} {'distinct':>8s}")
        for r in res["runs"]:
            print(f"  {r['strategy']:10s} {r['objective']:10s} {r['loop_s']:7.2f} {r['total_s']:8.2f} {r['n_scored']:8d}")
        cli = res["cli"]
        print(f"  the command line, end to end (python {cli['command']} ...): {cli['total_s']:.2f} s"
              + ("" if cli["ok"] else " FAILED"))
        written.append(write_json(Path(args.out) / "search_cpu.json", res))
    from .scoring.run import resolve_device

    device = resolve_device(args.device)
    n_engine = args.engine_archs if args.engine_archs is not None else (200 if device.type == "cuda" else 16)
    if n_engine:
        res = bench_engine(device, n_engine, group=args.group, workers=args.workers)
        print(f"\nWRCor end to end on {res['device']} ({res['device_name']}, {res['threads']} thread(s)): "
              f"{res['n_archs']} NB201 archs, batch {res['batch']}, engine groups of {res['group']}, "
              f"{res['workers']} build worker(s)")
        print(f"  {'path':44s} {'s/arch':>8s} {'archs/s':>8s}")
        for key, label in (("naive", "(a) naive port of the released code"), ("one_arch", "(b) one-architecture path"),
                           ("engine", "(c) engine"), ("plain", "(d) plain forward+backward (no proxy)")):
            print(f"  {label:44s} {res['s_per_arch_' + key]:8.4f} {res['archs_per_s_' + key]:8.2f}")
        print(f"  engine / plain {res['engine_over_plain']:.2f}; one-arch / plain {res['one_arch_over_plain']:.2f}; "
              f"engine {res['engine_speedup_over_naive']:.1f}x the naive port; largest relative difference "
              f"engine vs one-arch {res['max_rel_diff_engine_vs_one_arch']:.1e}, naive vs one-arch "
              f"{res['max_rel_diff_naive_vs_one_arch']:.1e}")
        written.append(write_json(Path(args.out) / f"engine_{res['device']}.json", res))
        if not args.no_tracking:
            _track_engine(res)
            tracked = True
    _print_where(written, tracked)
    if n_engine:
        print(dumps({k: res[k] for k in ("device", "device_name", "n_archs", "batch", "group", "threads",
                                              "archs_per_s_naive", "archs_per_s_one_arch", "archs_per_s_engine",
                                              "archs_per_s_plain", "engine_over_plain", "engine_speedup_over_naive",
                                              "max_rel_diff_engine_vs_one_arch", "max_rel_diff_naive_vs_one_arch")}, indent=None))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
