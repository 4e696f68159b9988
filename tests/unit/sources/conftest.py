"""Fixtures for the source loaders: the same curves, logged through every real client.

Six runs (two optimisers x three seeds) log `loss` and `acc` at steps 0, 5, ..., 95, with
`lr` and `seed` as config and the optimiser as the group. Each fixture writes them with the
tracker's own client (mlflow, tensorboardX, wandb in offline mode, Lightning's CSV layout) into
a temporary folder, once per test session.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from source_curves import STEPS, all_runs, curve


@pytest.fixture(scope="session")
def empty_mlflow_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow SQLite store with its tables and no runs (the migrations take seconds)."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-empty") / "mlflow.db"
    MlflowClient(tracking_uri=f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture(scope="session")
def mlflow_sqlite(
    empty_mlflow_db: Path, tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Path:
    import shutil

    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow-sqlite")
    path = root / "mlflow.db"
    shutil.copy(empty_mlflow_db, path)
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    _log_mlflow(client, Metric, Param, RunTag)
    # The tracking server takes half a minute to start: start it now, in the background, so
    # that it is up by the time the REST test asks for it (see `mlflow_server`).
    served = tmp_path_factory.mktemp("mlflow-server")
    shutil.copy(path, served / "served.db")
    _SERVER["process"], _SERVER["url"], _SERVER["log"] = _start_server(served)
    request.addfinalizer(_stop_server)
    return path


@pytest.fixture(scope="session")
def mlflow_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow-files") / "mlruns"
    # MLflow refuses a file store unless told it may
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        client = MlflowClient(tracking_uri=root.as_uri())
        _log_mlflow(client, Metric, Param, RunTag)
    return root


def _log_mlflow(client: object, metric: type, param: type, tag: type) -> None:
    experiment = client.create_experiment("curves")  # type: ignore[attr-defined]
    base = 1_700_000_000_000
    for group, lr, seed in all_runs():
        run = client.create_run(  # type: ignore[attr-defined]
            experiment,
            run_name=f"{group}-{seed}",
            tags={"group": group, "job_type": "train", "owner": "tests"},
        )
        run_id = run.info.run_id
        metrics = [
            metric(key, value, base + step * 10, step)
            for step in STEPS
            for key, value in curve(group, seed, step).items()
        ]
        client.log_batch(  # type: ignore[attr-defined]
            run_id,
            metrics=metrics,
            params=[param("lr", str(lr)), param("seed", str(seed))],
        )
        client.set_terminated(run_id)  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def tensorboard_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    root = tmp_path_factory.mktemp("tensorboard")
    for group, lr, seed in all_runs():
        writer = SummaryWriter(str(root / group / f"seed_{seed}"))
        for summary in hparams({"lr": lr}, {"loss": 0.0}):
            writer.file_writer.add_summary(summary)
        for step in STEPS:
            for key, value in curve(group, seed, step).items():
                writer.add_scalar(key, value, step)
        writer.close()
    return root


@pytest.fixture(scope="session")
def wandb_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("wandb")
    runs = [
        {
            "group": group,
            "config": {"lr": lr, "seed": seed},
            "points": [(step, curve(group, seed, step)) for step in STEPS],
        }
        for group, lr, seed in all_runs()
    ]
    script = f"""
import json, wandb
for spec in json.loads({json.dumps(runs)!r}):
    run = wandb.init(project="curves", group=spec["group"], job_type="train",
                     dir={str(root)!r}, config=spec["config"], tags=["tests"],
                     name=f"{{spec['group']}}-{{spec['config']['seed']}}")
    for step, values in spec["points"]:
        run.log(values, step=step)
    run.finish()
"""
    # A subprocess keeps wandb's service and global state out of the test process.
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    return root / "wandb"


@pytest.fixture(scope="session")
def lightning_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Written as Lightning's CSVLogger does: `<name>/version_<n>/metrics.csv` with sparse
    rows (one row per `log_metrics` call, `epoch` and `step` columns) and `hparams.yaml`."""
    import yaml

    root = tmp_path_factory.mktemp("lightning")
    for group, lr, seed in all_runs():
        folder = root / group / f"seed_{seed}"
        folder.mkdir(parents=True)
        with (folder / "hparams.yaml").open("w") as handle:
            yaml.dump({"lr": lr, "seed": seed}, handle)
        rows = []
        for step in STEPS:
            values = curve(group, seed, step)
            rows.append({"epoch": step // 50, "step": step, "loss": values["loss"]})
            rows.append({"epoch": step // 50, "step": step, "acc": values["acc"]})
        keys = sorted({k for row in rows for k in row})
        with (folder / "metrics.csv").open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=keys)
            writer.writeheader()
            writer.writerows(rows)
    return root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


_SERVER: dict[str, Any] = {}


def _start_server(folder: Path) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = _free_port()
    log = folder / "server.log"
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{folder / 'served.db'}",
            "--default-artifact-root",
            (folder / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        cwd=folder,
        env=env,
    )
    return process, f"http://127.0.0.1:{port}", log


def _stop_server() -> None:
    process = _SERVER.pop("process", None)
    if process is None:
        return
    process.terminate()
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=20)


@pytest.fixture(scope="session")
def mlflow_server(mlflow_sqlite: Path) -> str:
    """A real `mlflow server` on 127.0.0.1 serving a copy of the SQLite fixture."""
    process, url, log = _SERVER["process"], _SERVER["url"], _SERVER["log"]
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return str(url)
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"mlflow server did not start: {log.read_text()[-2000:]}")
        time.sleep(0.3)
