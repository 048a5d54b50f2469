"""The front door, as users run it: every entry point as a subprocess from a directory other than
the repository, the settings refused before any work (naming the key), run directories that
never collide, and a plugin distribution that reaches the command line without a fork."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import needs_data
from harness.cli import COMMANDS, quote_specs

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
#: tiny networks on a noise batch (~0.02 s per architecture and proxy on one core)
TINY = ["space.channels=4", "space.cells_per_stage=1", "batch.size=8", "batch.kind=noise", "device=cpu",
        "tracking=none"]


def env(**extra: str) -> dict[str, str]:
    out = {**os.environ, "OMP_NUM_THREADS": "1", **extra}
    out.pop("ZSNAS_STORE", None)
    out.pop("ZSNAS_MLFLOW_URI", None)
    return out


def sh(args: list[str], cwd: Path, timeout: float = 300, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env(**extra), capture_output=True, text=True, timeout=timeout)


ENTRY_POINTS = {
    "zsnas": [str(BIN / "zsnas")],
    "harness": [str(BIN / "harness")],
    "python -m harness": [sys.executable, "-m", "harness"],
}


@pytest.mark.parametrize("entry", sorted(ENTRY_POINTS))
def test_top_level_help_lists_every_command_and_the_main_settings(entry, tmp_path):
    done = sh([*ENTRY_POINTS[entry], "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    for command in COMMANDS:
        assert f"\n  {command} " in done.stdout
    # main settings from the schema, with their defaults and allowed values
    assert "batch.size = 64" in done.stdout and "an integer >= 2" in done.stdout
    assert "budget = 1000" in done.stdout and "engine.group = auto" in done.stdout
    assert not list(tmp_path.iterdir()), "--help wrote files"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_has_help_from_any_directory(command, tmp_path):
    done = sh([str(BIN / "harness"), command, "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"usage: harness {command}")
    assert "-h, --help" in done.stdout or "Settings (key = default [allowed] meaning):" in done.stdout


@pytest.mark.parametrize("args", [["harness", "run"], ["python -m harness", "run"], ["zsnas", "run"]],
                         ids=" ".join)
def test_run_help_lists_groups_and_settings_from_the_schema(args, tmp_path):
    done = sh([*ENTRY_POINTS[args[0]], *args[1:], "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "space       darts | mobilenetv2 | nats_sss | nats_tss | nb101 | nb201*" in out
    assert "nb201_quick" in out and "search_nb201_quick" not in out  # the search's experiments are its own
    assert "archs.select = first\n      [first | random | all]" in out
    assert "space.channels = 16" in out and "C: stem/first-stage channels" in out
    assert "store.path = .cache/scores.sqlite ($ZSNAS_STORE if set)" in out


def test_help_follows_the_chosen_options(tmp_path):
    done = sh([str(BIN / "harness"), "search", "space=darts", "search=reinforce", "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "space.init_channels = 32" in done.stdout and "space.channels" not in done.stdout
    assert "search.warmup = 100" in done.stdout and "search      evolution | evolution_released | random | reinforce* |" in done.stdout
    assert "search_nb201_quick" in done.stdout and "archs.n" not in done.stdout


@needs_data
@pytest.mark.parametrize("entry", ["harness", "python -m harness"])
def test_a_real_scoring_run_from_another_directory_writes_its_records(entry, tmp_path):
    done = sh([*ENTRY_POINTS[entry], "run", "experiment=nb201_quick", "archs.n=4", "tracking.enabled=false"],
              tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    runs = list((tmp_path / "runs" / "nb201_quick").iterdir())
    assert len(runs) == 1
    summary = json.loads((runs[0] / "summary.json").read_text())
    assert summary["n_archs"] == 4 and summary["computed"] == 4
    assert {m["proxy"] for m in summary["metrics"]} == {"wrcor", "wrcor_official", "rcor", "acor", "gcor"}
    assert (runs[0] / "scores.csv").is_file() and (runs[0] / "metrics.csv").is_file()
    assert (tmp_path / ".cache" / "scores.sqlite").is_file()  # outputs go under the working directory
    assert f"  records   {runs[0]}  (scores.csv" in done.stdout  # the closing lines say where


@needs_data
def test_a_search_from_another_directory_ends_with_its_json_line(tmp_path):
    done = sh([str(BIN / "zsnas"), "search", *TINY, "search=random", "objective=synflow", "budget=5", "seed=3"],
              tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    last = json.loads(done.stdout.strip().splitlines()[-1])
    assert last["strategy"] == "random" and last["objective"] == "synflow" and last["seed"] == 3
    assert len(list((tmp_path / "runs" / "search").glob("*/search.json"))) == 1


#: (override, the text the refusal must contain); each is refused before any scoring
BAD = [
    ("batch.size=1", "batch.size=1 is not allowed: an integer >= 2"),
    ("archs.n=abc", "full_key: archs.n"),
    ("archs.n=2.5", "full_key: archs.n"),
    ("archs.n=100000", "archs.n=100000 is not allowed: space 'nb201' has 15625 architectures, so the largest "
                       "allowed value is 15625"),
    ("archs.n=0", "archs.n=0 is not allowed: a positive integer"),
    ("seed=-1", "seed=-1 is not allowed: an integer >= 0"),
    ("engine.group=-3", "engine.group=-3 is not allowed: a positive integer or auto"),
    ("engine.group=0", "engine.group=0 is not allowed: a positive integer or auto"),
    ("proxies=[wrcor(power=abc)]", "proxies: 'wrcor(power=abc)' is not allowed: proxy 'wrcor': parameter "
                                   "power=abc is not a number"),
    ("proxies=[wrcor,nope]", "'nope' is not allowed: unknown proxy 'nope'"),
    ("shard=2/2", "shard='2/2' is not allowed: null or i/n with 0 <= i < n"),
    ("device=gpu", "device='gpu' is not allowed"),
    ("batch.kind=images", "full_key: batch.kind"),
    ("profile=../../x", "profile='../../x' is not allowed: a plain name"),
    ("profile=/tmp/x", "profile='/tmp/x' is not allowed: a plain name"),
    ("+archs.nn=3", "archs.nn is not a setting (did you mean archs.n?)"),
]


@needs_data
@pytest.mark.parametrize("override,message", BAD, ids=[b[0] for b in BAD])
def test_a_setting_that_is_not_allowed_is_refused_before_any_work(override, message, tmp_path):
    done = sh([str(BIN / "harness"), "run", override, "tracking=none"], tmp_path, timeout=60)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".cache").exists(), "a score store was opened"
    assert not list(tmp_path.glob("runs/*/*/scores.csv"))
    assert not (tmp_path.parent / "x").exists() and not Path("/tmp/x").exists()


@needs_data
def test_a_dry_run_expands_the_sweep_validates_every_job_and_runs_none(tmp_path):
    done = sh([str(BIN / "harness"), "run", "--multirun", "experiment=nb201_full", "archs.n=7", "--dry-run"], tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    jobs = [ln for ln in done.stdout.splitlines() if ln.startswith("job ")]
    assert len(jobs) == 9 and jobs[0].startswith("job 1/9: dataset=cifar10 seed=0")  # 3 datasets x 3 seeds
    assert "on 7 nb201 archs (first), 64 real ImageNet16-120 images, seed 2" in done.stdout
    assert done.stdout.rstrip().endswith("9 job(s), every setting allowed; nothing was run")
    assert not any(tmp_path.iterdir()), "a dry run wrote something"


@needs_data
@pytest.mark.parametrize("command,override,message", [
    ("run", "archs.n=99999", "space 'nb201' has 15625 architectures"),
    ("run", "proxies=[wrcor,nope]", "unknown proxy 'nope'"),
    ("search", "budget=10", "budget=10"),
])
def test_a_dry_run_refuses_what_the_job_would_refuse(command, override, message, tmp_path):
    done = sh([str(BIN / "harness"), command, override, "--dry-run"], tmp_path)
    assert done.returncode == 2 and message in done.stderr, done.stderr[-2000:]
    assert "Traceback" not in done.stderr and not any(tmp_path.iterdir())


@needs_data
def test_a_search_whose_budget_never_leaves_its_initial_samples_is_refused(tmp_path):
    done = sh([str(BIN / "harness"), "search", "search=evolution", "budget=50", "tracking=none"], tmp_path, timeout=60)
    assert done.returncode == 2
    assert ("budget=50 is not allowed: search=evolution spends its first 64 asks on uniform samples "
            "(search.population=64)") in done.stderr
    assert not (tmp_path / ".cache").exists()


@pytest.mark.parametrize("command", ["report", "search-report", "agreement"])
def test_output_names_stay_inside_the_output_root(command, tmp_path):
    (tmp_path / "records").mkdir()
    done = sh([str(BIN / "harness"), command, "--records", "records", "--out", "out", "--name", "../../escape"],
              tmp_path)
    assert done.returncode == 2
    assert "--name='../../escape' is not allowed" in done.stderr
    assert not (tmp_path.parent / "escape.md").exists() and not (tmp_path / "out").exists()


@needs_data
def test_two_runs_started_together_get_two_complete_record_directories(tmp_path):
    args = [str(BIN / "harness"), "run", *TINY, "archs.n=6", "proxies=[wrcor,synflow]", "profile=twins"]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    errs = [p.communicate(timeout=300)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    runs = sorted((tmp_path / "runs" / "twins").iterdir())
    assert len(runs) == 2, runs
    for run in runs:
        summary = json.loads((run / "summary.json").read_text())
        assert summary["n_archs"] == 6 and len(summary["metrics"]) == 2 * 3  # 2 proxies x 3 targets
        assert len((run / "scores.csv").read_text().splitlines()) == 1 + 6 * 2


def test_proxy_specs_need_no_quotes_beyond_the_shells():
    assert quote_specs("proxies=[wrcor(power=2),acor]") == 'proxies=["wrcor(power=2)",acor]'
    assert quote_specs("+objective=wrcor(power=0.5)") == '+objective="wrcor(power=0.5)"'
    assert quote_specs("proxies=[wrcor,'wrcor(power=2)']") == "proxies=[wrcor,'wrcor(power=2)']"  # already quoted
    assert quote_specs("hydra.run.dir=runs/a(1)") == "hydra.run.dir=runs/a(1)"  # not a proxy setting
    assert quote_specs("seed=range(0,3)") == "seed=range(0,3)"


# ------------------------------------------------------------------------------------------------
# plugins

def _pyproject(name: str, module: str, entry_points: dict[str, dict[str, str]]) -> str:
    groups = "".join(f'\n[project.entry-points."{group}"]\n' + "".join(f'{k} = "{v}"\n' for k, v in eps.items())
                     for group, eps in entry_points.items())
    return (f'[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
            f'[project]\nname = "{name}"\nversion = "0.1"\n\n[tool.setuptools]\npy-modules = ["{module}"]\n{groups}')


PLUGIN = {
    "pyproject.toml": _pyproject("zsnas-demo-plugin", "zsnas_demo_plugin", {
        "zsnas_bench.proxies": {"demo_channels": "zsnas_demo_plugin"},
        "zsnas_bench.strategies": {"demo_first": "zsnas_demo_plugin"}}),
    "zsnas_demo_plugin.py": '''
        """A user's own proxy and search strategy, registered on import."""
        import proxies
        from harness.search import RandomSearch, register_strategy


        class Channels:
            """The number of convolution output channels in the network."""

            def attach(self, session):
                pass

            def finish(self, session):
                import torch

                return float(sum(m.out_channels for m in session.net.modules()
                                 if isinstance(m, torch.nn.Conv2d))), 0


        proxies.register("demo_channels", higher_is_better=True, needs_labels=False, bn=True,
                         pass_kind="static", params={"scale": 1.0},
                         description="conv output channels (a plugin)")(lambda scale: Channels())


        @register_strategy("demo_first")
        class FirstSamples(RandomSearch):
            """Random search with a setting of its own."""

            name = "demo_first"

            def __init__(self, space, objective, *, seed, patience: int = 3):
                super().__init__(space, objective, seed=seed)
                self.patience = patience
        ''',
}

BROKEN = {
    "pyproject.toml": _pyproject("zsnas-broken-plugin", "zsnas_broken_plugin",
                                 {"zsnas_bench.proxies": {"broken_proxy": "zsnas_broken_plugin"}}),
    "zsnas_broken_plugin.py": "raise ImportError('this plugin needs a package that is not installed')\n",
}


def _install(files: dict[str, str], src: Path, site: Path) -> None:
    src.mkdir()
    for name, text in files.items():
        (src / name).write_text(textwrap.dedent(text).lstrip())
    done = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "--target", str(site), str(src)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """A site directory with the demo plugin and a broken one installed by pip, as distributions."""
    base = tmp_path_factory.mktemp("plugins")
    site = base / "site"
    _install(PLUGIN, base / "demo", site)
    _install(BROKEN, base / "broken", site)
    assert list(site.glob("zsnas_demo_plugin-0.1.dist-info/entry_points.txt"))
    return site


@needs_data
def test_an_installed_plugin_proxy_runs_through_the_command_line(plugin_site, tmp_path):
    done = sh([str(BIN / "harness"), "run", *TINY, "archs.n=5", "proxies=[synflow,demo_channels(scale=2)]"],
              tmp_path, PYTHONPATH=str(plugin_site))
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(next((tmp_path / "runs" / "default").glob("*/summary.json")).read_text())
    assert {m["proxy"] for m in summary["metrics"]} == {"synflow", "demo_channels(scale=2)"}
    # listing the proxies loads every plugin: the broken one is reported by name and breaks nothing
    help_ = sh([str(BIN / "harness"), "run", "--help"], tmp_path, PYTHONPATH=str(plugin_site))
    assert help_.returncode == 0 and "demo_channels, epe_nas" in help_.stdout
    assert "plugin 'broken_proxy'" in help_.stderr and "this plugin needs a package" in help_.stderr


@needs_data
def test_an_installed_plugin_strategy_is_an_option_with_its_own_settings(plugin_site, tmp_path):
    help_ = sh([str(BIN / "harness"), "search", "search=demo_first", "--help"], tmp_path, PYTHONPATH=str(plugin_site))
    assert help_.returncode == 0, help_.stderr[-2000:]
    assert "demo_first*" in help_.stdout and "search.patience = 3" in help_.stdout
    done = sh([str(BIN / "harness"), "search", *TINY, "search=demo_first", "search.patience=5", "objective=params",
               "budget=4"], tmp_path, PYTHONPATH=str(plugin_site))
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(next((tmp_path / "runs" / "search").glob("*/search.json")).read_text())
    assert found["strategy"] == "demo_first" and found["strategy_params"] == {"patience": 5}


def test_an_unknown_name_names_the_plugins_that_failed(plugin_site, tmp_path):
    done = sh([str(BIN / "harness"), "run", "proxies=[nope]", "tracking=none"], tmp_path,
              PYTHONPATH=str(plugin_site), timeout=60)
    assert done.returncode == 2
    assert "unknown proxy 'nope'" in done.stderr and "demo_channels" in done.stderr
    assert "plugins that failed to load: broken_proxy (zsnas_broken_plugin" in done.stderr


def test_the_built_ins_do_not_load_plugins(plugin_site, tmp_path):
    """Asking for built-in names never imports a plugin (a broken one cannot slow or break them)."""
    code = ("import proxies, spaces.plugins as p; proxies.get_proxy('wrcor(power=2)'); "
            "print(sorted(p._loaded))")
    done = sh([sys.executable, "-c", code], tmp_path, PYTHONPATH=f"{plugin_site}{os.pathsep}{ROOT}")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_wheel_carries_its_configs(tmp_path):
    """A non-editable install (a built wheel) finds conf/ inside the package."""
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            "--no-index", "-w", str(wheel_dir), str(ROOT)], capture_output=True, text=True,
                           timeout=300, env=env(PIP_NO_CACHE_DIR="1"))
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(wheel_dir.glob("zsnas_bench-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(site),
                    str(wheel)], check=True, capture_output=True, timeout=300)
    assert (site / "harness" / "conf" / "config.yaml").is_file()
    assert (site / "harness" / "conf" / "experiment" / "nb201_quick.yaml").is_file()
    code = "import harness, harness.config as c; print(harness.__file__); print(c.config_dir())"
    done = sh([sys.executable, "-c", code], tmp_path, PYTHONPATH=str(site))
    assert done.returncode == 0, done.stderr
    where, conf = done.stdout.split()
    assert where.startswith(str(site)) and conf == str(site / "harness" / "conf")


def test_one_documented_form_for_experiments():
    """README, Makefile and configs write experiments as experiment=NAME and commands as
    `harness <command>`; every experiment they name exists."""
    import re

    texts = {p: p.read_text() for p in [ROOT / "README.md", ROOT / "Makefile", *sorted((ROOT / "conf").rglob("*.yaml"))]}
    for path, text in texts.items():
        assert "+experiment=" not in text, path
        assert "python -m harness.cli" not in text and "python -m harness.search" not in text, path
    named = {n for text in texts.values() for n in re.findall(r"\bexperiment=([A-Za-z0-9_]+)\b(?![${(])", text)}
    named -= {"NAME"}
    assert named and all((ROOT / "conf" / "experiment" / f"{n}.yaml").is_file() for n in named), named
