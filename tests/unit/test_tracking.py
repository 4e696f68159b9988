"""The run logger: init() settings, log() values and steps, config, summary, finishing."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import polars as pl
import pytest

import rungroup as rg
from rungroup import store

ENV_NAMES = [
    "RUNGROUP_DIR",
    "RUNGROUP_PROJECT",
    "WANDB_PROJECT",
    "RUNGROUP_RUN_GROUP",
    "WANDB_RUN_GROUP",
    "RUNGROUP_JOB_TYPE",
    "WANDB_JOB_TYPE",
    "RUNGROUP_NAME",
    "WANDB_NAME",
]


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)


def meta_of(run: rg.Run) -> dict:
    return json.loads((run.dir / store.META_FILE).read_text())


def test_generate_id_is_lowercase_alphanumeric_of_the_asked_length() -> None:
    ids = {rg.generate_id() for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"[a-z0-9]{8}", i) for i in ids)
    assert re.fullmatch(r"[a-z0-9]{20}", rg.generate_id(20))
    with pytest.raises(ValueError, match="at least 1"):
        rg.generate_id(0)


def test_init_writes_a_run_folder_with_metadata(tmp_path: Path) -> None:
    run = rg.init(
        project="vision",
        group="exp-1",
        job_type="train",
        name="first",
        config={"lr": 0.1, "model": {"depth": 4}},
        tags=["baseline", "cifar"],
        dir=tmp_path,
    )
    assert run.dir == tmp_path / "vision" / run.id
    meta = meta_of(run)
    assert meta["state"] == "running"
    assert meta["group"] == "exp-1" and meta["job_type"] == "train" and meta["name"] == "first"
    assert meta["config"] == {"lr": 0.1, "model": {"depth": 4}}
    assert meta["tags"] == ["baseline", "cifar"]
    assert meta["format_version"] == store.FORMAT_VERSION
    assert meta["pid"] > 0 and meta["host"]
    run.finish()
    meta = meta_of(run)
    assert meta["state"] == "finished" and meta["exit_code"] == 0 and meta["finished_at"]


@pytest.mark.parametrize(
    ("field", "variables"),
    [
        ("project", ("RUNGROUP_PROJECT", "WANDB_PROJECT")),
        ("group", ("RUNGROUP_RUN_GROUP", "WANDB_RUN_GROUP")),
        ("job_type", ("RUNGROUP_JOB_TYPE", "WANDB_JOB_TYPE")),
        ("name", ("RUNGROUP_NAME", "WANDB_NAME")),
    ],
)
def test_an_argument_beats_rungroup_variables_which_beat_wandb_variables(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, field: str, variables: tuple[str, str]
) -> None:
    ours, theirs = variables
    monkeypatch.setenv(theirs, "from-wandb")
    with rg.init(dir=tmp_path) as run:
        assert getattr(run, field) == "from-wandb"
    monkeypatch.setenv(ours, "from-rungroup")
    with rg.init(dir=tmp_path) as run:
        assert getattr(run, field) == "from-rungroup"
    with rg.init(dir=tmp_path, **{field: "from-argument"}) as run:
        assert getattr(run, field) == "from-argument"
        assert meta_of(run)[field] == "from-argument"


def test_store_folder_comes_from_rungroup_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNGROUP_DIR", str(tmp_path / "from-env"))
    with rg.init(project="p") as run:
        assert run.dir.parent.parent == tmp_path / "from-env"
    with rg.init(project="p", dir=tmp_path / "explicit") as run:
        assert run.dir.parent.parent == tmp_path / "explicit"


def test_defaults_are_uncategorized_project_and_id_as_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with rg.init() as run:
        assert run.project == "uncategorized"
        assert run.name == run.id
        assert run.group is None and run.job_type is None
    assert (tmp_path / "rungroup-runs" / "uncategorized" / run.id / store.META_FILE).is_file()


def test_steps_auto_increment_and_explicit_steps_may_repeat_or_skip(tmp_path: Path) -> None:
    with rg.init(dir=tmp_path, project="p") as run:
        run.log({"a": 1.0})
        run.log({"a": 2.0})
        run.log({"a": 3.0}, step=10)
        run.log({"b": 4.0}, step=10)
        run.log({"a": 5.0})
        run.log({"a": 6.0}, step=3)
    history = rg.load(tmp_path).history.collect()
    got = history.select(pl.col("metric").cast(pl.String), "step", "value").rows()
    assert got == [
        ("a", 0, 1.0),
        ("a", 1, 2.0),
        ("a", 10, 3.0),
        ("b", 10, 4.0),
        ("a", 11, 5.0),
        ("a", 3, 6.0),
    ]


def test_numbers_of_every_kind_are_metrics_and_non_finite_values_are_kept(
    tmp_path: Path,
) -> None:
    values = {
        "int": 3,
        "float": 0.25,
        "bool": True,
        "np_float32": np.float32(0.5),
        "np_int64": np.int64(7),
        "np_bool": np.bool_(False),
        "zero_d": np.array(1.5),
        "nan": float("nan"),
        "inf": math.inf,
        "minus_inf": -np.inf,
    }
    with rg.init(dir=tmp_path, project="p") as run:
        run.log(values)
    logged = dict(
        rg.load(tmp_path)
        .history.collect()
        .select(pl.col("metric").cast(pl.String), "value")
        .iter_rows()
    )
    assert logged["int"] == 3.0 and logged["float"] == 0.25 and logged["bool"] == 1.0
    assert logged["np_float32"] == 0.5 and logged["np_int64"] == 7.0
    assert logged["np_bool"] == 0.0 and logged["zero_d"] == 1.5
    assert math.isnan(logged["nan"])
    assert logged["inf"] == math.inf and logged["minus_inf"] == -math.inf


@pytest.mark.parametrize("bad", ["0.5", [1.0], None, {"x": 1}, np.array([1.0, 2.0]), 1 + 2j])
def test_a_value_that_is_not_a_number_raises_a_type_error_naming_the_key(
    tmp_path: Path, bad: object
) -> None:
    with rg.init(dir=tmp_path, project="p") as run:
        with pytest.raises(TypeError, match="'my_metric'"):
            run.log({"ok": 1.0, "my_metric": bad})
        run.log({"ok": 2.0})
    history = rg.load(tmp_path).history.collect()
    # the rejected call logged nothing at all, not even its valid keys
    assert history["value"].to_list() == [2.0]


def test_log_rejects_non_dicts_bad_steps_and_logging_after_finish(tmp_path: Path) -> None:
    run = rg.init(dir=tmp_path, project="p")
    with pytest.raises(TypeError, match="dict"):
        run.log([("a", 1.0)])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="step must be an integer"):
        run.log({"a": 1.0}, step=1.5)  # type: ignore[arg-type]
    run.log({"a": 1.0}, step=np.int64(4))  # type: ignore[arg-type]
    run.finish()
    with pytest.raises(RuntimeError, match="finished"):
        run.log({"a": 1.0})


def test_config_changes_are_persisted_while_running_and_at_finish(tmp_path: Path) -> None:
    run = rg.init(dir=tmp_path, project="p", config={"lr": 0.1})
    run.config["batch"] = 64
    run.config.update({"optimizer": "adam"})
    run.config.dropout = np.float64(0.2)
    deadline = time.monotonic() + 5
    while meta_of(run)["config"].get("dropout") != 0.2 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert meta_of(run)["config"] == {"lr": 0.1, "batch": 64, "optimizer": "adam", "dropout": 0.2}
    assert run.config.lr == 0.1
    run.finish()
    assert rg.load(tmp_path).runs.row(0, named=True)["config.optimizer"] == "adam"
    with pytest.raises(TypeError, match="'bad'"):
        run.config["bad"] = object()


def test_summary_defaults_to_last_values_and_explicit_entries_win(tmp_path: Path) -> None:
    with rg.init(dir=tmp_path, project="p") as run:
        run.log({"acc": 0.5, "loss": 2.0})
        run.log({"acc": 0.9, "loss": 1.0})
        run.log({"acc": 0.7})
        assert run.summary["acc"] == 0.7
        run.summary["acc"] = 0.9  # best, not last
        run.summary["note"] = "best checkpoint"
        assert dict(run.summary) == {"acc": 0.9, "loss": 1.0, "note": "best checkpoint"}
    row = rg.load(tmp_path).runs.row(0, named=True)
    assert row["summary.acc"] == 0.9
    assert row["summary.loss"] == 1.0
    assert row["summary.note"] == "best checkpoint"


def test_context_manager_marks_a_run_failed_on_an_exception(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), rg.init(dir=tmp_path, project="p") as run:
        run.log({"a": 1.0})
        1 / 0  # noqa: B018
    assert run.state == "failed"
    meta = meta_of(run)
    assert meta["state"] == "failed" and meta["exit_code"] == 1
    assert rg.load(tmp_path).runs["state"].to_list() == ["failed"]


def test_finish_with_a_non_zero_exit_code_fails_and_finish_is_idempotent(tmp_path: Path) -> None:
    run = rg.init(dir=tmp_path, project="p")
    run.finish(exit_code=3)
    run.finish()
    assert meta_of(run)["exit_code"] == 3 and meta_of(run)["state"] == "failed"


@pytest.mark.parametrize("bad", ["", "..", ".", "a/b", "a\\b", "a\x00b", ".hidden", " x"])
def test_names_that_would_escape_the_store_are_rejected(tmp_path: Path, bad: str) -> None:
    with pytest.raises(rg.StoreError):
        rg.init(dir=tmp_path, project=bad)
    with pytest.raises(rg.StoreError):
        rg.init(dir=tmp_path, project="p", id=bad)
    assert not any(p.name not in ("p",) for p in tmp_path.iterdir())


def test_an_existing_run_is_never_reused_or_overwritten(tmp_path: Path) -> None:
    with rg.init(dir=tmp_path, project="p", id="fixed") as run:
        run.log({"a": 1.0})
    before = {p.name: p.read_bytes() for p in run.dir.iterdir()}
    with pytest.raises(rg.StoreError, match="already exists"):
        rg.init(dir=tmp_path, project="p", id="fixed")
    assert {p.name: p.read_bytes() for p in run.dir.iterdir()} == before


def test_tags_must_be_a_list_and_config_a_dict(tmp_path: Path) -> None:
    with pytest.raises(TypeError, match="tags"):
        rg.init(dir=tmp_path, project="p", tags="one")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="config"):
        rg.init(dir=tmp_path, project="p", config=[("lr", 1)])  # type: ignore[arg-type]


SCRIPT = """
import sys
import rungroup as rg
run = rg.init(dir=sys.argv[1], project="p", id=sys.argv[2])
run.log({"a": 1.0})
if sys.argv[2] == "raises":
    raise SystemError("boom")
"""


@pytest.mark.parametrize(("run_id", "state"), [("ends", "finished"), ("raises", "failed")])
def test_a_script_that_never_calls_finish_still_leaves_its_final_state(
    tmp_path: Path, run_id: str, state: str
) -> None:
    subprocess.run(
        [sys.executable, "-c", SCRIPT, str(tmp_path), run_id],
        check=False,
        capture_output=True,
        timeout=60,
    )
    runs = rg.load(tmp_path)
    assert runs.runs["state"].to_list() == [state]
    assert runs.history.collect()["value"].to_list() == [1.0]


def test_a_run_being_created_is_never_reported_as_damaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[bool] = []
    write = store.write_json_atomically

    def write_and_note(path: Path, content: dict) -> None:
        write(path, content)
        seen.append((path.parent / store.HISTORY_FILE).exists())

    monkeypatch.setattr(store, "write_json_atomically", write_and_note)
    run = rg.init(dir=tmp_path, project="p", id="r")
    assert seen[0] is False  # run.json exists before the history: never a history alone
    # the moment between the two: a running run without a history loads with no warning
    (run.dir / store.HISTORY_FILE).rename(tmp_path / "aside")
    with warnings.catch_warnings():
        warnings.simplefilter("error", rg.LoadWarning)
        runs = rg.load(tmp_path)
    assert runs.runs["state"].to_list() == ["running"]
    (tmp_path / "aside").rename(run.dir / store.HISTORY_FILE)
    run.finish()


def test_an_empty_history_of_a_finished_run_is_reported(tmp_path: Path) -> None:
    with rg.init(dir=tmp_path, project="p", id="r") as run:
        run.log({"a": 1.0})
    (run.dir / store.HISTORY_FILE).write_bytes(b"")
    with pytest.warns(rg.LoadWarning, match=r"history\.rgh: is empty \(0 bytes"):
        runs = rg.load(tmp_path)
    assert runs.runs["id"].to_list() == ["r"]
    assert runs.history.collect().height == 0


def test_records_are_numbered_in_the_order_they_are_written(tmp_path: Path) -> None:
    with rg.init(dir=tmp_path, project="p", id="r") as run:
        for step in range(3):
            run.log({"a": float(step)})
            run._flush()
    decoded = store.decode_history((run.dir / store.HISTORY_FILE).read_bytes())
    assert [r.sequence for r in decoded.records] == [0, 1, 2]
    assert decoded.column("values").tolist() == [0.0, 1.0, 2.0]
