"""A real PostgreSQL 15 and a real `mlflow server` on it, started once per test session.

Debian's PostgreSQL binaries run as the `postgres` user (initdb refuses root): the data folder
is a temporary directory that user owns; the server listens on a free port of 127.0.0.1 only,
with password authentication for TCP connections. MLflow's own server creates its schema in
the database, and runs are logged through MLflow's own client over REST.
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
from pathlib import Path

import pytest
from server_helpers import DATABASE, PASSWORD, USER, Server

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


@pytest.fixture(scope="session")
def postgres() -> Iterator[tuple[str, int]]:
    """A PostgreSQL 15 on 127.0.0.1 (host, port) with the database `mlflow` and the role
    `rgtest` (password `PASSWORD`), stopped and deleted at the end."""
    if not (PG_BIN / "initdb").exists():
        pytest.fail(f"PostgreSQL 15 is not installed ({PG_BIN}): apt-get install postgresql-15")
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


@pytest.fixture(scope="session")
def mlflow_server(postgres: tuple[str, int]) -> Iterator[Server]:
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
