"""The typed configuration: schemas, rules, one place per default, and keys that did not move."""
from __future__ import annotations

import dataclasses
import doctest
from pathlib import Path

import pytest
import torch
import yaml
from hydra.errors import ConfigCompositionException

import harness.cli
import harness.config as config
import harness.scoring.run as hrun
import proxies.registry
from harness.config import ConfigError, RunConfig, SearchConfig, compose, load

CONF = config.config_dir()


def test_doctests_pass():
    for module in (config, harness.cli, proxies.registry):
        result = doctest.testmod(module)
        assert result.failed == 0 and result.attempted > 0, module.__name__


def test_the_configs_are_found_from_the_package_not_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert CONF == Path(config.__file__).resolve().parents[1] / "conf"
    assert load(compose("config", [])).space.name == "nb201"


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF / "space").glob("*.yaml")))
def test_every_space_option_is_typed_by_its_constructor(option):
    cfg = load(compose("config", [f"space={option}"]))
    assert isinstance(cfg.space, config.SpaceMeta) and cfg.space.name == option
    space, kwargs = hrun.space_from_cfg(cfg)
    assert space.name == option
    for key, value in kwargs.items():
        assert getattr(space, key) == value


@pytest.mark.parametrize("option", sorted(p.stem for p in (CONF / "search").glob("*.yaml")))
def test_every_strategy_option_is_typed_by_its_constructor(option):
    cfg = load(compose("search_run", [f"search={option}", "budget=1000"]))
    assert isinstance(cfg, SearchConfig) and isinstance(cfg.search, config.StrategyMeta)
    from harness.search import strategy_class

    cls = strategy_class(cfg.search.name)
    assert set(config.strategy_params(cfg.search)) == {n for n, _, _ in config.constructor_settings(
        cls, skip=config.STRATEGY_SKIP)}


def test_types_are_checked_while_composing_and_name_the_key():
    for override, key in (("archs.n=2.5", "archs.n"), ("batch.size=abc", "batch.size"),
                          ("space.channels=wide", "space.channels"), ("batch.kind=images", "batch.kind"),
                          ("tf32=maybe", "tf32")):
        with pytest.raises(ConfigCompositionException) as err:
            compose("config", [override])
        assert key in str(err.value.__cause__ or err.value)
    with pytest.raises(ConfigCompositionException, match="search.population"):
        compose("search_run", ["search.population=many"])


def test_every_refusal_names_the_key_the_value_and_what_is_allowed():
    with pytest.raises(ConfigError) as err:
        load(compose("config", ["batch.size=1", "seed=-1", "engine.workers=-1", "threads=0",
                                "archs.seed=-2", "proxies=[wrcor,\"acor(responses=1)\"]"]))
    msg = str(err.value)
    assert msg.startswith("6 settings are not allowed:")
    for part in ("batch.size=1 is not allowed: an integer >= 2", "seed=-1 is not allowed: an integer >= 0",
                 "engine.workers=-1 is not allowed: an integer >= 0 or auto",
                 "threads=0 is not allowed: a positive integer or null",
                 "archs.seed=-2 is not allowed: an integer >= 0",
                 "'acor(responses=1)' is not allowed: proxy 'acor': parameter responses=1 is not a string"):
        assert part in msg
    for ok in (["engine.group=auto"], ["engine.group=8"], ["engine.workers=0"], ["shard=1/4"], ["device=cuda:1"],
               ["archs.select=all", "archs.n=null"]):
        load(compose("config", ok))  # allowed
    with pytest.raises(ConfigError, match=r"archs.n=null is not allowed: a positive integer \(or null with"):
        load(compose("config", ["archs.n=null"]))


def test_a_key_no_schema_declares_is_refused_with_the_nearest_ones():
    with pytest.raises(ConfigError) as err:
        load(compose("config", ["+foo=1", "+space.chanels=8"]))
    assert "foo is not a setting of RunConfig" in str(err.value)
    assert "space.chanels is not a setting (did you mean space.channels?)" in str(err.value)
    with pytest.raises(ConfigError, match=r"search.populaton is not a setting \(did you mean search.population\?\)"):
        load(compose("search_run", ["+search.populaton=3"]))


def test_a_plain_mapping_is_typed_like_a_composed_config():
    plain = dataclasses.asdict(load(compose("config", ["space=nb101", "archs.n=7"])))
    typed = load(plain)
    assert isinstance(typed, RunConfig) and isinstance(typed.space, config.SpaceMeta)
    assert typed.archs.n == 7 and typed.space.stem_channels == 128 and typed.batch.kind == "real"
    with pytest.raises(ConfigError, match="batch.size=1 is not allowed"):
        load({**plain, "batch": {**plain["batch"], "size": 1}})


def test_to_plain_writes_enums_as_their_values():
    plain = config.to_plain(load(compose("config", [])))
    assert plain["archs"]["select"] == "first" and plain["batch"]["kind"] == "real"
    assert plain["space"]["channels"] == 16


def test_score_keys_did_not_move():
    """The typed config gives every stored score the key it had before (a changed key would
    recompute every store); the literal is the key of the untyped config it replaced."""
    cfg = load(compose("config", []))
    _, kw = hrun.space_from_cfg(cfg)
    assert hrun.score_params("wrcor", sampling=cfg.batch.sampling.value, device=torch.device("cpu"),
                             space_kw=kw) == (
        '{"device":"cpu","init":"sha256(seed:arch)","proxy":{"convention":"paper","power":1.0,'
        '"precision":"float32","responses":"both","weighting":"exp_bottom_to_top"},"sampling":"random",'
        '"space":{"cells_per_stage":5,"channels":16}}')
    darts = load(compose("config", ["space=darts"]))
    assert hrun.space_from_cfg(darts)[1] == {"init_channels": 32, "layers": 8, "auxiliary": False, "affine_ops": True}
    assert hrun.space_from_cfg(load(compose("config", ["space=nb101"])))[1] == {
        "stem_channels": 128, "num_stacks": 3, "cells_per_stack": 3}


def _schema_defaults(schema: type, prefix: str = "") -> dict[str, object]:
    out = {}
    for f in dataclasses.fields(schema):
        if f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
            if dataclasses.is_dataclass(value):
                out.update(_schema_defaults(type(value), f"{prefix}{f.name}."))
                for k, v in dataclasses.asdict(value).items():
                    out.setdefault(f"{prefix}{f.name}.{k}", v)
            continue
        out[f"{prefix}{f.name}"] = f.default
    return out


def _flat(node: dict, prefix: str = "") -> dict[str, object]:
    out = {}
    for k, v in node.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def test_each_default_lives_in_one_place():
    """No YAML option restates a default of the schema, of a space's or of a strategy's constructor
    (an experiment may pin its protocol: it is the record of a table)."""
    from harness.search import strategy_class
    from spaces import space_factory

    defaults = {**_schema_defaults(RunConfig), **_schema_defaults(SearchConfig)}
    restated = []
    for path in sorted(CONF.rglob("*.yaml")):
        group = path.parent.relative_to(CONF).as_posix()
        if group == "experiment":
            continue
        text = yaml.safe_load(path.read_text()) or {}
        text.pop("defaults", None)
        text.pop("hydra", None)
        prefix = "" if group in (".", "proxy_set") else f"{group}."
        for key, value in _flat(text, prefix).items():
            if group == "space":
                factory = space_factory(text.get("name", path.stem))
                known = {n: d for n, _, d in config.constructor_settings(factory, skip=config.SPACE_SKIP)}
            elif group == "search":
                known = {n: d for n, _, d in config.constructor_settings(
                    strategy_class(path.stem.split("_")[0]), skip=config.STRATEGY_SKIP)}
            else:
                known = {}
            short = key.split(".", 1)[-1]
            if known.get(short, object()) == value or defaults.get(key, object()) == value:
                restated.append(f"{path.relative_to(CONF)}: {key}={value}")
    assert not restated, restated


def test_run_directories_are_unique_and_names_stay_inside():
    a = compose("config", ["profile=p"], return_hydra_config=True).hydra.run.dir
    b = compose("config", ["profile=p"], return_hydra_config=True).hydra.run.dir
    assert a.startswith("runs/p/") and b.startswith("runs/p/") and a != b
    with pytest.raises(ConfigError, match="profile='../x' is not allowed"):
        load(compose("config", ["profile=../x"]))
    for bad in ("../x", "/abs", "a/b", ".hidden", "x/../../y", ""):
        with pytest.raises(ConfigError):
            config.safe_name(bad, "--name")
    assert config.safe_name("nb201_1000-v2.1", "--name") == "nb201_1000-v2.1"
