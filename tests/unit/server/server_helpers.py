"""A real PostgreSQL 15 and a real `mlflow server` on it (the tests' fixtures, conftest.py, and
benchmarks/bench_server.py), and logging runs into it through MLflow's own client.

Debian's PostgreSQL binaries run as the `postgres` user (initdb refuses root): the data folder
is a temporary directory that user owns; the server listens on a free port of 127.0.0.1 only,
with password authentication for TCP connections, and is stopped and deleted at the end.
MLflow's own server creates its schema in the database.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

USER = "rgtest"
#: A password that must never appear in rungroup's output (test_server_secrets.py).
PASSWORD = "s3cret-Pw-7319"
DATABASE = "mlflow"


@dataclass(frozen=True)
class Server:
    """A running PostgreSQL with an MLflow server on it."""

    host: str
    port: int
    database: str
    user: str
    password: str
    tracking_uri: str

    def uri(self, scheme: str = "postgresql", *, password: bool = True) -> str:
        secret = f":{self.password}" if password else ""
        return f"{scheme}://{self.user}{secret}@{self.host}:{self.port}/{self.database}"


PG_BIN = Path("/usr/lib/postgresql/15/bin")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(*command: str) -> list[str]:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    return [*prefix, *command]


def _wait(check: object, what: str, seconds: float = 120.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except OSError:
            pass
        time.sleep(0.25)
    raise RuntimeError(f"{what} did not start within {seconds} s")


@contextmanager
def running_postgres() -> Iterator[tuple[str, int]]:
    """A PostgreSQL 15 on 127.0.0.1 (host, port) with the database `mlflow` and the role
    `rgtest` (password `PASSWORD`), stopped and deleted at the end."""
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(
            f"PostgreSQL 15 is not installed ({PG_BIN}): apt-get install postgresql-15"
        )
    root = Path(tempfile.mkdtemp(prefix="rungroup-pg-"))
    data = root / "data"
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    root.chmod(0o700)
    port = free_port()
    subprocess.run(
        _as_postgres(
            str(PG_BIN / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth-local=trust",
            "--auth-host=scram-sha-256",
            "-E",
            "UTF8",
        ),
        check=True,
        capture_output=True,
    )
    server = subprocess.Popen(
        _as_postgres(
            str(PG_BIN / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-c",
            "listen_addresses=127.0.0.1",
            "-c",
            f"unix_socket_directories={root}",
            "-c",
            "fsync=off",
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        psql = [str(PG_BIN / "psql"), "-h", str(root), "-p", str(port), "-q"]

        def ready() -> bool:
            done = subprocess.run(
                _as_postgres(*psql, "-U", "postgres", "-c", "SELECT 1"),
                capture_output=True,
            )
            return done.returncode == 0

        _wait(ready, "PostgreSQL")
        for statement in (
            f"CREATE ROLE {USER} LOGIN PASSWORD '{PASSWORD}'",
            f"CREATE DATABASE {DATABASE} OWNER {USER}",
        ):
            subprocess.run(
                _as_postgres(*psql, "-U", "postgres", "-c", statement),
                check=True,
                capture_output=True,
            )
        yield "127.0.0.1", port
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        shutil.rmtree(root, ignore_errors=True)


@contextmanager
def running_mlflow_server(postgres: tuple[str, int]) -> Iterator[Server]:
    """`mlflow server --backend-store-uri postgresql+psycopg2://...` on `postgres`."""
    host, port = postgres
    web = free_port()
    store = f"postgresql+psycopg2://{USER}:{PASSWORD}@{host}:{port}/{DATABASE}"
    artifacts = Path(tempfile.mkdtemp(prefix="rungroup-mlflow-artifacts-"))
    log = artifacts / "server.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "mlflow"),
                "server",
                "--backend-store-uri",
                store,
                "--default-artifact-root",
                str(artifacts),
                "--host",
                "127.0.0.1",
                "--port",
                str(web),
                "--workers",
                "1",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            env={**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false", "DO_NOT_TRACK": "1"},
        )
    tracking = f"http://127.0.0.1:{web}"

    def ready() -> bool:
        if process.poll() is not None:
            raise RuntimeError("mlflow server exited:\n" + log.read_text(errors="replace"))
        with urllib.request.urlopen(f"{tracking}/health", timeout=2) as answer:
            return bool(answer.status == 200)

    try:
        _wait(ready, "mlflow server", 180.0)
        yield Server(host, port, DATABASE, USER, PASSWORD, tracking)
    finally:
        process.terminate()
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(artifacts, ignore_errors=True)


def log_runs(tracking_uri: str, experiment: str, specs: list[dict[str, object]]) -> list[str]:
    """Log runs through MLflow's client: each spec has `params`, `tags`, `metrics` (name ->
    list of (step, timestamp_ms, value)) and optional `name`; returns the run ids."""
    from mlflow.entities import Metric, Param, RunTag
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=tracking_uri)
    experiment_id = client.create_experiment(experiment)
    ids: list[str] = []
    for spec in specs:
        run = client.create_run(
            experiment_id, run_name=str(spec.get("name", "")) or None, start_time=1_700_000_000_000
        )
        run_id = run.info.run_id
        params = [Param(k, str(v)) for k, v in dict(spec.get("params", {})).items()]  # type: ignore[call-overload]
        tags = [RunTag(k, str(v)) for k, v in dict(spec.get("tags", {})).items()]  # type: ignore[call-overload]
        points = [
            Metric(key, float(value), int(stamp), int(step))
            for key, rows in dict(spec.get("metrics", {})).items()  # type: ignore[call-overload]
            for step, stamp, value in rows
        ]
        client.log_batch(run_id, params=params, tags=tags)
        for first in range(0, len(points), 1000):  # MLflow's limit per batch
            client.log_batch(run_id, metrics=points[first : first + 1000])
        client.set_terminated(run_id, end_time=1_700_000_100_000)
        ids.append(run_id)
    return ids
