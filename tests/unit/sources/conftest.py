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
from collections.abc import Iterator
from pathlib import Path

import pytest

GROUPS = {"adam": 0.001, "sgd": 0.1}
SEEDS = (0, 1, 2)
STEPS = tuple(range(0, 100, 5))


def curve(group: str, seed: int, step: int) -> dict[str, float]:
    """The values every source logs (float32-representable is not needed: TB is compared
    within float32 precision)."""
    lr = GROUPS[group]
    return {
        "loss": 1.0 / (1.0 + lr * 10 * step + 0.01 * seed) + 0.001 * seed,
        "acc": min(1.0, 0.5 + step * lr + 0.013 * seed),
    }


def all_runs() -> Iterator[tuple[str, float, int]]:
    for group, lr in GROUPS.items():
        for seed in SEEDS:
            yield group, lr, seed


@pytest.fixture(scope="session")
def mlflow_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow-sqlite")
    path = root / "mlflow.db"
    client = MlflowClient(tracking_uri=f"sqlite:///{path}")
    _log_mlflow(client, Metric, Param, RunTag)
    return path


@pytest.fixture(scope="session")
def mlflow_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow-files") / "mlruns"
    old = os.environ.get("MLFLOW_ALLOW_FILE_STORE")
    os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
    try:
        client = MlflowClient(tracking_uri=root.as_uri())
        _log_mlflow(client, Metric, Param, RunTag)
    finally:
        if old is None:
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE", None)
        else:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = old
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


@pytest.fixture(scope="session")
def mlflow_server(mlflow_sqlite: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `mlflow server` on 127.0.0.1 serving a copy of the SQLite fixture."""
    import shutil

    folder = tmp_path_factory.mktemp("mlflow-server")
    database = folder / "served.db"
    shutil.copy(mlflow_sqlite, database)
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "mlflow",
            "server",
            "--backend-store-uri",
            f"sqlite:///{database}",
            "--default-artifact-root",
            (folder / "artifacts").as_uri(),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
        ],
        stdout=(folder / "server.log").open("w"),
        stderr=subprocess.STDOUT,
        cwd=folder,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log = (folder / "server.log").read_text()[-2000:]
                pytest.fail(f"mlflow server did not start: {log}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
