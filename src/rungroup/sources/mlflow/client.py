"""Any other MLflow tracking URI (postgresql://, mysql://, ...) through mlflow's own client,
which needs ``pip install 'rungroup[mlflow]'``."""

from __future__ import annotations

from rungroup.sources.mlflow.records import _Raw, _value, add_run, points_frame
from rungroup.sources.runrecords import (
    progress,
    require,
)

# --- any other tracking URI through mlflow's client -------------------------------------------


def _read_client(uri: str, include_deleted: bool, progress_bar: bool | None) -> _Raw:
    mlflow = require("mlflow", "mlflow")
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    view = mlflow.entities.ViewType.ALL if include_deleted else mlflow.entities.ViewType.ACTIVE_ONLY
    raw = _Raw(source=f"mlflow:{uri}")
    for experiment in client.search_experiments(view_type=view):
        raw.experiments[str(experiment.experiment_id)] = experiment.name
    runs = client.search_runs(list(raw.experiments), run_view_type=view) if raw.experiments else []
    for run in progress(runs, total=len(runs), desc="mlflow", enabled=progress_bar):
        info, data = run.info, run.data
        where = f"{uri}: run {info.run_id}"
        record = {
            "run_id": info.run_id,
            "name": info.run_name,
            "status": info.status,
            "start_ms": info.start_time,
            "end_ms": info.end_time,
            "experiment_id": str(info.experiment_id),
        }
        if not add_run(raw, record, where):
            continue
        raw.params[info.run_id] = dict(data.params)
        raw.tags[info.run_id] = dict(data.tags)
        raw.latest[info.run_id] = {k: _value(v) for k, v in data.metrics.items()}
        for key in data.metrics:
            points = [
                (p.step, p.timestamp, p.value) for p in client.get_metric_history(info.run_id, key)
            ]
            raw.history.append(points_frame(info.run_id, key, points, f"{where}, metric {key}"))
    return raw
