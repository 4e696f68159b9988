"""Damaged MLflow stores: what mlflow's own client wrote, then damaged by hand.

Each case copies a store the real client wrote (a SQLite database and an `mlruns/` folder,
three runs of ten `loss` points each), damages it (rows changed with sqlite3, files edited),
loads it in a child process with a time limit (`damage_runner.load_isolated`) and checks the
warning (it names the file and the row or line) and exactly which runs and how many of their
points still load. The SQLite cases run twice: through ADBC's driver and through the
standard library's sqlite3 (ADBC hidden from the child).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from damage_runner import Outcome, load_isolated

RUNS = 3
POINTS = 10
BASE_MS = 1_700_000_000_000
HUGE = 2**62


def _log(client: object) -> None:
    from mlflow.entities import Metric, Param

    experiment = client.create_experiment("damage")  # type: ignore[attr-defined]
    for index in range(RUNS):
        run = client.create_run(experiment, run_name=f"run-{index}", tags={"group": "g"})  # type: ignore[attr-defined]
        client.log_batch(  # type: ignore[attr-defined]
            run.info.run_id,
            metrics=[
                Metric("loss", 1.0 / (step + 1), BASE_MS + 1000 * step, step)
                for step in range(POINTS)
            ],
            params=[Param("lr", str(0.1 * (index + 1))), Param("seed", str(index))],
        )
        client.set_terminated(run.info.run_id)  # type: ignore[attr-defined]


@pytest.fixture(scope="module")
def clean_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-damage-db") / "mlflow.db"
    _log(MlflowClient(tracking_uri=f"sqlite:///{path}"))
    return path


@pytest.fixture(scope="module")
def clean_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from mlflow.tracking import MlflowClient

    root = tmp_path_factory.mktemp("mlflow-damage-files") / "mlruns"
    # MLflow refuses a file store unless told it may
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
        _log(MlflowClient(tracking_uri=root.as_uri()))
    return root


@pytest.fixture(params=["adbc", "sqlite3"])
def reader(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> str:
    """The child reads with ADBC's driver, or without it (a package that fails to import
    shadows it, so the standard library reads the metrics)."""
    if request.param == "sqlite3":
        shadow = tmp_path_factory.mktemp("no-adbc")
        (shadow / "adbc_driver_sqlite").mkdir()
        (shadow / "adbc_driver_sqlite" / "__init__.py").write_text(
            "raise ImportError('hidden by the damage tests')\n"
        )
        monkeypatch.setenv("PYTHONPATH", str(shadow))
    return str(request.param)


# --- SQLite -----------------------------------------------------------------------------------


def _ids(db: Path) -> list[str]:
    with sqlite3.connect(db) as connection:
        return [r[0] for r in connection.execute("SELECT run_uuid FROM runs ORDER BY name")]


def _first_metric_rowid(connection: sqlite3.Connection, run_id: str) -> int:
    return int(
        connection.execute(
            "SELECT min(rowid) FROM metrics WHERE run_uuid = ?", (run_id,)
        ).fetchone()[0]
    )


def _loosen(connection: sqlite3.Connection, table: str) -> None:
    """The table again without its constraints (NOT NULL, keys), rowids kept, so that
    damage MLflow's schema would refuse can be written."""
    connection.execute(f"CREATE TABLE loose AS SELECT rowid AS rid, * FROM {table}")
    connection.execute(f"DROP TABLE {table}")
    columns = [r[1] for r in connection.execute("PRAGMA table_info(loose)") if r[1] != "rid"]
    connection.execute(f"CREATE TABLE {table} ({', '.join(columns)})")
    listed = ", ".join(columns)
    connection.execute(f"INSERT INTO {table} (rowid, {listed}) SELECT rid, {listed} FROM loose")
    connection.execute("DROP TABLE loose")


@dataclass(frozen=True)
class Case:
    """Damage done to a copy of the database; `expect` checks the outcome."""

    damage: Callable[[sqlite3.Connection, list[str]], object]
    expect: Callable[[Outcome, Path, list[str], dict[str, int]], None]


def _points(ids: list[str], **lost: int) -> dict[str, int]:
    """Points per run when run `a`, `b`, `c` (by name order) lost the given numbers."""
    names = dict(zip("abc", ids, strict=True))
    return {ids[i]: POINTS - lost.get(k, 0) for i, k in enumerate("abc") if names[k]}


def _metric_row(what: str) -> Case:
    """One metric row of run a set to `what` (SQL); that point alone is skipped."""

    def damage(connection: sqlite3.Connection, ids: list[str]) -> int:
        rowid = _first_metric_rowid(connection, ids[0])
        connection.execute(f"UPDATE metrics SET {what} WHERE rowid = ?", (rowid,))
        return rowid

    def expect(outcome: Outcome, db: Path, ids: list[str], rows: dict[str, int]) -> None:
        assert outcome.error is None, outcome.error
        assert outcome.warned_about(str(db), f"table metrics, row {rows['metrics']}:"), (
            outcome.load_warnings()
        )
        assert outcome.runs == _points(ids, a=1)

    return Case(damage, expect)


SQLITE_CASES: dict[str, tuple[str, Case, tuple[str, ...]]] = {}


def _metric_case(name: str, what: str, *fragments: str, loosen: bool = False) -> None:
    case = _metric_row(what)

    def damage(connection: sqlite3.Connection, ids: list[str]) -> object:
        if loosen:
            _loosen(connection, "metrics")
        return case.damage(connection, ids)

    SQLITE_CASES[name] = (name, Case(damage, case.expect), fragments)


_metric_case("text step", "step = 'abc'", "step 'abc' is not an integer")
_metric_case("fractional step", "step = 1.5", "step 1.5 is not an integer")
_metric_case("timestamp 2^62", f"timestamp = {HUGE}", f"timestamp {HUGE} is not a time")
_metric_case("negative timestamp -2^62", f"timestamp = -{HUGE}", "is not a time")
_metric_case("text timestamp", "timestamp = 'yesterday'", "timestamp 'yesterday' is not a time")
_metric_case("text value", "value = 'high', is_nan = 0", "value 'high' is not a number")
_metric_case("blob value", "value = X'00ff', is_nan = 0", "is not a number")
_metric_case("null step", "step = NULL", "step None is not an integer", loosen=True)
_metric_case("null value", "value = NULL", "value None is not a number", loosen=True)
_metric_case("null key", "key = NULL", "key is null", loosen=True)
_metric_case("non-UTF-8 key", "key = CAST(X'6c6fff' AS TEXT)", "text that is not UTF-8")


def _run_row_case(name: str, what: str, *fragments: str, loosen: bool = False) -> None:
    def damage(connection: sqlite3.Connection, ids: list[str]) -> int:
        if loosen:
            _loosen(connection, "runs")
        connection.execute(f"UPDATE runs SET {what} WHERE run_uuid = ?", (ids[0],))
        return int(
            connection.execute("SELECT rowid FROM runs WHERE run_uuid = ?", (ids[0],)).fetchone()[0]
        )

    def expect(outcome: Outcome, db: Path, ids: list[str], rows: dict[str, int]) -> None:
        assert outcome.error is None, outcome.error
        assert outcome.warned_about(str(db), f"table runs, row {rows['runs']}:"), (
            outcome.load_warnings()
        )
        assert outcome.runs == _points(ids)

    SQLITE_CASES[name] = (name, Case(damage, expect), fragments)


_run_row_case("start time 2^62", f"start_time = {HUGE}", f"start_time {HUGE} is not a time")
_run_row_case("text end time", "end_time = 'later'", "end_time 'later' is not a time")
_run_row_case("fractional start time", "start_time = 1.5", "start_time 1.5 is not a time")
_run_row_case("unknown status", "status = 'EXPLODED'", "unknown status 'EXPLODED'", loosen=True)


def _skipped_run_row(what: str, loosen: bool) -> Case:
    """Run a's row made unreadable: run a (and its points) left out, the others load."""

    def damage(connection: sqlite3.Connection, ids: list[str]) -> int:
        rowid = int(
            connection.execute("SELECT rowid FROM runs WHERE run_uuid = ?", (ids[0],)).fetchone()[0]
        )
        if loosen:
            _loosen(connection, "runs")
        connection.execute(f"UPDATE runs SET {what} WHERE rowid = ?", (rowid,))
        return rowid

    def expect(outcome: Outcome, db: Path, ids: list[str], rows: dict[str, int]) -> None:
        assert outcome.error is None, outcome.error
        assert outcome.warned_about(str(db), f"table runs, row {rows['runs']}"), (
            outcome.load_warnings()
        )
        assert outcome.runs == {ids[1]: POINTS, ids[2]: POINTS}

    return Case(damage, expect)


SQLITE_CASES["null run id"] = (
    "null run id",
    _skipped_run_row("run_uuid = NULL", True),
    ("a run without a run id",),
)
SQLITE_CASES["non-UTF-8 run name"] = (
    "non-UTF-8 run name",
    _skipped_run_row("name = CAST(X'ff' AS TEXT)", False),
    ("text that is not UTF-8",),
)


def _duplicated_run(connection: sqlite3.Connection, ids: list[str]) -> int:
    _loosen(connection, "runs")
    connection.execute("INSERT INTO runs SELECT * FROM runs WHERE run_uuid = ?", (ids[0],))
    return int(connection.execute("SELECT max(rowid) FROM runs").fetchone()[0])


def _expect_duplicate(outcome: Outcome, db: Path, ids: list[str], rows: dict[str, int]) -> None:
    assert outcome.error is None, outcome.error
    assert outcome.warned_about(str(db), f"table runs, row {rows['runs']}: run {ids[0]}")
    assert outcome.runs == _points(ids)


SQLITE_CASES["duplicated run row"] = (
    "duplicated run row",
    Case(_duplicated_run, _expect_duplicate),
    ("was already read from", "this copy skipped"),
)


def _param_row(what: str) -> Case:
    def damage(connection: sqlite3.Connection, ids: list[str]) -> int:
        connection.execute(f"UPDATE params SET {what} WHERE run_uuid = ? AND key = 'lr'", (ids[0],))
        return int(
            connection.execute(
                "SELECT rowid FROM params WHERE run_uuid = ? AND key = 'lr'", (ids[0],)
            ).fetchone()[0]
        )

    def expect(outcome: Outcome, db: Path, ids: list[str], rows: dict[str, int]) -> None:
        assert outcome.error is None, outcome.error
        assert outcome.warned_about(str(db), f"table params, row {rows['params']}")
        assert outcome.runs == _points(ids)
        assert "config.lr" in outcome.columns and "config.seed" in outcome.columns

    return Case(damage, expect)


SQLITE_CASES["non-UTF-8 param"] = (
    "non-UTF-8 param",
    _param_row("value = CAST(X'30ff' AS TEXT)"),
    ("text that is not UTF-8",),
)


def _tag_damage(connection: sqlite3.Connection, ids: list[str]) -> int:
    connection.execute(
        "UPDATE tags SET value = CAST(X'ff' AS TEXT) WHERE run_uuid = ? AND key = 'group'",
        (ids[1],),
    )
    return int(
        connection.execute(
            "SELECT rowid FROM tags WHERE run_uuid = ? AND key = 'group'", (ids[1],)
        ).fetchone()[0]
    )


def _expect_tag(outcome: Outcome, db: Path, ids: list[str], rows: dict[str, int]) -> None:
    assert outcome.error is None, outcome.error
    assert outcome.warned_about(str(db), f"table tags, row {rows['tags']}")
    assert outcome.runs == _points(ids)


SQLITE_CASES["non-UTF-8 tag"] = (
    "non-UTF-8 tag",
    Case(_tag_damage, _expect_tag),
    ("text that is not UTF-8",),
)


def _latest_damage(connection: sqlite3.Connection, ids: list[str]) -> int:
    connection.execute(
        "UPDATE latest_metrics SET value = 'lots', is_nan = 0 WHERE run_uuid = ?", (ids[2],)
    )
    return int(
        connection.execute(
            "SELECT rowid FROM latest_metrics WHERE run_uuid = ?", (ids[2],)
        ).fetchone()[0]
    )


def _expect_latest(outcome: Outcome, db: Path, ids: list[str], rows: dict[str, int]) -> None:
    assert outcome.error is None, outcome.error
    assert outcome.warned_about(str(db), f"table latest_metrics, row {rows['latest_metrics']}")
    assert outcome.runs == _points(ids)
    assert "summary.loss" in outcome.columns  # from the history instead


SQLITE_CASES["text latest metric"] = (
    "text latest metric",
    Case(_latest_damage, _expect_latest),
    ("value 'lots' is not a number",),
)


def _drop(table: str) -> Callable[[sqlite3.Connection, list[str]], None]:
    def damage(connection: sqlite3.Connection, ids: list[str]) -> None:
        connection.execute(f"DROP TABLE {table}")

    return damage


def _expect_no(
    table: str, points: int
) -> Callable[[Outcome, Path, list[str], dict[str, int]], None]:
    def expect(outcome: Outcome, db: Path, ids: list[str], rows: dict[str, int]) -> None:
        assert outcome.error is None, outcome.error
        assert outcome.warned_about(str(db), f"no table {table}"), outcome.load_warnings()
        assert outcome.runs == dict.fromkeys(ids, points)

    return expect


for _table, _points_left in (
    ("params", POINTS),
    ("tags", POINTS),
    ("latest_metrics", POINTS),
    ("metrics", 0),
):
    SQLITE_CASES[f"no {_table} table"] = (
        f"no {_table} table",
        Case(_drop(_table), _expect_no(_table, _points_left)),
        (),
    )


def _expect_error(*fragments: str) -> Callable[[Outcome, Path, list[str], dict[str, int]], None]:
    def expect(outcome: Outcome, db: Path, ids: list[str], rows: dict[str, int]) -> None:
        assert outcome.error is not None and outcome.error["type"] == "ValueError", outcome
        assert str(db) in outcome.error["message"]
        assert all(f in outcome.error["message"] for f in fragments), outcome.error

    return expect


SQLITE_CASES["no runs table"] = (
    "no runs table",
    Case(_drop("runs"), _expect_error()),  # no MLflow store then: `rg.load` names the file
    (),
)


def _all_points_bad(connection: sqlite3.Connection, ids: list[str]) -> int:
    connection.execute("UPDATE metrics SET step = 'x' || step")
    return int(connection.execute("SELECT min(rowid) FROM metrics").fetchone()[0])


def _expect_all_bad(outcome: Outcome, db: Path, ids: list[str], rows: dict[str, int]) -> None:
    assert outcome.error is None, outcome.error
    assert outcome.warned_about(
        str(db), f"table metrics, row {rows['metrics']}", f"{RUNS * POINTS} such row(s)"
    )
    assert outcome.runs == dict.fromkeys(ids, 0)


SQLITE_CASES["every step text"] = (
    "every step text",
    Case(_all_points_bad, _expect_all_bad),
    ("is not an integer",),
)


@pytest.mark.slow  # mlflow creates its SQLite schema (about 10 s, once a module)
@pytest.mark.parametrize("name", sorted(SQLITE_CASES))
def test_damaged_sqlite(name: str, clean_db: Path, tmp_path: Path, reader: str) -> None:
    _, case, fragments = SQLITE_CASES[name]
    db = tmp_path / "mlflow.db"
    shutil.copy(clean_db, db)
    ids = _ids(db)
    connection = sqlite3.connect(db)
    rowid = case.damage(connection, ids)
    connection.commit()
    connection.close()
    # The damaged row's rowid, under the name of each table a case may name.
    rows = dict.fromkeys(("metrics", "runs", "params", "tags", "latest_metrics"), rowid)
    outcome = load_isolated(db)
    case.expect(outcome, db, ids, rows)
    for fragment in fragments:
        assert outcome.warned_about(str(db), fragment) or (
            outcome.error is not None and fragment in outcome.error["message"]
        ), (fragment, outcome.load_warnings(), outcome.error)


@pytest.mark.parametrize(
    "name, write",
    [
        ("garbage after the header", lambda b: b[:100] + os.urandom(len(b) - 100)),
        ("truncated to its first page", lambda b: b[:4096]),
        ("only the header", lambda b: b[:16]),
    ],
)
@pytest.mark.slow
def test_corrupted_sqlite_file(
    name: str, write: Callable[[bytes], bytes], clean_db: Path, tmp_path: Path
) -> None:
    db = tmp_path / "mlflow.db"
    db.write_bytes(write(clean_db.read_bytes()))
    outcome = load_isolated(db)
    # Either refused as a whole, naming the file, or loaded with warnings naming it.
    if outcome.error is not None:
        assert str(db) in outcome.error["message"] or "mlflow.db" in outcome.error["message"]
    else:
        assert outcome.load_warnings() and all(str(db) in m for m in outcome.load_warnings()), (
            outcome.load_warnings()
        )


# --- file store -------------------------------------------------------------------------------


def _run_folders(root: Path) -> list[Path]:
    """The run folders, in run-name order (run-0, run-1, run-2)."""
    folders = [p.parent for p in root.glob("*/*/meta.yaml") if (p.parent / "metrics").is_dir()]
    return sorted(folders, key=lambda p: (p / "tags" / "mlflow.runName").read_text())


def _replace_line(path: Path, index: int, line: str) -> None:
    lines = path.read_bytes().splitlines(keepends=True)
    lines[index] = line.encode("latin-1") if isinstance(line, str) else line
    path.write_bytes(b"".join(lines))


FILE_CASES: dict[str, tuple[Callable[[list[Path]], Path], int, str, dict[str, int]]] = {}
"""name -> (damage returning the damaged file, lost points of run 0, fragment, line)"""


def _line_case(name: str, line_index: int, text: str, fragment: str) -> None:
    def damage(folders: list[Path]) -> Path:
        path = folders[0] / "metrics" / "loss"
        _replace_line(path, line_index, text)
        return path

    FILE_CASES[name] = (
        damage,
        1,
        f"line {line_index + 1} is not 'timestamp value step' ({fragment}",
        {},
    )


_line_case("text step", 2, f"{BASE_MS} 0.5 abc\n", "step 'abc' is not an integer")
_line_case("fractional step", 3, f"{BASE_MS} 0.5 1.5\n", "step '1.5' is not an integer")
_line_case("timestamp 2^62", 4, f"{HUGE} 0.5 4\n", f"timestamp '{HUGE}' is not a time")
_line_case("text value", 5, f"{BASE_MS} high 5\n", "value 'high' is not a number")
_line_case("truncated line: no step", 9, f"{BASE_MS} 0.5", "step None is not an integer")
_line_case("truncated line: timestamp only", 9, "17000", "value None is not a number")
_line_case(
    "fractional timestamp", 0, f"{BASE_MS}.5 0.5 0\n", f"timestamp '{BASE_MS}.5' is not a time"
)
_line_case(
    "non-UTF-8 value",
    1,
    b"1700000000000 0.\xff5 1\n".decode("latin-1"),
    "value '0.\ufffd5' is not a number",
)


def _copy_run(folders: list[Path]) -> Path:
    # "zz-copy" sorts after MLflow's numeric experiment ids: the original is read first.
    second = folders[0].parent.parent / "zz-copy"
    shutil.copytree(
        folders[0].parent,
        second,
        ignore=lambda d, names: [
            n
            for n in names
            if d == str(folders[0].parent) and n not in ("meta.yaml", folders[0].name)
        ],
    )
    (second / "meta.yaml").write_text(
        (second / "meta.yaml")
        .read_text()
        .replace(folders[0].parent.name, "zz-copy")
        .replace("name: damage", "name: copy")
    )
    return second / folders[0].name / "meta.yaml"


def _meta_field(field: str, value: str) -> Callable[[list[Path]], Path]:
    def damage(folders: list[Path]) -> Path:
        path = folders[0] / "meta.yaml"
        lines = [
            f"{field}: {value}" if line.startswith(f"{field}:") else line
            for line in path.read_text().splitlines()
        ]
        path.write_text("\n".join(lines) + "\n")
        return path

    return damage


def _non_utf8(kind: str, key: str) -> Callable[[list[Path]], Path]:
    def damage(folders: list[Path]) -> Path:
        path = folders[1] / kind / key
        path.write_bytes(b"0.\xff1")
        return path

    return damage


FILE_CASES["run folder copied into a second experiment"] = (
    _copy_run,
    0,
    "was already read from",
    {},
)
FILE_CASES["start time 2^62"] = (
    _meta_field("start_time", str(HUGE)),
    0,
    f"start_time {HUGE} is not a time",
    {},
)
FILE_CASES["text end time"] = (_meta_field("end_time", "later"), 0, "end_time 'later'", {})
FILE_CASES["unknown status"] = (_meta_field("status", "42"), 0, "unknown status 42", {})
FILE_CASES["non-UTF-8 param"] = (_non_utf8("params", "lr"), 0, "param not read", {})
FILE_CASES["non-UTF-8 tag"] = (_non_utf8("tags", "group"), 0, "tag not read", {})


@pytest.mark.parametrize("name", sorted(FILE_CASES))
def test_damaged_file_store(name: str, clean_files: Path, tmp_path: Path) -> None:
    damage, lost, fragment, _ = FILE_CASES[name]
    root = tmp_path / "mlruns"
    shutil.copytree(clean_files, root)
    folders = _run_folders(root)
    ids = [f.name for f in folders]
    damaged = damage(folders)
    outcome = load_isolated(root)
    assert outcome.error is None, outcome.error
    assert outcome.warned_about(str(damaged), fragment), outcome.load_warnings()
    assert outcome.runs == {ids[0]: POINTS - lost, ids[1]: POINTS, ids[2]: POINTS}


def test_many_bad_lines_are_one_warning(clean_files: Path, tmp_path: Path) -> None:
    root = tmp_path / "mlruns"
    shutil.copytree(clean_files, root)
    path = _run_folders(root)[2] / "metrics" / "loss"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:4], *(f"{BASE_MS} 0.5 {i}.5" for i in range(6))]) + "\n")
    outcome = load_isolated(root)
    assert outcome.warned_about(str(path), "line 5 ", "6 such line(s) skipped")
    assert len([m for m in outcome.load_warnings() if str(path) in m]) == 1
    assert sorted(outcome.runs.values()) == [4, POINTS, POINTS]


def test_old_files_without_steps_load_at_step_zero(clean_files: Path, tmp_path: Path) -> None:
    """MLflow before steps wrote 'timestamp value': not damage, every point at step 0."""
    root = tmp_path / "mlruns"
    shutil.copytree(clean_files, root)
    path = _run_folders(root)[0] / "metrics" / "loss"
    path.write_text("".join(f"{BASE_MS + i} {i}.5\n" for i in range(POINTS)))
    outcome = load_isolated(root)
    assert outcome.error is None and not outcome.load_warnings(), outcome
    assert sorted(outcome.runs.values()) == [POINTS] * RUNS
