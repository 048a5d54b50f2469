"""The architecture's rules, checked: the interfaces every space and benchmark honours (signatures
included), the one-way dependencies and the absence of import cycles (import-linter contracts in
pyproject.toml), the proxies' independence from the spaces, and the probe as the reader of the
responses a space states."""
from __future__ import annotations

import inspect
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import torch
from torch import nn

import proxies
import spaces
from spaces.base import Benchmark, Space, StackedSpace

from conftest import needs_data

ROOT = Path(__file__).resolve().parents[1]
SPACES = spaces.list_spaces()


def _members(protocol: type) -> dict[str, object]:
    """The protocol's own declared members (methods, properties, annotated attributes)."""
    out = {}
    for klass in protocol.__mro__:
        if klass in (object,) or klass.__name__ in ("Protocol", "Generic"):
            continue
        for name, value in vars(klass).items():
            if (not name.startswith("_") or name in ("__len__", "__contains__")) and name not in out \
                    and (callable(value) or isinstance(value, property)):
                out[name] = value
        for name in getattr(klass, "__annotations__", {}):
            out.setdefault(name, None)
    return out


def _conforms(cls: type, protocol: type, obj: object = None) -> list[str]:
    """What ``cls`` lacks of ``protocol``: a missing member, or a method whose parameters do not
    accept the protocol's (same names and kinds in order; extra parameters need defaults).  An
    attribute the protocol only annotates is looked up on ``obj`` (an instance) when given."""
    problems = []
    for name, want in _members(protocol).items():
        if not hasattr(obj if want is None and obj is not None else cls, name):
            problems.append(f"{cls.__name__} has no {name}")
            continue
        if want is None:  # an attribute: present is all it takes
            continue
        have = inspect.getattr_static(cls, name)
        if not inspect.isfunction(want) or not callable(have) or isinstance(have, (property, type)):
            continue
        if isinstance(have, staticmethod):
            have_params = list(inspect.signature(have.__func__).parameters.values())
        else:
            have_params = list(inspect.signature(have).parameters.values())[1:]
        want_params = list(inspect.signature(want).parameters.values())[1:]
        for p in want_params:
            match = [q for q in have_params if q.name == p.name]
            if not match or match[0].kind != p.kind:
                problems.append(f"{cls.__name__}.{name}: parameter {p.name} ({p.kind.description}) missing or of "
                                f"another kind; has {[q.name for q in have_params]}")
        extra = [q for q in have_params if q.name not in {p.name for p in want_params}
                 and q.default is inspect.Parameter.empty and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD)]
        if extra:
            problems.append(f"{cls.__name__}.{name}: extra parameters without a default {[q.name for q in extra]}")
    return problems


@pytest.mark.parametrize("name", SPACES)
def test_every_space_honours_the_space_protocol(name):
    cls = spaces.space_factory(name)
    assert _conforms(cls, Space) == []
    assert cls.name == name
    assert isinstance(cls().size, int) and cls().size > 0


def test_the_protocol_check_finds_a_wrong_signature():
    class Bad:
        name = "bad"

        def parse(self, text):  # renamed parameter
            return text

    problems = _conforms(Bad, Space)
    assert any("parse: parameter arch" in p for p in problems)
    assert any("has no build" in p for p in problems)


def test_the_stacked_capability_is_declared_not_guessed():
    stacked = {n for n in SPACES if isinstance(spaces.space_factory(n)(), StackedSpace)}
    assert stacked == {"nb201", "nats_tss"}
    for n in stacked:
        assert _conforms(spaces.space_factory(n), StackedSpace) == []


@needs_data
@pytest.mark.parametrize("name", SPACES)
def test_every_benchmark_honours_the_benchmark_protocol(name):
    bench = spaces.get_space(name).benchmark
    assert _conforms(type(bench), Benchmark, bench) == []
    assert isinstance(bench, Benchmark)


def test_a_space_too_large_for_len_says_so():
    darts = spaces.get_space("darts")
    assert darts.size > sys.maxsize
    with pytest.raises(OverflowError, match="use DartsSpace.size"):
        len(darts)
    assert len(spaces.get_space("nb201")) == spaces.get_space("nb201").size == 15_625


def _fresh(code: str) -> str:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env,
                          cwd=ROOT.parent).stdout


def test_import_proxies_loads_no_space_module():
    out = _fresh("import sys, proxies; print(sorted(m for m in sys.modules if m.split('.')[0] in "
                 "('spaces', 'harness')))")
    assert eval(out) == ["spaces", "spaces.plugins", "spaces.vocabulary"]


def test_the_import_contracts_hold():
    """Dependencies one way, proxies without space modules, a dependency-free vocabulary, the
    converters off the core path, no cycles (the contracts in pyproject.toml)."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint)], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stdout[-3000:]
    assert "BROKEN" not in done.stdout and " KEPT" in done.stdout


def test_every_package_is_in_the_wheel_list():
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(p.parent.relative_to(ROOT).parts) for top in ("harness", "proxies", "spaces")
             for p in (ROOT / top).rglob("__init__.py")}
    assert found <= listed, sorted(found - listed)


# ------------------------------------------------------------------------------------------------
# the probe reads the responses the space states


class _Plain(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU())
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        return self.head(self.body(x))


def test_a_correlation_proxy_needs_the_space_or_an_explicit_rule():
    g = torch.Generator().manual_seed(0)
    net, x, y = _Plain(), torch.randn(8, 6, generator=g), torch.randint(0, 3, (8,), generator=g)
    out = proxies.compute_outcomes(["wrcor", "naswot"], net, x, y)
    for o in out.values():
        assert o.status == "error" and "pass space=" in o.message
    ok = proxies.compute_outcomes(["wrcor"], net, x, y, responses=proxies.every_relu)["wrcor"]
    assert ok.status == "ok"
    assert [p.name for p in proxies.every_relu(net)] == ["body.1", "body.3"]


def test_the_space_states_the_responses_the_probe_reads():
    space = spaces.get_space("nb201", channels=4, cells_per_stage=1)
    net = space.build("|nor_conv_3x3~0|+|skip_connect~0|nor_conv_1x1~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|", 10,
                      seed=0)
    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(6, 3, 16, 16, generator=g), torch.randint(0, 10, (6,), generator=g)
    seen = []

    def stated(n, convention):
        points = space.response_modules(n, convention)
        seen.append((convention, len(points)))
        return points

    a = proxies.compute(["wrcor", "wrcor_official"], net, x, y, responses=stated)
    b = proxies.compute(["wrcor", "wrcor_official"], net, x, y, space=space)
    assert a == b and sorted(c for c, _ in seen) == ["official", "paper"]


def test_only_the_probe_installs_hooks():
    """Hooks are the probe's: no other module of the project registers one."""
    offenders = []
    for path in [*ROOT.glob("harness/**/*.py"), *ROOT.glob("proxies/*.py"), *ROOT.glob("spaces/**/*.py")]:
        if path.name == "probe.py":
            continue
        text = path.read_text()
        for call in ("register_forward_hook", "register_full_backward_hook", "register_hook(",
                     "register_forward_pre_hook"):
            if call in text:
                offenders.append(f"{path.relative_to(ROOT)}: {call}")
    assert offenders == []
