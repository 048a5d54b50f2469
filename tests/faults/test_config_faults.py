"""Bad input of the config, as faults: every refusal of the validated config (tests/test_cli.py's
``BAD``, plus the aggregation and search refusals) is one line naming the setting, exit status 2,
no traceback, and leaves an existing score store and run directory byte for byte as they were."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from conftest import needs_data
from test_cli import BAD

from ._common import TINY

#: refusals beyond test_cli's list: (command, override, the text the refusal must contain)
MORE = [
    ("run", "aggregates=[params]", "aggregates: 'params' is not allowed: not an aggregation"),
    ("run", "aggregates=[logrank(params,nope)]", "unknown proxy 'nope'"),
    ("search", "objective=az_nas", "its rule logrank ranks a whole population"),
    ("search", "vote.rule=borda", "expected one of [relative, absolute, rank_sum]"),
    ("search", "constraints.flops_max=1e6", "constraints.flops_max"),
]


def _digest(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _harness(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "ZSNAS_PROGRESS": "lines"}
    env.pop("ZSNAS_STORE", None)
    return subprocess.run([sys.executable, "-m", "harness", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


@needs_data
def test_every_bad_setting_is_refused_and_the_records_before_it_are_intact(tmp_path):
    store, run_dir = tmp_path / "kept" / "scores.sqlite", tmp_path / "kept" / "run"
    first = _harness(["run", "archs.n=3", *TINY, "proxies=[params,synflow]", f"store.path={store}",
                      f"hydra.run.dir={run_dir}"], tmp_path)
    assert first.returncode == 0, first.stderr[-2000:]
    before = _digest(tmp_path / "kept")
    assert any(k.endswith("scores.csv") for k in before) and "scores.sqlite" in before
    cases = [("run", o, m) for o, m in BAD] + MORE

    def refused(case: tuple[str, str, str]) -> str | None:
        command, override, message = case
        done = _harness([command, *TINY, f"store.path={store}", override], tmp_path)
        if done.returncode == 0 or message not in done.stderr or "Traceback" in done.stderr:
            return f"{command} {override}: rc={done.returncode} {done.stderr.strip()[-400:]}"
        return None

    with ThreadPoolExecutor(max_workers=2) as pool:  # two commands at a time: the two cores
        failures = [f for f in pool.map(refused, cases) if f]
    assert failures == []
    assert _digest(tmp_path / "kept") == before  # the store and the earlier run: nothing written, nothing lost
    assert not list(tmp_path.glob("runs/**/scores.csv")) and not list(tmp_path.glob("runs/**/search.json"))
