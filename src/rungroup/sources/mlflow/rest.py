"""An MLflow tracking server read over its REST API, with the standard library only.

A server is not trusted to behave: every request must be answered within `timeout` seconds
in total (a body trickled a byte at a time is cut off, not waited for), the whole load
within `deadline` seconds, a body may hold at most `MAX_BODY` bytes, a listing at most
`MAX_PAGES` pages and a page token that comes back twice ends the listing. Every error
names the URL (without any ``user:password@``); a body that is not JSON says its content
type; a record without the fields MLflow always sends is a `LoadWarning`, not a `KeyError`.
"""

from __future__ import annotations

import base64
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import polars as pl

from rungroup.sources.mlflow.records import _Raw, _value, add_run, points_frame
from rungroup.sources.runrecords import progress, warn

__all__ = ["read_rest"]

#: The most bytes one answer may hold (a page of 25,000 history points is about 3 MB).
MAX_BODY = 256 * 1024**2
#: The most pages one listing may take (MLflow pages 1,000 runs or 25,000 points).
MAX_PAGES = 10_000
_READ = 64 * 1024


class ServerError(ConnectionError):
    """A request to the server failed or its answer is not MLflow's; names the URL."""


def public_url(url: str) -> str:
    """`url` without the ``user:password@`` part (never shown in a message)."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))


class Rest:
    """Requests to one server, each bounded by `timeout` and all by `deadline` seconds."""

    def __init__(self, base: str, timeout: float, deadline: float) -> None:
        parts = urllib.parse.urlsplit(base.rstrip("/"))
        self.base = public_url(base.rstrip("/"))
        self.timeout = timeout
        self.deadline_s = deadline
        self.deadline = time.monotonic() + deadline
        self.headers = {"Content-Type": "application/json"}
        token = os.environ.get("MLFLOW_TRACKING_TOKEN")
        user = os.environ.get("MLFLOW_TRACKING_USERNAME")
        password = os.environ.get("MLFLOW_TRACKING_PASSWORD", "")
        if not token and not user and parts.username:  # credentials in the URL
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
        if token:
            self.headers["Authorization"] = f"Bearer {token}"
        elif user:
            secret = f"{user}:{password}"
            self.headers["Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode()

    def call(self, endpoint: str, body: dict[str, Any] | None = None, **query: Any) -> Any:
        """The JSON object a request answers; `ServerError` or `TimeoutError` naming it."""
        url = f"{self.base}/api/2.0/mlflow/{endpoint}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, headers=self.headers)
        ends = min(time.monotonic() + self.timeout, self.deadline)
        try:
            with urllib.request.urlopen(request, timeout=self._left(url, ends)) as response:
                content_type = response.headers.get("Content-Type", "no content type")
                payload = self._body(response, url, ends)
        except urllib.error.HTTPError as error:
            detail = error.read(300).decode("utf-8", errors="replace").strip()
            raise ServerError(f"{url}: HTTP {error.code} {detail[:200]}") from error
        except urllib.error.URLError as error:
            if isinstance(error.reason, TimeoutError):
                raise self._late(url) from error
            raise ServerError(f"{url}: {error.reason}") from error
        except TimeoutError as error:  # a socket operation outlived what was left
            raise self._late(url) from error
        except OSError as error:
            raise ServerError(f"{url}: {error}") from error
        try:
            answer = json.loads(payload.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            start = payload[:60].decode("utf-8", "replace")
            raise ServerError(
                f"{url}: the answer is not JSON ({content_type}, {len(payload)} bytes, "
                f"starting {start!r}); is this an MLflow tracking server?"
            ) from error
        if not isinstance(answer, dict):
            raise ServerError(f"{url}: the answer is a JSON {type(answer).__name__}, not an object")
        return answer

    def _left(self, url: str, ends: float) -> float:
        left = ends - time.monotonic()
        if left <= 0:
            raise self._late(url)
        return left

    def _late(self, url: str) -> TimeoutError:
        if time.monotonic() >= self.deadline:
            return TimeoutError(f"{url}: the load took longer than deadline={self.deadline_s} s")
        return TimeoutError(f"{url}: no complete answer within timeout={self.timeout} s")

    def _body(self, response: Any, url: str, ends: float) -> bytes:
        """The body, read a chunk at a time against the clock and `MAX_BODY`."""
        chunks: list[bytes] = []
        size = 0
        while True:
            left = self._left(url, ends)
            # One receive may block at most what is left (urlopen's timeout is per receive).
            sock = getattr(getattr(getattr(response, "fp", None), "raw", None), "_sock", None)
            if sock is not None:
                sock.settimeout(left)
            chunk = response.read1(_READ)
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > MAX_BODY:
                raise ServerError(f"{url}: the answer is larger than {MAX_BODY} bytes")
            chunks.append(chunk)

    def pages(self, key: str, ask: Callable[[str | None], Any], url: str) -> list[dict[str, Any]]:
        """Every item under `key` of a paged listing (`ask(token)` fetches one page). A
        token seen before, or more than `MAX_PAGES` pages, ends it with a warning."""
        items: list[dict[str, Any]] = []
        seen: set[str] = set()
        token: str | None = None
        for _ in range(MAX_PAGES):
            answer = ask(token)
            found = answer.get(key, [])
            if not isinstance(found, list):
                warn(url, f"{key!r} is not a list; ignored")
                found = []
            items.extend(item for item in found if isinstance(item, dict))
            token = answer.get("next_page_token") or None
            if token is None:
                return items
            if not isinstance(token, str) or token in seen:
                warn(url, f"the server sent page token {token!r} again; listing ended there")
                return items
            seen.add(token)
        warn(url, f"more than {MAX_PAGES} pages; listing ended there")
        return items


def _pairs(entries: Any, where: str, kind: str) -> dict[str, Any]:
    """`[{"key": k, "value": v}, ...]` as a dict; an entry without a key is warned about."""
    out: dict[str, Any] = {}
    for entry in entries if isinstance(entries, list) else []:
        key = entry.get("key") if isinstance(entry, dict) else None
        if not isinstance(key, str):
            warn(where, f"a {kind} without a key ({str(entry)[:60]}); skipped")
            continue
        out[key] = entry.get("value", "")
    return out


def read_rest(
    url: str,
    include_deleted: bool,
    progress_bar: bool | None,
    timeout: float,
    workers: int,
    deadline: float,
) -> _Raw:
    rest = Rest(url, timeout, deadline)
    raw = _Raw(source=f"mlflow:{rest.base}")
    view = "ALL" if include_deleted else "ACTIVE_ONLY"
    experiments_url = f"{rest.base}/api/2.0/mlflow/experiments/search"
    for experiment in rest.pages(
        "experiments",
        lambda token: rest.call(
            "experiments/search",
            {"max_results": 1000, "view_type": view, **({"page_token": token} if token else {})},
        ),
        experiments_url,
    ):
        if "experiment_id" not in experiment:
            warn(experiments_url, f"an experiment without an id ({str(experiment)[:60]}); skipped")
            continue
        raw.experiments[str(experiment["experiment_id"])] = experiment.get("name", "")
    if not raw.experiments:
        return raw
    runs_url = f"{rest.base}/api/2.0/mlflow/runs/search"
    body = {"experiment_ids": list(raw.experiments), "max_results": 1000, "run_view_type": view}
    runs = rest.pages(
        "runs",
        lambda token: rest.call(
            "runs/search", {**body, **({"page_token": token} if token else {})}
        ),
        runs_url,
    )
    jobs: list[tuple[str, str]] = []
    for run in runs:
        info: dict[str, Any] = run["info"] if isinstance(run.get("info"), dict) else {}
        data: dict[str, Any] = run["data"] if isinstance(run.get("data"), dict) else {}
        run_id = info.get("run_id") or info.get("run_uuid")
        if not isinstance(run_id, str) or not run_id:
            warn(runs_url, f"a run without a run id ({str(run)[:60]}); skipped")
            continue
        where = f"{runs_url}: run {run_id}"
        record = {
            "run_id": run_id,
            "name": info.get("run_name"),
            "status": info.get("status"),
            "start_ms": info.get("start_time"),
            "end_ms": info.get("end_time"),
            "experiment_id": str(info.get("experiment_id")),
        }
        if not add_run(raw, record, where):
            continue
        raw.params[run_id] = _pairs(data.get("params"), where, "param")
        raw.tags[run_id] = _pairs(data.get("tags"), where, "tag")
        latest = _pairs(data.get("metrics"), where, "metric")
        raw.latest[run_id] = {}
        for key, value in latest.items():
            try:
                raw.latest[run_id][key] = _value(value)
            except (TypeError, ValueError):
                warn(where, f"metric {key!r}: value {str(value)[:60]!r} is not a number; skipped")
        jobs.extend((run_id, key) for key in latest)

    def history(job: tuple[str, str]) -> pl.DataFrame:
        run_id, key = job
        where = f"{rest.base}/api/2.0/mlflow/metrics/get-history?run_id={run_id}&metric_key={key}"
        try:
            points = rest.pages(
                "metrics",
                lambda token: rest.call(
                    "metrics/get-history",
                    run_id=run_id,
                    metric_key=key,
                    max_results=25000,
                    **({"page_token": token} if token else {}),  # type: ignore[arg-type]
                ),
                where,
            )
        except ServerError as error:  # this metric is lost; the others still load
            warn(where, f"history not read ({error})")
            points = []
        return points_frame(
            run_id,
            key,
            [(p.get("step", 0), p.get("timestamp"), p.get("value")) for p in points],
            where,
        )

    with ThreadPoolExecutor(max_workers=workers) as pool:
        raw.history = list(
            progress(pool.map(history, jobs), total=len(jobs), desc="mlflow", enabled=progress_bar)
        )
    return raw
