"""Runs, requests and readers shared by the widget's tests."""

from __future__ import annotations

import io
from typing import Any

import polars as pl

from rungroup.runs import Runs
from rungroup.widget import Explorer

XSS = "<img src=x onerror=alert(1)>"


def make_runs(n_steps: int = 20) -> Runs:
    """Six runs: two lr groups x three seeds (one named with markup), two metrics."""
    ids = [f"r{i}" for i in range(6)]
    runs = pl.DataFrame(
        {
            "id": ids,
            "name": ["a0", "a1", XSS, "b0", "b1", "b2"],
            "group": ["exp"] * 6,
            "job_type": ["train"] * 5 + ["eval"],
            "state": ["finished"] * 6,
            "config.lr": [0.1, 0.1, 0.1, 0.01, 0.01, 0.01],
            "config.seed": [0, 1, 2, 0, 1, 2],
        }
    )
    rows = []
    for i, run_id in enumerate(ids):
        for step in range(n_steps):
            for metric, scale in (("loss", 1.0), ("acc", 0.5)):
                value = scale * (i + 1) / (step + 1)
                rows.append((run_id, metric, step, 0.5 * step + i, value))
    history = pl.DataFrame(
        rows, schema=["run_id", "metric", "step", "time", "value"], orient="row"
    ).with_columns(
        timestamp=pl.datetime(2026, 1, 1, time_zone="UTC") + pl.duration(seconds=pl.col("time"))
    )
    return Runs(runs, history)


def ask(widget: Explorer, kind: str, **body: Any) -> tuple[dict[str, Any], list[bytes]]:
    return widget.handle({"kind": kind, "id": 7, **body})


def read_recipe_bytes(parquet: bytes) -> str:
    metadata = pl.read_parquet_metadata(io.BytesIO(parquet))
    return next(v for k, v in metadata.items() if "rungroup" in k)


def read(buffer: bytes) -> pl.DataFrame:
    return pl.read_ipc_stream(io.BytesIO(buffer))


def units(spec: dict[str, Any]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "mark" in node:
                found.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return found


def data_names(spec: dict[str, Any]) -> set[str]:
    """The named datasets the spec's units and layers read (Altair lifts a dataset all the
    layers of a panel share to the layer)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            data = node.get("data")
            if isinstance(data, dict) and "name" in data and ("mark" in node or "layer" in node):
                found.add(data["name"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return found


def partition_covers(spec: dict[str, Any], rows: pl.DataFrame) -> bool:
    """Every chart row in exactly one of the spec's datasets."""
    datasets = list(spec["usermeta"]["rungroup"]["datasets"])
    counts = [
        rows.filter(*[pl.col(k).cast(pl.String) == v for k, v in d["where"].items()]).height
        for d in datasets
    ]
    return sum(counts) == rows.height and all(c > 0 for c in counts)
