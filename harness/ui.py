"""``harness ui``: serve the MLflow store to a browser, lean, and say where to look.

``make ui`` runs this command; ``tests/test_mlflow_ui.py`` starts it the same way.  It

* opens the store (creating it when missing) and makes sure every experiment carries
  ``mlflow.experimentKind = custom_model_development`` (stores written before the harness set
  the tag). MLflow 3.17's UI, however, takes the kind from its sidebar switch (GenAI / Model
  training, default GenAI) rather than from the tag, so the printed links also carry
  ``workflowType=machine_learning``, the switch's URL form: they open on the runs table, not the
  GenAI traces overview;
* writes, per experiment, three saved views of the runs table (experiment tags
  ``mlflow.sharedViewState.<key>``, the form MLflow's "share view" writes: JSON of the table's
  state) and prints their links,
  ``http://HOST:PORT/#/experiments/<id>/runs?workflowType=machine_learning&viewStateShareKey=<key>``
  (the route of MLflow 3.17's runs table), the harness's experiment first, on standard output:

  - ``zsnas-results`` (the first link): the evaluation runs (a search experiment: the search
    runs), flat, best ``spearman_rho`` (``test_accuracy``) first, with the comparison columns
    (params ``proxy dataset split seed ...``, metrics ``spearman_rho kendall_tau ...``; a search
    experiment: ``strategy objective ...``, ``test_accuracy regret search_cost_s ...``);
  - ``zsnas-summaries``: the sweeps' summary runs (mean and std over seeds), best
    ``spearman_rho_mean`` (``test_accuracy_mean``) first;
  - ``zsnas-tree``: every run, newest first, as MLflow nests them (sweep > job > evaluation; a
    row's ``+`` expands it), with the same columns.

  MLflow's default table shows no param or metric column (only Created, Dataset, Duration ...):
  these views are what makes the link open on the numbers;
* replaces itself (``exec``) with ``mlflow server`` on ``HOST`` (127.0.0.1 by default) with one
  uvicorn worker (``--workers 1``; MLflow's default is 4) and MLflow's job execution turned off
  (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: no huey consumers or job runner, which only serve
  GenAI evaluation jobs).  That is two processes (MLflow's launcher and its one worker) where a bare
  ``mlflow ui`` starts 15 (about 2.6 GB resident, measured with MLflow 3.17.2) -- about 0.5 GB.
"""
from __future__ import annotations

import os
import sys
from typing import Sequence

__all__ = ["RUNS_ROUTE", "VIEW_TAG_PREFIX", "VIEWS", "server_command", "server_env", "experiment_url", "views",
           "prepare_store", "main"]

#: MLflow 3.17's runs table of an experiment (the UI's hash router)
RUNS_ROUTE = "#/experiments/{experiment_id}/runs"
#: the UI's switch to its "Model training" side (where an experiment opens on its runs)
WORKFLOW = "workflowType=machine_learning"
#: an experiment tag holding a shared view of its runs table (MLflow UI's own convention)
VIEW_TAG_PREFIX = "mlflow.sharedViewState."
#: the views written per experiment, the first is the one printed first
VIEWS = ("zsnas-results", "zsnas-summaries", "zsnas-tree")
#: the columns of each view, per kind of experiment: (params, metrics), in the order shown (the
#: table renders only the columns in sight, so the comparison's come first and are few)
COLUMNS = {
    "scores": {
        "zsnas-tree": (("proxy", "dataset", "split", "seed"),
                       ("spearman_rho", "kendall_tau", "spearman_rho_mean", "spearman_rho_std", "sec_per_arch")),
        "zsnas-results": (("proxy", "dataset", "split", "seed", "batch_size", "n_archs"),
                         ("spearman_rho", "kendall_tau", "sec_per_arch", "n_nan")),
        "zsnas-summaries": (("proxy", "dataset", "split", "seeds"),
                            ("spearman_rho_mean", "spearman_rho_std", "kendall_tau_mean", "kendall_tau_std",
                             "sec_per_arch_mean", "n_seeds")),
    },
    "search": {
        "zsnas-tree": (("strategy", "objective", "dataset", "seed"),
                       ("test_accuracy", "regret", "search_cost_s", "test_accuracy_mean", "regret_mean")),
        "zsnas-results": (("strategy", "objective", "dataset", "target", "budget", "seed"),
                         ("test_accuracy", "regret", "search_cost_s")),
        "zsnas-summaries": (("strategy", "objective", "dataset", "seeds"),
                            ("test_accuracy_mean", "test_accuracy_std", "regret_mean", "regret_std",
                             "search_cost_s_mean", "n_seeds")),
    },
}
#: the sort key of the results and summaries views, per kind
BEST = {"scores": "spearman_rho", "search": "test_accuracy"}


def experiment_url(host: str, port: int, experiment_id: str, view: str | None = None) -> str:
    """The link of an experiment's runs table, in the shared ``view`` when given.

    ``workflowType=machine_learning`` is MLflow 3.17's own URL switch between its GenAI and
    "Model training" sides: the UI takes an experiment's kind from that switch (default: GenAI,
    remembered in the browser), not from the ``mlflow.experimentKind`` tag, so without it an
    experiment's page opens on the traces overview.

    >>> experiment_url("127.0.0.1", 5000, "1")
    'http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning'
    >>> experiment_url("127.0.0.1", 5000, "1", "zsnas-results")
    'http://127.0.0.1:5000/#/experiments/1/runs?workflowType=machine_learning&viewStateShareKey=zsnas-results'
    """
    url = f"http://{host}:{port}/" + RUNS_ROUTE.format(experiment_id=experiment_id) + "?" + WORKFLOW
    return url + (f"&viewStateShareKey={view}" if view else "")


def _column(kind: str, key: str) -> str:
    return f"{kind}.`{key}`"


def views(kind: str) -> dict[str, dict]:
    """The shared views (key -> the runs table's state, as MLflow's UI stores it) of an
    experiment of ``kind`` (``scores`` or ``search``)."""
    from .tracking import ROLE_TAG

    leaf = "search" if kind == "search" else "evaluation"

    def state(view: str, search_filter: str, order_by: str) -> dict:
        params, metrics = COLUMNS[kind][view]
        columns = [_column("metrics", m) for m in metrics] + [_column("params", p) for p in params]
        if view == "zsnas-tree":
            columns.insert(0, "attributes.`Duration`")
        return {"searchFilter": search_filter, "orderByKey": order_by, "orderByAsc": False, "startTime": "ALL",
                "lifecycleFilter": "Active", "datasetsFilter": [], "modelVersionFilter": "All Runs",
                "selectedColumns": columns, "columnOrder": columns, "columnWidths": {},
                "runsExpanded": {}, "runsPinned": [], "runsHidden": [],
                "runsVisibilityMap": {}, "runsHiddenMode": "FIRST_10_RUNS", "viewMaximized": False,
                "runListHidden": False, "isAccordionReordered": False, "useGroupedValuesInCharts": True,
                "hideEmptyCharts": True, "groupBy": None, "groupsExpanded": {}, "autoRefreshEnabled": True}

    best = BEST[kind]
    return {
        "zsnas-results": state("zsnas-results", f"tags.`{ROLE_TAG}` = '{leaf}'", _column("metrics", best)),
        "zsnas-summaries": state("zsnas-summaries", f"tags.`{ROLE_TAG}` = 'summary'",
                                 _column("metrics", f"{best}_mean")),
        "zsnas-tree": state("zsnas-tree", "", "attributes.start_time"),
    }


def server_command(tracking_uri: str, *, host: str = "127.0.0.1", port: int = 5000,
                   artifact_root: str | None = None) -> list[str]:
    """The ``mlflow server`` command line that serves ``tracking_uri`` with one worker."""
    cmd = [sys.executable, "-m", "mlflow", "server", "--backend-store-uri", tracking_uri,
           "--host", host, "--port", str(int(port)), "--workers", "1"]
    if artifact_root:
        cmd += ["--default-artifact-root", artifact_root]
    return cmd


def server_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ``base`` (default: this process's) without MLflow's job
    execution (the huey consumers and job runner) and with one OpenMP thread."""
    env = dict(os.environ if base is None else base)
    env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def prepare_store(store: str, experiment: str) -> tuple[str, list[tuple[str, str]]]:
    """(the store's URI, its experiments as (id, name), ``experiment`` first): creates the store
    and ``experiment`` when missing, tags every experiment with the custom-model kind and writes
    its shared views (:func:`views`)."""
    import json

    from mlflow.entities import ViewType

    from .tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, ROLE_TAG, _client, ensure_store, normalise_uri

    uri = normalise_uri(store)
    main_id = ensure_store(uri, experiment)
    client = _client(uri)
    exps = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    for exp in exps:
        if EXPERIMENT_KIND_TAG not in exp.tags:
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        kind = "search" if exp.name.endswith("-search") or client.search_runs(
            [exp.experiment_id], f"tags.`{ROLE_TAG}` = 'search'", max_results=1) else "scores"
        for key, state in views(kind).items():
            client.set_experiment_tag(exp.experiment_id, VIEW_TAG_PREFIX + key, json.dumps(state))
    listed = [(main_id, experiment)]
    listed += sorted((str(e.experiment_id), e.name) for e in exps if str(e.experiment_id) != main_id
                     and e.name != "Default")
    return uri, listed


def main(argv: Sequence[str] | None = None) -> int:
    from .commands import command_parser
    from .tracking import default_artifact_root

    parser = command_parser("ui", epilog="Example: harness ui --store runs/mlruns.db --port 5001")
    parser.add_argument("--store", default=os.environ.get("ZSNAS_MLFLOW_URI", "mlruns.db"),
                        help="the MLflow store: a SQLite file or sqlite:///... (default: $ZSNAS_MLFLOW_URI, "
                             "else mlruns.db in the working directory, where harness run writes it)")
    parser.add_argument("--experiment", default="zsnas-bench", help="the experiment whose link is printed first")
    parser.add_argument("--host", default="127.0.0.1", help="the address to listen on (this machine only)")
    parser.add_argument("--port", type=int, default=5000, help="the port")
    parser.add_argument("--dry-run", action="store_true", help="print the links and the server command; "
                                                               "start nothing")
    args = parser.parse_args(argv)
    if args.store.startswith(("http://", "https://")):
        parser.error(f"--store {args.store}: that store is served already; open it in a browser")
    if not (0 < args.port < 65536):
        parser.error(f"--port {args.port}: a port is 1..65535")
    uri, experiments = prepare_store(args.store, args.experiment)
    cmd = server_command(uri, host=args.host, port=args.port, artifact_root=default_artifact_root(uri))
    for exp_id, name in experiments:
        for view in VIEWS:
            print(f"{name} ({view.removeprefix('zsnas-')}): {experiment_url(args.host, args.port, exp_id, view)}",
                  flush=True)
    print(f"serving {uri} with one worker: {' '.join(cmd)}", file=sys.stderr, flush=True)
    if args.dry_run:
        return 0
    os.execve(cmd[0], cmd, server_env())
    return 0  # pragma: no cover - exec does not return


if __name__ == "__main__":
    raise SystemExit(main())
