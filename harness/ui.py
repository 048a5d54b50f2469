"""``harness ui``: serve the MLflow store to a browser, lean, and say where to look.

``make ui`` runs this command; ``tests/test_mlflow_ui.py`` starts it the same way.  It

* opens the store (creating it when missing) and makes sure every experiment carries
  ``mlflow.experimentKind = custom_model_development``, so that MLflow 3's UI opens on the runs
  table instead of the GenAI traces overview (stores written before the harness set the tag);
* prints the link of each experiment's runs table, ``http://HOST:PORT/#/experiments/<id>/runs``
  (the route of MLflow 3.17's runs table), the harness's experiment first, on standard output;
* replaces itself (``exec``) with ``mlflow server`` on ``HOST`` (127.0.0.1 by default) with one
  uvicorn worker (``--workers 1``; MLflow's default is 4) and MLflow's job execution turned off
  (``MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false``: no huey consumers or job runner, which only serve
  GenAI evaluation jobs).  That is two processes (MLflow's launcher and its one worker) where a bare
  ``mlflow ui`` starts 15 (about 2.6 GB resident, measured with MLflow 3.17.2) -- about 0.5 GB.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["RUNS_ROUTE", "server_command", "server_env", "experiment_url", "prepare_store", "main"]

#: MLflow 3.17's runs table of an experiment (the UI's hash router)
RUNS_ROUTE = "#/experiments/{experiment_id}/runs"


def experiment_url(host: str, port: int, experiment_id: str) -> str:
    """The link of an experiment's runs table.

    >>> experiment_url("127.0.0.1", 5000, "1")
    'http://127.0.0.1:5000/#/experiments/1/runs'
    """
    return f"http://{host}:{port}/" + RUNS_ROUTE.format(experiment_id=experiment_id)


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
    and ``experiment`` when missing and tags every experiment with the custom-model kind."""
    from mlflow.entities import ViewType

    from .tracking import EXPERIMENT_KIND, EXPERIMENT_KIND_TAG, _client, ensure_store, normalise_uri

    uri = normalise_uri(store)
    main_id = ensure_store(uri, experiment)
    client = _client(uri)
    exps = client.search_experiments(view_type=ViewType.ACTIVE_ONLY)
    for exp in exps:
        if EXPERIMENT_KIND_TAG not in exp.tags:
            client.set_experiment_tag(exp.experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
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
        print(f"{name}: {experiment_url(args.host, args.port, exp_id)}", flush=True)
    print(f"serving {uri} with one worker: {' '.join(cmd)}", file=sys.stderr, flush=True)
    if args.dry_run:
        return 0
    os.execve(cmd[0], cmd, server_env())
    return 0  # pragma: no cover - exec does not return


if __name__ == "__main__":
    raise SystemExit(main())
