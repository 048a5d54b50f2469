"""Resource limits in every search strategy (``constraints.*``): the released WRCor search's
rejection rule (a sample over a limit is drawn anew, a mutated child over it is mutated again from
the same parent, a REINFORCE policy draw over it is drawn again from the policy), bounded redraws,
counted rejections, the capability a limit needs, and what the search records.

The toy space is NB201 with made-up counts read off the architecture string (deterministic):
``flops = 1e6 + 9e6 x (3x3 convs) + 1e6 x (1x1 convs)``, ``params = 100 + 1000 x (convs)``.
Under ``flops_max=10e6`` about a third of uniform samples pass (the released MobileNetV2 space
passes 41% of its draws under 600M)."""
from __future__ import annotations

import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import RecordingTracker, needs_data

import harness.cli
import harness.search.run as hrun
import spaces
from harness import search as hs
from harness.config import SPACE_DATA_KEYS, ConfigError, compose, load, space_kwargs
from harness.scoring.store import ScoreStore
from harness.search.constraints import ConstraintError, Limits
from harness.search.strategies import Evaluation, Objective, Strategy, make_strategy
from spaces.base import LatencySpace, ResourceSpace

ROOT = Path(__file__).resolve().parents[1]
NB201Space = spaces.space_factory("nb201")
ONE = Objective("synthetic", ("synthetic",), (1.0,))
SMALL_PARAMS = {"evolution": {"population": 8, "tournament": 3}, "reinforce": {"warmup": 6, "lr": 0.1}}
FLOPS_MAX = 10e6


class ToySpace(NB201Space):
    """NB201 with a made-up flops/params count (the capability of spaces.base.ResourceSpace)."""

    def flops(self, arch) -> float:
        s = self.to_str(arch)
        return 1e6 + 9e6 * s.count("nor_conv_3x3") + 1e6 * s.count("nor_conv_1x1")

    def params(self, arch) -> float:
        s = self.to_str(arch)
        return 100.0 + 1000.0 * (s.count("nor_conv_3x3") + s.count("nor_conv_1x1"))


def toy_flops(arch_str: str) -> float:
    return 1e6 + 9e6 * arch_str.count("nor_conv_3x3") + 1e6 * arch_str.count("nor_conv_1x1")


def synthetic(space, arch) -> Evaluation:
    digest = hashlib.sha256(space.to_str(arch).encode()).digest()
    return Evaluation((int.from_bytes(digest[:6], "big") / 2**48,))


def run(strategy: Strategy, steps: int, n: int = 1) -> list[str]:
    """``steps`` proposals asked ``n`` at a time and told the synthetic score: the proposals."""
    trail = []
    while len(trail) < steps:
        for arch in strategy.ask(min(n, steps - len(trail))):
            strategy.tell(arch, synthetic(strategy.space, arch))
            trail.append(strategy.space.to_str(arch))
    return trail


class Drawn:
    """Wraps a space's sample/mutate on the instance, recording every draw (rejected or not)."""

    def __init__(self, space):
        self.samples, self.mutations = [], []
        sample, mutate = space.sample, space.mutate

        def recording_sample(rng):
            arch = sample(rng)
            self.samples.append(space.to_str(arch))
            return arch

        def recording_mutate(arch, rng):
            child = mutate(arch, rng)
            self.mutations.append((space.to_str(arch), space.to_str(child)))
            return child

        space.sample, space.mutate = recording_sample, recording_mutate


# ------------------------------------------------------------------ the capability
def test_doctests_pass():
    import doctest

    import harness.search.constraints

    result = doctest.testmod(harness.search.constraints)
    assert result.failed == 0 and result.attempted > 0


def test_the_resource_capability_is_declared_not_guessed():
    assert isinstance(ToySpace(), ResourceSpace) and not isinstance(ToySpace(), LatencySpace)
    assert not isinstance(NB201Space(), ResourceSpace)


def test_a_limit_on_a_space_without_its_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r"^space nb201 has no flops accounting; constraints.flops_max needs a space "
                                         r"with flops\(arch\), "):
        make_strategy("random", NB201Space(), ONE, seed=0, limits=Limits(flops_max=600e6))
    with pytest.raises(ValueError, match=r"^space nb201 has no parameter count; constraints.params_max needs a "
                                         r"space with params\(arch\)"):
        make_strategy("random", NB201Space(), ONE, seed=0, limits=Limits(params_max=5e6))
    # latency is ready, but no space measures it: refused, though the toy counts flops and params
    with pytest.raises(ValueError, match=r"^space nb201 has no latency measurement; constraints.latency_max needs "
                                         r"a space with latency\(arch\)"):
        make_strategy("random", ToySpace(), ONE, seed=0, limits=Limits(flops_max=FLOPS_MAX, latency_max=0.01))
    make_strategy("random", NB201Space(), ONE, seed=0, limits=Limits())  # no limit: any space


@pytest.mark.parametrize("kw, msg", [
    ({"flops_max": -1}, "constraints.flops_max=-1 is not allowed: a positive number or null"),
    ({"flops_max": 0}, "constraints.flops_max=0 is not allowed"),
    ({"params_max": math.nan}, "constraints.params_max=nan is not allowed"),
    ({"latency_max": math.inf}, "constraints.latency_max=inf is not allowed"),
    ({"flops_max": True}, "constraints.flops_max=True is not allowed"),
    ({"max_redraws": -1}, "constraints.max_redraws=-1 is not allowed: an integer >= 0"),
])
def test_bad_limits_are_refused(kw, msg):
    with pytest.raises(ValueError, match=msg.replace("(", r"\(")):
        Limits(**kw)


# ------------------------------------------------------------------ the rejection rule, per strategy
@pytest.mark.parametrize("n", [1, 4])
@pytest.mark.parametrize("name", ["random", "evolution", "reinforce"])
def test_no_strategy_proposes_a_candidate_over_the_limit_and_rejections_are_counted(name, n):
    space = ToySpace()
    drawn = Drawn(space)
    s = make_strategy(name, space, ONE, seed=3, limits=Limits(flops_max=FLOPS_MAX), **SMALL_PARAMS.get(name, {}))
    trail = run(s, 40, n)
    assert max(map(toy_flops, trail)) <= FLOPS_MAX  # nothing over the limit was proposed, so scored
    assert set(s.rejected) == {"sample", "mutate", "policy"}
    # every uniform draw was either proposed or rejected (and counted)
    n_sampled = {"random": 40, "evolution": 8, "reinforce": 6}[name]
    assert len(drawn.samples) == n_sampled + s.rejected["sample"]
    assert sum(toy_flops(a) > FLOPS_MAX for a in drawn.samples) == s.rejected["sample"] > 0
    if name == "evolution":
        assert len(drawn.mutations) == 32 + s.rejected["mutate"] and s.rejected["mutate"] > 0
        assert sum(toy_flops(c) > FLOPS_MAX for _, c in drawn.mutations) == s.rejected["mutate"]
    else:
        assert s.rejected["mutate"] == 0 and not drawn.mutations
    assert (s.rejected["policy"] > 0) == (name == "reinforce")


def test_a_mutation_over_the_limit_is_retried_from_the_same_parent():
    space = ToySpace()
    drawn = Drawn(space)
    s = make_strategy("evolution", space, ONE, seed=5, limits=Limits(flops_max=FLOPS_MAX), population=8,
                      tournament=3)
    run(s, 8)
    retried = 0
    for _ in range(40):
        before, calls = s.rejected["mutate"], len(drawn.mutations)
        child = s.ask()
        mine = drawn.mutations[calls:]
        assert len(mine) == 1 + s.rejected["mutate"] - before  # the rejected ones, then the child
        parents = {p for p, _ in mine}
        assert len(parents) == 1  # every retry mutates the same tournament winner
        parent = space.parse(parents.pop())
        assert mine[-1][1] == space.to_str(child)
        assert sum(a != b for a, b in zip(parent.ops, child.ops)) == 1  # one mutation of the parent
        retried += len(mine) > 1
        s.tell(child, synthetic(space, child))
    assert retried > 0


def test_reinforce_learns_from_the_accepted_draw():
    space = ToySpace()
    s = make_strategy("reinforce", space, ONE, seed=2, limits=Limits(flops_max=FLOPS_MAX), warmup=6, lr=0.1)
    run(s, 6)
    for _ in range(20):
        arch = s.ask()
        assert space.from_choices(s._drawn[-1][1]) == arch  # the gradient uses the accepted draw's choices
        s.tell(arch, synthetic(space, arch))
    assert s.rejected["policy"] > 0


@pytest.mark.parametrize("name", ["random", "evolution", "reinforce"])
def test_a_limit_that_never_binds_changes_nothing(name):
    """No extra random numbers when nothing is rejected: the same seed, the same search."""
    params = SMALL_PARAMS.get(name, {})
    free = make_strategy(name, ToySpace(), ONE, seed=11, **params)
    loose = make_strategy(name, ToySpace(), ONE, seed=11, limits=Limits(flops_max=1e12, params_max=1e12), **params)
    assert run(free, 60) == run(loose, 60)
    assert sum(loose.rejected.values()) == 0 and free.best() == loose.best()
    if name == "reinforce":
        np.testing.assert_array_equal(np.concatenate(free.logits), np.concatenate(loose.logits))


def test_the_params_limit_is_honoured_too():
    s = make_strategy("random", ToySpace(), ONE, seed=0, limits=Limits(params_max=2100))
    trail = run(s, 30)
    assert all(ToySpace().params(ToySpace().parse(a)) <= 2100 for a in trail) and s.rejected["sample"] > 0
    assert all(set(c) == {"params"} for c in [s.asked_counts[-1]])


def test_redraws_are_bounded_with_an_error_naming_the_limit_and_the_draws():
    s = make_strategy("random", ToySpace(), ONE, seed=0, limits=Limits(flops_max=5e5, max_redraws=5))
    with pytest.raises(ConstraintError) as err:
        s.ask()
    assert str(err.value) == ("random: no sample within the limits of space nb201 in 6 draws "
                              "(constraints.max_redraws=5): constraints.flops_max=500000 rejected 6 (the smallest "
                              "flops drawn: 2e+06); loosen the limit or raise constraints.max_redraws")
    assert s.rejected["sample"] == 6
    # a mutation: retried from the same parent max_redraws times, then the same kind of error
    evo = make_strategy("evolution", ToySpace(), ONE, seed=0, limits=Limits(flops_max=FLOPS_MAX), population=4,
                        tournament=2)
    run(evo, 4)
    evo.constrain(Limits(flops_max=5e5, max_redraws=0))
    with pytest.raises(ConstraintError, match=r"^evolution: no mutation of the same parent within the limits of "
                                              r"space nb201 in 1 draws \(constraints.max_redraws=0\): "
                                              r"constraints.flops_max=500000 rejected 1"):
        evo.ask()


def test_a_strategy_drawing_on_its_own_cannot_slip_past_the_limit():
    class Careless(Strategy):
        name = "careless"

        def _propose(self):
            return self.space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|")

    s = Careless(ToySpace(), ONE, seed=0).constrain(Limits(flops_max=FLOPS_MAX))
    with pytest.raises(RuntimeError, match=r"careless: proposed \|nor_conv_3x3~0\|.* over constraints.flops_max; "
                                           "a strategy draws through Strategy._sample/_mutate/_within"):
        s.ask()


# ------------------------------------------------------------------ the configuration
def test_the_constraints_settings_compose_validate_and_are_listed_in_the_help():
    cfg = load(compose("search_run", ["constraints.flops_max=600e6", "constraints.params_max=5000000"]))
    assert cfg.constraints.flops_max == 600e6 and cfg.constraints.params_max == 5e6
    default = load(compose("search_run", []))
    assert Limits.from_cfg(default.constraints) == Limits() and not Limits.from_cfg(default.constraints)
    assert default.constraints.max_redraws == 10_000
    text = harness.cli.command_help("search", "search_run", [])
    for key in ("flops_max", "params_max", "latency_max"):
        assert f"  constraints.{key} = null" in text
    assert "  constraints.max_redraws = 10000" in text and "[a positive number or null (no limit)]" in text


def test_bad_constraint_settings_are_refused_naming_the_key():
    with pytest.raises(ConfigError) as err:
        load(compose("search_run", ["constraints.flops_max=-1", "constraints.params_max=0",
                                    "constraints.latency_max=nan", "constraints.max_redraws=-3"]))
    msg = str(err.value)
    assert msg.startswith("4 settings are not allowed:")
    for part in ("constraints.flops_max=-1.0 is not allowed: a positive number or null (no limit)",
                 "constraints.params_max=0.0 is not allowed", "constraints.latency_max=nan is not allowed",
                 "constraints.max_redraws=-3 is not allowed: an integer >= 0"):
        assert part in msg
    with pytest.raises(Exception, match="constraints.flops_max"):
        compose("search_run", ["constraints.flops_max=lots"])
    with pytest.raises(ConfigError, match="constraints.flops_limit is not a setting"):
        load(compose("search_run", ["+constraints.flops_limit=1"]))


# ------------------------------------------------------------------ the runner: records, no scoring, refusals
SMALL = ["space.channels=4", "space.cells_per_stage=1", "tracking=none", "batch.size=16", "figure=false"]


def make_cfg(tmp_path, *overrides: str):
    return compose("search_run", [*SMALL, f"store.path={tmp_path}/s.sqlite", "progress_every=10", *overrides])


@pytest.fixture
def toy(monkeypatch):
    """The runner builds the toy space (NB201 with flops/params counts) for space=nb201."""
    def toy_from_cfg(cfg):
        kwargs = space_kwargs(cfg.space)
        return (ToySpace(data_dir=cfg.data_dir, **kwargs),
                {k: v for k, v in kwargs.items() if k not in SPACE_DATA_KEYS})

    monkeypatch.setattr(hrun, "space_from_cfg", toy_from_cfg)


@needs_data
def test_a_limit_on_a_space_without_its_count_is_refused_before_any_work(tmp_path):
    tracker = RecordingTracker()
    with pytest.raises(ConfigError, match=r"^space nb201 has no flops accounting; constraints.flops_max needs a "
                                          r"space with flops\(arch\), "):
        hs.run_search(make_cfg(tmp_path, "search=random", "budget=3", "constraints.flops_max=600e6"),
                      tracker=tracker, output_dir=tmp_path / "o")
    assert not (tmp_path / "s.sqlite").exists() and not tracker.runs and not (tmp_path / "o").exists()


@needs_data
def test_the_cli_takes_a_limit_and_refuses_it_on_a_space_without_flops(tmp_path):
    cmd = [sys.executable, "-m", "harness", "search", *SMALL, "search=random", "budget=3",
           "constraints.flops_max=600e6", f"store.path={tmp_path}/s.sqlite", f"hydra.run.dir={tmp_path}/run"]
    proc = subprocess.run(cmd, check=False, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "harness search: space nb201 has no flops accounting; constraints.flops_max needs a space with " \
           "flops(arch)" in proc.stderr
    assert not (tmp_path / "s.sqlite").exists()


@needs_data
def test_a_constrained_search_records_its_limits_and_rejections_and_scores_only_candidates(tmp_path, toy,
                                                                                          monkeypatch):
    drawn: list[str] = []
    sample = ToySpace.sample
    monkeypatch.setattr(ToySpace, "sample", lambda self, rng: drawn.append(self.to_str(a := sample(self, rng))) or a)
    tracker = RecordingTracker()
    cfg = make_cfg(tmp_path, "search=evolution", "search.population=8", "search.tournament=3", "objective=params",
                   "budget=12", "seed=2", "accounting=released", f"constraints.flops_max={FLOPS_MAX:g}")
    out = hs.run_search(cfg, tracker=tracker, output_dir=tmp_path / "r")
    traj = pd.read_csv(tmp_path / "r" / "trajectory.csv")
    # the initial population is reported apart from the N budgeted candidates
    assert out["budget"] == 12 and out["n_initial"] == 8 and out["n_asked"] == len(traj) == 20
    assert list(traj["phase"]) == ["initial"] * 8 + ["search"] * 12
    assert out["constraints"] == {"flops_max": FLOPS_MAX, "params_max": None, "latency_max": None,
                                  "max_redraws": 10_000}
    assert out["n_rejected_sample"] == sum(toy_flops(a) > FLOPS_MAX for a in drawn) > 0
    assert out["n_rejected_mutate"] > 0 and out["n_rejected_policy"] == 0
    # every candidate within the limit, its count recorded; the rejections so far never decrease
    assert (traj["arch_flops"] <= FLOPS_MAX).all()
    assert traj["arch_flops"].tolist() == [toy_flops(a) for a in traj["arch"]]
    assert traj["n_rejected"].is_monotonic_increasing
    assert traj["n_rejected"].iloc[-1] <= out["n_rejected_sample"] + out["n_rejected_mutate"]
    # rejected candidates were never scored: the store holds exactly the candidates
    with ScoreStore(tmp_path / "s.sqlite") as store:
        scored = {r.key.arch for r in store.records(proxy="params")}
    assert scored == set(traj["arch"]) and all(toy_flops(a) <= FLOPS_MAX for a in scored)
    assert any(toy_flops(a) > FLOPS_MAX for a in drawn) and not scored & {a for a in drawn if toy_flops(a) > FLOPS_MAX}
    # the records: strict JSON with the same fields, and the tracker's params and metrics
    saved = json.loads((tmp_path / "r" / "search.json").read_text(),
                       parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    for k in ("constraints", "n_rejected_sample", "n_rejected_mutate", "n_rejected_policy", "n_asked", "n_initial",
              "budget"):
        assert saved[k] == out[k]
    (run,) = tracker.runs
    params, metrics = run["params"], run["metrics"]
    assert params["constraints.flops_max"] == FLOPS_MAX and params["constraints.max_redraws"] == 10_000
    assert "constraints.params_max" not in params
    assert metrics["n_rejected_sample"] == out["n_rejected_sample"] and metrics["n_asked"] == 20
    assert metrics["n_rejected_mutate"] == out["n_rejected_mutate"]


@needs_data
def test_an_unconstrained_search_records_no_limit_and_no_rejection(tmp_path, toy):
    out = hs.run_search(make_cfg(tmp_path, "search=random", "objective=params", "budget=5"),
                        output_dir=tmp_path / "u")
    traj = pd.read_csv(tmp_path / "u" / "trajectory.csv")
    assert out["constraints"] == {"flops_max": None, "params_max": None, "latency_max": None, "max_redraws": 10_000}
    assert (out["n_rejected_sample"], out["n_rejected_mutate"], out["n_rejected_policy"]) == (0, 0, 0)
    assert out["n_asked"] == 5 and "arch_flops" not in traj.columns and "n_rejected" not in traj.columns
