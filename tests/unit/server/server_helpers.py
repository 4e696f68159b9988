"""The test PostgreSQL + MLflow server (conftest.py) and logging runs into it through
MLflow's own client."""

from __future__ import annotations

from dataclasses import dataclass

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
