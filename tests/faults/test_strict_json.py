"""Fault: NaN and infinite values reaching a JSON file.  Every JSON file the harness writes must
parse with a strict reader (no bare NaN / Infinity): non-finite values are written as null, with
their count and place under "nonfinite"."""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

import harness.scoring.run as hrun
from conftest import needs_data
from harness.config import compose
from harness.jsonio import dumps, loads_strict, write_json

from ._common import ALL_NONE, TINY, linked_data_dir


def strict_files(*dirs: Path) -> dict[Path, object]:
    """Every *.json below ``dirs``, parsed strictly (a bare NaN/Infinity fails the test)."""
    files = sorted(f for d in dirs for f in Path(d).rglob("*.json"))
    out = {}
    for f in files:
        try:
            out[f] = loads_strict(f.read_text())
        except ValueError as err:
            pytest.fail(f"{f} is not strict JSON: {err}")
    return out


def test_write_json_nulls_and_counts_every_non_finite_value(tmp_path):
    value = {"tau": math.nan, "rows": [{"rho": -math.inf}, {"rho": 0.5}], "best": np.float32("inf"),
             "scores": np.array([1.0, np.nan]), "n": np.int64(3), "path": tmp_path}
    path = write_json(tmp_path / "x.json", value)
    got = loads_strict(path.read_text())
    assert got["tau"] is None and got["rows"][0]["rho"] is None and got["best"] is None
    assert got["scores"] == [1.0, None] and got["n"] == 3 and got["path"] == str(tmp_path)
    assert got["nonfinite"] == {"n_nan": 2, "n_inf": 2, "at": {"/tau": "nan", "/rows/0/rho": "-inf",
                                                               "/best": "inf", "/scores/1": "nan"}}
    assert "nonfinite" not in loads_strict(dumps({"a": 1.0}))  # nothing to count: nothing added
    with pytest.raises(ValueError, match="bare NaN"):
        loads_strict('{"a": NaN}')


@needs_data
def test_scoring_and_search_write_only_strict_json(tmp_path):
    """A scoring job over the all-`none` NB201 cell alone (its proxies score NaN/-inf; one
    architecture gives NaN correlations) and a tiny search: every *.json parses strictly, and the
    NaN taus are null with their count beside them."""
    dd = linked_data_dir(tmp_path, archs=[ALL_NONE])
    cfg = compose("config", [*TINY, f"data_dir={dd}", "proxies=[wrcor,synflow,naswot,grad_norm]",
                             "archs.file=nb201/faults_archs.csv", "archs.column=arch", "archs.select=all",
                             f"store.path={tmp_path}/s.sqlite"])
    out = hrun.run(cfg, output_dir=tmp_path / "runs" / "score")
    assert any(math.isnan(m["tau"]) for m in out["metrics"])  # the in-memory summary keeps NaN
    from harness.search import run_search

    search_cfg = compose("search_run", ["space.channels=4", "space.cells_per_stage=1", "tracking=none",
                                        "batch.size=8", f"data_dir={dd}", f"store.path={tmp_path}/s.sqlite",
                                        "search=random", "objective=synflow", "budget=4", "figure=false"])
    run_search(search_cfg, output_dir=tmp_path / "runs" / "search")

    parsed = strict_files(tmp_path / "runs")
    names = {f.name for f in parsed}
    assert {"summary.json", "search.json"} <= names, names
    summary = parsed[tmp_path / "runs" / "score" / "summary.json"]
    n_nan = sum(math.isnan(m[k]) for m in out["metrics"] for k in ("tau", "rho", "sec_per_arch")
                if isinstance(m[k], float))
    assert summary["nonfinite"]["n_nan"] == n_nan > 0
    at = summary["nonfinite"]["at"]
    assert at["/metrics/0/tau"] == "nan" and summary["metrics"][0]["tau"] is None
    # the bare-NaN writer of before would have failed here
    assert "NaN" not in (tmp_path / "runs" / "score" / "summary.json").read_text()
    json.loads((tmp_path / "runs" / "search" / "search.json").read_text())  # and plain readers still read it
