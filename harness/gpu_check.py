"""``harness gpu-check`` (``make gpu-check``): the device check of issue 21 as one command with a
time budget, so that a scarce GPU lease is spent measuring, not debugging.

Steps, in order, each skipped when the budget left is too short for it (``--steps`` picks some):

``env``            the device, torch, CUDA and cuDNN versions;
``golden``         the released WRCor code's 13 measures of the 10 golden NB201 architectures
                   (:mod:`harness.golden`) computed on the device, TF32 off, against the CPU's
                   tolerances: the largest relative difference of each measure;
``engine``         :func:`harness.bench.bench_engine` on the device: archs/s of the naive port of
                   the released code, the one-architecture path, the engine and a plain
                   forward+backward, and the engine's largest difference to the one-architecture
                   path (written as ``engine_<device>.json`` too);
``sweep``          the engine's archs/s over ``--groups`` x ``--workers`` (the scores of every
                   setting compared with the first's): what the ``auto`` defaults should be;
``deterministic``  the best setting with ``cudnn.deterministic`` off and on (the harness runs with
                   it on): the speed it costs and whether the scores stay equal;
``profile``        where the engine's time goes (``torch.profiler``, top operators), when it
                   misses ``--target`` archs/s (or always, with ``--profile``);
``space``          every NB201 architecture (``--quick``: a few) scored by ``harness run`` on each
                   of ``--datasets``: first the WRCor family (the engine), then, as the budget
                   allows, ``--baselines``; each dataset's store is gzipped into ``--out``, and
                   ``--stores`` seeds the stores from such files, so a later lease goes on where
                   this one stopped.

Everything lands in ``--out`` (at most eight files: the device tool brings back no more):
``gpu_check_<device>.json`` (rewritten after every step, so a killed run keeps what it measured),
``engine_<device>.json``, ``store_<dataset>.sqlite.gz``, ``records.tar.gz`` (the finished scoring
jobs' ``scores.csv``, ``metrics.csv``, ``summary.json``: ``harness paper-report --records`` makes
the tables of them) and ``gpu_check.log`` (the scoring jobs' last lines).  On the CPU (``--quick``) it is the check of the check: ``tests/test_gpu_check.py``
runs it there.
"""
from __future__ import annotations

import gzip
import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Sequence

STEPS = ("env", "golden", "engine", "sweep", "deterministic", "profile", "space")
WRCOR_FAMILY = ("wrcor", "wrcor_official", "rcor", "acor", "gcor")
BASELINES = ("synflow", "jacob_cov", "naswot", "snip", "grad_norm", "fisher", "grasp", "l2_norm", "params", "flops")
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
#: issue 21's target: the whole NB201 space (15,625) in 5 minutes
TARGET_ARCHS_PER_S = 50.0
#: seconds a step needs at least (it is skipped with less left); the space step takes what is left
NEEDS = {"env": 0, "golden": 20, "engine": 40, "sweep": 40, "deterministic": 20, "profile": 15, "space": 30}


def device_slug(device: Any) -> str:
    """``cpu``, or the GPU's name as a file-name part (``nvidia_h100_80gb_hbm3``)."""
    import torch

    if torch.device(device).type != "cuda":
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "_", torch.cuda.get_device_name(device).lower()).strip("_") or "cuda"


def _sync(device: Any) -> None:
    from proxies.probe import synchronize

    synchronize(device)


# --------------------------------------------------------------------------- the steps
def step_env(ctx: "Check") -> dict:
    import torch

    dev = ctx.device
    return {"device": dev.type, "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda"
            else platform.processor() or platform.machine(),
            "torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if dev.type == "cuda" else None,
            "python": platform.python_version(), "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(), "tf32": False}


def step_golden(ctx: "Check") -> dict:
    from . import data, golden

    entries, arrays = golden.load()
    x, y = data.batch("cifar10", 64, seed=None, sampling="first", device=ctx.device)
    ids = sorted(entries)[:1] if ctx.quick else sorted(entries)
    per_arch: dict[int, dict[str, float]] = {}
    t = time.perf_counter()
    for i in ids:
        per_arch[i] = golden.errors(entries[i], golden.score(entries[i], arrays, x, y))
    names = list(golden.GOLDEN_MAP)
    worst = {n: max(per_arch[i][n] for i in ids) for n in names}
    failing = {n: worst[n] for n in names if not worst[n] <= golden.tolerance(n)}
    return {"archs": ids, "max_rel_diff": worst, "tolerance": {n: golden.tolerance(n) for n in names},
            "within_cpu_tolerance": not failing, "outside_tolerance": failing,
            "worst_arch": {n: max(ids, key=lambda i: per_arch[i][n]) for n in names},
            "seconds": time.perf_counter() - t}


def step_engine(ctx: "Check") -> dict:
    from .bench import bench_engine
    from .jsonio import write_json

    res = bench_engine(ctx.device, ctx.n_engine)
    res["engine_equals_one_arch"] = res["max_rel_diff_engine_vs_one_arch"] <= 1e-5
    ctx.written.append(write_json(ctx.out / f"engine_{ctx.slug}.json", res))
    return res


def _engine_pass(ctx: "Check", pairs: list, group: int, workers: int) -> tuple[float, dict[str, float], int]:
    """(archs/s of the engine over ``pairs``, arch -> wrcor, OOM splits), one untimed group first."""
    from .scoring.builds import make_engine

    engine, _ = make_engine(ctx.space, ["wrcor"], num_classes=10, device=ctx.device, group_size=group,
                            workers=workers)
    list(engine.run(pairs[:group], ctx.x, ctx.y))  # warm-up: allocator, kernels, cuDNN's choices
    _sync(ctx.device)
    t = time.perf_counter()
    got = {a: o["wrcor"].value for g in engine.run(pairs, ctx.x, ctx.y) for a, o in g}
    _sync(ctx.device)
    return len(pairs) / (time.perf_counter() - t), got, engine.n_oom_splits


def _max_rel(a: dict[str, float], b: dict[str, float]) -> float:
    """The largest relative difference of ``a`` to ``b`` over ``b``'s keys (NaN beside NaN: 0)."""
    from .bench import _rel

    return max((0.0 if math.isnan(a[k]) and math.isnan(b[k]) else _rel(a[k], b[k]) for k in b), default=0.0)


def step_sweep(ctx: "Check") -> dict:
    rows, ref = [], None
    for g in ctx.groups:
        for w in ctx.workers:
            if ctx.left() < 10:
                rows.append({"group": g, "workers": w, "skipped": "out of time"})
                continue
            n = max(ctx.n_sweep, 2 * g)
            rate, got, splits = _engine_pass(ctx, ctx.pairs(n), g, w)
            ref = ref or got
            rows.append({"group": g, "workers": w, "n_archs": n, "archs_per_s": rate, "oom_splits": splits,
                         "max_rel_diff_vs_first": _max_rel(got, {k: ref[k] for k in got if k in ref})})
    done = [r for r in rows if "archs_per_s" in r]
    best = max(done, key=lambda r: r["archs_per_s"]) if done else None
    return {"rows": rows, "best": best}


def step_deterministic(ctx: "Check") -> dict:
    import torch

    best = (ctx.results.get("sweep") or {}).get("best") or {"group": ctx.groups[0], "workers": ctx.workers[0]}
    g, w = best["group"], best["workers"]
    pairs = ctx.pairs(max(ctx.n_sweep, 2 * g))
    out = {"group": g, "workers": w, "n_archs": len(pairs)}
    scores = {}
    before = torch.backends.cudnn.deterministic
    try:
        for flag in (False, True):
            torch.backends.cudnn.deterministic = flag
            out[f"archs_per_s_deterministic_{str(flag).lower()}"], scores[flag], _ = _engine_pass(ctx, pairs, g, w)
    finally:
        torch.backends.cudnn.deterministic = before
    out["max_rel_diff"] = _max_rel(scores[False], scores[True])
    out["cost_of_deterministic"] = out["archs_per_s_deterministic_false"] / out["archs_per_s_deterministic_true"]
    return out


def step_profile(ctx: "Check") -> dict:
    from torch.profiler import ProfilerActivity, profile

    rate = (ctx.results.get("engine") or {}).get("archs_per_s_engine")
    if not ctx.force_profile and rate is not None and rate >= TARGET_ARCHS_PER_S:
        return {"skipped": f"the engine reached {rate:.1f} archs/s (target {TARGET_ARCHS_PER_S:g})"}
    from .scoring.builds import make_engine

    best = (ctx.results.get("sweep") or {}).get("best") or {}
    engine, _ = make_engine(ctx.space, ["wrcor"], num_classes=10, device=ctx.device, group_size=best.get("group"),
                            workers=0)
    pairs = ctx.pairs(2 * engine.group_size)
    list(engine.run(pairs[:engine.group_size], ctx.x, ctx.y))
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if ctx.device.type == "cuda" else [])
    with profile(activities=acts) as prof:
        list(engine.run(pairs, ctx.x, ctx.y))
        _sync(ctx.device)
    key = "self_cuda_time_total" if ctx.device.type == "cuda" else "self_cpu_time_total"
    table = prof.key_averages().table(sort_by=key, row_limit=25)
    return {"n_archs": len(pairs), "group": engine.group_size, "sorted_by": key, "table": table.splitlines()}


def step_space(ctx: "Check") -> dict:
    """``harness run`` over the whole space (or ``--quick``'s few), one store per dataset: the
    WRCor family on every dataset first, then the baselines, while the budget lasts."""
    jobs = [(ds, list(WRCOR_FAMILY)) for ds in ctx.datasets] + [(ds, list(ctx.baselines)) for ds in ctx.datasets
                                                                  if ctx.baselines]
    rows = []
    for ds, names in jobs:
        left = ctx.left() - 15  # for gzipping the stores and the report
        if left < 20:
            rows.append({"dataset": ds, "proxies": names, "skipped": "out of time"})
            continue
        store = ctx.work / f"store_{ds}.sqlite"
        seed_file = ctx.stores / f"store_{ds}.sqlite.gz" if ctx.stores else None
        if not store.exists() and seed_file is not None and seed_file.is_file():
            with gzip.open(seed_file, "rb") as src, open(store, "wb") as dst:
                shutil.copyfileobj(src, dst)
        select = ["archs.select=first", f"archs.n={ctx.n_space}"] if ctx.n_space else ["archs.select=all", "archs.n=null"]
        cmd = [sys.executable, "-m", "harness", "run", "space=nb201", f"dataset={ds}", *select,
               f"device={ctx.device.type}", "tracking=none", f"store.path={store}", f"proxies=[{','.join(names)}]",
               "aggregates=[]", "seed=0", f"hydra.run.dir={ctx.work / ('run_' + ds + '_' + names[0])}"]
        env = {**os.environ, "ZSNAS_PROGRESS": "lines", "PYTHONUNBUFFERED": "1", "PYTHONPATH": _pythonpath()}
        t = time.perf_counter()
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=left, env=env, cwd=ctx.work)
            rc, text = done.returncode, done.stdout + done.stderr
        except subprocess.TimeoutExpired as err:
            rc, text = "timeout", _text(err.stdout) + _text(err.stderr)
        wall = time.perf_counter() - t
        ctx.log(f"$ {' '.join(cmd)}\n(rc {rc}, {wall:.0f} s)\n" + "\n".join(text.splitlines()[-40:]) + "\n")
        n_new = _count_scored(text)
        row = {"dataset": ds, "proxies": names, "rc": rc, "wall_s": wall, "archs_scored_now": n_new,
               "archs_per_s": n_new / wall if n_new else None, "stored": _count(store, names)}
        if rc not in (0, "timeout"):  # a timeout is the budget's end: the store keeps what was scored
            row["error"] = (text.strip().splitlines() or ["no output"])[-1]
        rows.append(row)
    for ds in ctx.datasets:  # what comes back: one gzipped store per dataset
        store = ctx.work / f"store_{ds}.sqlite"
        if store.exists():
            _checkpoint(store)
            with open(store, "rb") as src, gzip.open(ctx.out / f"store_{ds}.sqlite.gz", "wb", compresslevel=6) as dst:
                shutil.copyfileobj(src, dst)
            ctx.written.append(ctx.out / f"store_{ds}.sqlite.gz")
    runs = sorted(p for p in ctx.work.glob("run_*") if (p / "scores.csv").is_file())
    if runs:  # the finished jobs' records, for harness report / paper-report where the tables are made
        with tarfile.open(ctx.out / "records.tar.gz", "w:gz") as tar:
            for run in runs:
                for f in ("scores.csv", "metrics.csv", "summary.json", "config.yaml"):
                    if (run / f).is_file():
                        tar.add(run / f, arcname=f"{run.name}/{f}")
        ctx.written.append(ctx.out / "records.tar.gz")
    return {"rows": rows, "n_space": ctx.n_space or 15625, "records": [p.name for p in runs]}


def _pythonpath() -> str:
    """The child's PYTHONPATH: this checkout first, then the entries given, made absolute (the
    child runs in the work folder; a device command may have said ``PYTHONPATH=/tmp/site:.``)."""
    given = [str(Path(p).resolve()) for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    return os.pathsep.join(dict.fromkeys([str(Path(__file__).resolve().parents[1]), *given]))


def _text(b: Any) -> str:
    return b.decode(errors="replace") if isinstance(b, bytes) else (b or "")


def _count_scored(text: str) -> int:
    """Architectures a scoring job scored now, from its "N architectures: M to score" line."""
    m = re.search(r"(\d+) architectures: (\d+) to score", text)
    return int(m.group(2)) if m else 0


def _count(store: Path, names: Sequence[str]) -> dict[str, int]:
    import sqlite3

    if not store.exists():
        return {}
    con = sqlite3.connect(f"file:{store}?mode=ro", uri=True)
    try:
        q = f"select proxy, count(*) from scores where proxy in ({','.join('?' * len(names))}) group by proxy"
        return {p: n for p, n in con.execute(q, list(names))}
    finally:
        con.close()


def _checkpoint(store: Path) -> None:
    import sqlite3

    con = sqlite3.connect(store)
    try:
        con.execute("pragma wal_checkpoint(truncate)")
    finally:
        con.close()


STEP_FNS: dict[str, Callable[["Check"], dict]] = {
    "env": step_env, "golden": step_golden, "engine": step_engine, "sweep": step_sweep,
    "deterministic": step_deterministic, "profile": step_profile, "space": step_space}


# --------------------------------------------------------------------------- the run
class Check:
    """What the steps share: the device, the budget, the batch, the output folder."""

    def __init__(self, args: Any) -> None:
        import torch

        from . import data
        from .scoring.run import resolve_device
        import spaces

        self.t0 = time.perf_counter()
        self.budget = float(args.budget)
        self.device = resolve_device(args.device)
        self.quick = bool(args.quick)
        self.out = Path(args.out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.work = Path(args.work) if args.work else self.out / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        self.stores = Path(args.stores) if args.stores else None
        self.slug = device_slug(self.device)
        self.groups = args.groups or ([1, 2] if self.quick else [8, 16, 32, 64, 128])
        self.workers = args.workers if args.workers is not None else ([0] if self.quick else [0, 4, 8])
        self.n_engine = 4 if self.quick else 200
        self.n_sweep = 4 if self.quick else 256
        self.n_space = 4 if self.quick else (args.space_archs or 0)
        self.datasets = args.datasets
        self.baselines = args.baselines
        self.force_profile = bool(args.profile)
        self.space = spaces.get_space("nb201")
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True  # as harness run sets it
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        self.x, self.y = data.batch("cifar10", 64, seed=0, device=self.device)
        self.results: dict[str, Any] = {}
        self.written: list[Path] = []
        self._log = self.out / "gpu_check.log"
        self._log.write_text("")

    def left(self) -> float:
        return self.budget - (time.perf_counter() - self.t0)

    def pairs(self, n: int) -> list[tuple[str, int]]:
        """``n`` distinct (arch string, init seed) pairs, a longer list extending a shorter one."""
        from spaces.base import seed_for

        from .bench import _sample_archs

        strs = [self.space.to_str(a) for a in _sample_archs(self.space, n, 7)]
        return [(a, seed_for(0, a)) for a in strs]

    def log(self, text: str) -> None:
        with open(self._log, "a") as fh:
            fh.write(text)


def _write(ctx: Check, report: dict) -> Path:
    from .jsonio import write_json

    return write_json(ctx.out / f"gpu_check_{ctx.slug}.json", report)


def summary_lines(report: dict) -> list[str]:
    """The closing lines: what a closing note quotes."""
    s, lines = report["steps"], []
    env = s.get("env") or {}
    lines.append(f"device: {env.get('device_name', '?')} (torch {env.get('torch', '?')}, CUDA {env.get('cuda')}, "
                 f"cuDNN {env.get('cudnn')})")
    if "max_rel_diff" in (s.get("golden") or {}):
        g = s["golden"]
        worst = max(g["max_rel_diff"], key=g["max_rel_diff"].get)
        lines.append(f"golden ({len(g['archs'])} arch(s), {len(g['max_rel_diff'])} measures): largest relative difference "
                     f"{g['max_rel_diff'][worst]:.1e} ({worst}); "
                     + ("every measure within the CPU's tolerance" if g["within_cpu_tolerance"]
                        else f"outside the CPU's tolerance: {', '.join(sorted(g['outside_tolerance']))}"))
    if "archs_per_s_engine" in (s.get("engine") or {}):
        e = s["engine"]
        lines.append(f"engine: {e['archs_per_s_engine']:.1f} archs/s (group {e['group']}, {e['workers']} workers) = "
                     f"{e['archs_per_s_engine'] / e['archs_per_s_one_arch']:.1f}x the one-architecture path "
                     f"({e['archs_per_s_one_arch']:.1f}/s), {e['engine_speedup_over_naive']:.1f}x the naive port; "
                     f"engine vs one-arch {e['max_rel_diff_engine_vs_one_arch']:.1e}")
    best = (s.get("sweep") or {}).get("best")
    if best:
        lines.append(f"sweep: best group {best['group']}, workers {best['workers']}: {best['archs_per_s']:.1f} archs/s")
    d = s.get("deterministic") or {}
    if "cost_of_deterministic" in d:
        lines.append(f"cudnn.deterministic: off {d['archs_per_s_deterministic_false']:.1f} / on "
                     f"{d['archs_per_s_deterministic_true']:.1f} archs/s; scores differ by {d['max_rel_diff']:.1e}")
    for r in (s.get("space") or {}).get("rows", []):
        if "wall_s" in r:
            rate = f"{r['archs_per_s']:.1f} archs/s" if r["archs_per_s"] else "nothing new"
            lines.append(f"space {r['dataset']} [{r['proxies'][0]}{' ...' if len(r['proxies']) > 1 else ''}]: "
                         f"{r['archs_scored_now']} archs in {r['wall_s']:.0f} s ({rate}), rc {r['rc']}")
        if "error" in r:
            lines.append(f"space {r['dataset']} [{r['proxies'][0]}]: FAILED: {r['error']}")
    for name, st in s.items():
        if isinstance(st, dict) and "error" in st:
            lines.append(f"{name}: FAILED: {st['error']}")
    lines.append(f"total {report['wall_s']:.0f} s of a {report['budget_s']:.0f} s budget")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    from .commands import command_parser

    ap = command_parser("gpu-check", epilog="on a GPU machine: harness gpu-check --out $OUT (docs/scaling.md)")
    ap.add_argument("--out", default="results/bench/gpu_check", help="where the report, the engine timing and "
                                                                   "the gzipped stores go")
    ap.add_argument("--work", default=None, help="scratch folder for the stores and run records (default OUT/work)")
    ap.add_argument("--budget", type=float, default=480, help="seconds for the whole check")
    ap.add_argument("--device", default="auto", help="auto | cuda | cpu")
    ap.add_argument("--quick", action="store_true", help="a few architectures per step (the CPU's check of the check)")
    ap.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated, of {list(STEPS)}")
    ap.add_argument("--groups", type=lambda s: [int(v) for v in s.split(",")], default=None,
                    help="engine group sizes for the sweep (default 8,16,32,64,128)")
    ap.add_argument("--workers", type=lambda s: [int(v) for v in s.split(",")], default=None,
                    help="build workers for the sweep (default 0,4,8)")
    ap.add_argument("--datasets", type=lambda s: [v for v in s.split(",") if v], default=list(DATASETS),
                    help="datasets of the space step")
    ap.add_argument("--baselines", type=lambda s: [v for v in s.split(",") if v], default=list(BASELINES),
                    help="proxies scored after the WRCor family in the space step ('' for none)")
    ap.add_argument("--space-archs", type=int, default=None, help="the first N architectures instead of all 15,625")
    ap.add_argument("--stores", default=None, help="a folder of store_<dataset>.sqlite.gz from an earlier check "
                                                   "to go on from")
    ap.add_argument("--profile", action="store_true", help="profile the engine even when it meets the target")
    args = ap.parse_args(argv)
    steps = [s for s in args.steps.split(",") if s]
    unknown = [s for s in steps if s not in STEPS]
    if unknown:
        ap.exit(2, f"harness gpu-check: unknown step(s) {unknown}; the steps are {list(STEPS)}\n")
    import proxies

    for name in [*WRCOR_FAMILY, *args.baselines]:
        try:
            proxies.get_proxy(name)
        except (KeyError, ValueError) as err:
            ap.exit(2, f"harness gpu-check: --baselines {name}: {err}\n")
    ctx = Check(args)
    report: dict[str, Any] = {"budget_s": ctx.budget, "quick": ctx.quick, "steps": ctx.results,
                              "target_archs_per_s": TARGET_ARCHS_PER_S}
    for step in steps:
        if ctx.left() < NEEDS[step]:
            ctx.results[step] = {"skipped": f"{ctx.left():.0f} s left, the step needs {NEEDS[step]} s"}
        else:
            t = time.perf_counter()
            try:
                ctx.results[step] = STEP_FNS[step](ctx)
            except Exception as err:  # one step's failure is recorded; the others still run
                ctx.results[step] = {"error": f"{type(err).__name__}: {err}",
                                     "traceback": traceback.format_exc().splitlines()[-12:]}
            ctx.results[step]["step_s"] = time.perf_counter() - t
        report["wall_s"] = time.perf_counter() - ctx.t0
        path = _write(ctx, report)
        print(f"[{report['wall_s']:5.0f} s] {step}: " + ("skipped" if "skipped" in ctx.results[step] else
                                                        "FAILED" if "error" in ctx.results[step] else "done"),
              flush=True)
    print("\n".join(summary_lines(report)))
    print("wrote:")
    for p in dict.fromkeys([path, *ctx.written, ctx._log]):
        print(f"  {p}")
    failed = any("error" in v for v in ctx.results.values()) or any(
        "error" in r for r in (ctx.results.get("space") or {}).get("rows", []))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
