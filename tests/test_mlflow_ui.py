"""The MLflow UI as a user meets it: ``harness ui`` (what ``make ui`` runs) on 127.0.0.1 over a
store a tiny ``harness run --multirun`` fills, opened in headless Chromium (Debian's
``/usr/bin/chromium``, driven by Playwright; no browser download).  The printed link must land on
the runs table with the comparison columns, the summaries link on the per-(proxy, dataset) means,
and the compare view of two runs must show both.  Screenshots go to the test's ``tmp_path``
(``results.png``, ``summaries.png``, ``compare.png``).

Skipped, with the reason, only where Chromium or Playwright is missing and ``$CI`` is unset;
``.ci/run`` installs Chromium (apt-get) and sets ``CI``, so in CI a missing browser fails.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from conftest import REAL

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
IN_CI = bool(os.environ.get("CI"))


def _require_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        missing = "playwright (pip install -e '.[test]')"
    else:
        missing = None if CHROMIUM else "chromium (apt-get install -y chromium)"
    if missing is None:
        return
    if IN_CI:
        pytest.fail(f"CI must run the browser test: {missing} is missing")
    pytest.skip(f"{missing} is not installed (not in CI: $CI unset)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _UI:
    """``python -m harness ui`` in its own process group; its printed links."""

    def __init__(self, db: Path, port: int, cwd: Path) -> None:
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-m", "harness", "ui", "--store", str(db), "--port", str(port)],
                                     cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    def links(self, experiment: str, timeout: float = 120) -> dict[str, str]:
        """``{view: url}`` as printed for ``experiment``: ``<experiment> (<view>): <url>``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = {}
            for line in list(self.lines):
                head, sep, url = line.partition("): ")
                if sep and head.startswith(f"{experiment} (") and url.startswith("http://"):
                    found[head[len(experiment) + 2:]] = url
            if len(found) == 3:
                return found
            assert self.proc.poll() is None, "harness ui ended:\n" + "\n".join(self.lines)
            time.sleep(0.2)
        raise AssertionError("no links printed:\n" + "\n".join(self.lines))

    def wait_until_served(self, port: int, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, "the server ended:\n" + "\n".join(self.lines[-40:])
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        raise AssertionError("the server did not answer:\n" + "\n".join(self.lines[-40:]))

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the group this test started (launcher + worker)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def _headers(page, wanted: set[str], timeout: float = 45) -> list[str]:
    """The runs table's column headers once every ``wanted`` one is shown."""
    deadline = time.monotonic() + timeout
    texts: list[str] = []
    while time.monotonic() < deadline:
        texts = list(dict.fromkeys(t.strip() for t in page.get_by_role("columnheader").all_inner_texts()))
        if wanted <= set(texts):
            return texts
        time.sleep(0.3)
    raise AssertionError(f"columns {sorted(wanted - set(texts))} not shown; headers: {texts}")


@pytest.mark.skipif(REAL is None, reason="benchmark data (../shared/data or $ZSNAS_DATA_DIR) not found")
def test_the_printed_link_lands_on_the_runs_table_and_compares(tmp_path):
    _require_browser()
    from mlflow import MlflowClient
    from playwright.sync_api import sync_playwright

    from mlflow_sweep import tiny_sweep

    port = _free_port()
    db = tmp_path / "sweep" / "store" / "mlruns.db"
    ui = _UI(db, port, tmp_path)  # started first: it makes the store; the sweep runs while it starts
    try:
        links = ui.links("zsnas-bench")
        assert list(links) == ["results", "summaries", "tree"]
        assert all(u.startswith(f"http://127.0.0.1:{port}/#/experiments/") for u in links.values())
        sweep = tiny_sweep(tmp_path / "sweep")
        ui.wait_until_served(port)
        client = MlflowClient(tracking_uri=sweep.uri)
        exp = client.get_experiment_by_name("zsnas-bench")
        assert f"/#/experiments/{exp.experiment_id}/runs?" in links["results"]
        evaluations = client.search_runs([exp.experiment_id], "tags.`zsnas.role` = 'evaluation'",
                                         order_by=["attributes.run_name ASC"])
        n_runs = 2 * 3 * 2  # proxies x targets (cifar10-valid/valid, cifar10-valid/test, cifar10/test) x seeds
        assert len(evaluations) == n_runs
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
            page = browser.new_page(viewport={"width": 1920, "height": 1080})
            # the printed link: the runs table, the evaluation runs with spearman_rho and proxy
            page.goto(links["results"])
            headers = _headers(page, {"spearman_rho", "kendall_tau", "proxy", "dataset", "seed"})
            assert "Metrics" in headers and "Parameters" in headers
            page.get_by_text("wrcor · nb201 · cifar10-valid/valid · s0", exact=True).wait_for(timeout=30000)
            body = page.inner_text("body")
            # the runs table on MLflow's "Model training" side, not the GenAI traces overview
            assert re.search(rf"\b{n_runs}\s+matching runs", body) and "Token Usage" not in body
            assert "workflowType=machine_learning" in page.url
            assert all(r.info.run_name in body for r in evaluations)
            page.screenshot(path=str(tmp_path / "results.png"))
            # the summaries: one row per (proxy, dataset/split), mean and std over the seeds
            page.goto(links["summaries"])
            _headers(page, {"spearman_rho_mean", "spearman_rho_std", "proxy", "seeds"})
            page.get_by_text("wrcor · nb201 · cifar10-valid/valid · mean of 2 seeds", exact=True).wait_for(
                timeout=30000)
            page.screenshot(path=str(tmp_path / "summaries.png"))
            # the compare view of two runs shows both
            a, b = evaluations[0], evaluations[-1]
            runs, exps = json.dumps([a.info.run_id, b.info.run_id]), json.dumps([exp.experiment_id])
            page.goto(f"http://127.0.0.1:{port}/#/compare-runs?runs={runs}&experiments={exps}")
            for run in (a, b):
                page.get_by_text(run.info.run_name, exact=True).first.wait_for(timeout=30000)
            body = page.inner_text("body")
            assert "spearman_rho" in body and "proxy" in body
            page.screenshot(path=str(tmp_path / "compare.png"), full_page=True)
            browser.close()
        print(f"screenshots: {tmp_path}/results.png, summaries.png, compare.png")
    finally:
        ui.stop()


def test_ui_dry_run_tags_an_old_store_and_prints_its_links(tmp_path):
    """No browser needed: ``harness ui --dry-run`` on a store made without the harness (no kind
    tag) tags every experiment, writes the three views and prints their links and the one-worker
    server command."""
    from mlflow import MlflowClient

    from harness.ui import VIEW_TAG_PREFIX, VIEWS

    db = tmp_path / "old.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    other = client.create_experiment("zsnas-bench-search")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "harness", "ui", "--store", str(db), "--port", "5123", "--dry-run"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    main = client.get_experiment_by_name("zsnas-bench")
    lines = done.stdout.splitlines()
    assert lines[0] == (f"zsnas-bench (results): http://127.0.0.1:5123/#/experiments/{main.experiment_id}/runs"
                        "?workflowType=machine_learning&viewStateShareKey=zsnas-results")
    assert len(lines) == 6 and lines[3].startswith("zsnas-bench-search (results): ")
    assert "--workers 1" in done.stderr and "--host 127.0.0.1" in done.stderr
    for exp_id, best in ((main.experiment_id, "spearman_rho"), (other, "test_accuracy")):
        tags = client.get_experiment(exp_id).tags
        assert tags["mlflow.experimentKind"] == "custom_model_development"
        results = json.loads(tags[VIEW_TAG_PREFIX + VIEWS[0]])
        assert results["orderByKey"] == f"metrics.`{best}`"
        assert results["selectedColumns"][0] == f"metrics.`{best}`"
    bad = subprocess.run([sys.executable, "-m", "harness", "ui", "--store", "http://x:5000"], cwd=tmp_path, env=env,
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "served already" in bad.stderr


def test_server_runs_one_worker_without_job_runners():
    from harness.ui import server_command, server_env

    cmd = server_command("sqlite:////x/mlruns.db", port=5001, artifact_root="file:///x/mlartifacts")
    assert cmd[1:4] == ["-m", "mlflow", "server"] and cmd[cmd.index("--workers") + 1] == "1"
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and cmd[cmd.index("--port") + 1] == "5001"
    assert server_env({"PATH": "/bin"})["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
