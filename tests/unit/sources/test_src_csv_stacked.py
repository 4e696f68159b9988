"""CSV trees read as one stacked table (csv/stacked.py) load exactly as file by file."""

from __future__ import annotations

import csv
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from rungroup.sources.csv import stacked as stacked_module
from rungroup.sources.csv import tree
from rungroup.sources.csv.stacked import read_stacked
from rungroup.sources.csv.tree import load_csv


def _load(source: Path | str, monkeypatch: pytest.MonkeyPatch | None, **options: Any) -> Any:
    """(runs, history, warning texts) of a load; file by file when `monkeypatch` is given."""
    with pytest.MonkeyPatch.context() as patch:
        if monkeypatch is not None:
            patch.setattr(tree, "read_stacked", lambda paths: None)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            runs = load_csv(source, progress_bar=False, **options)
    return runs.runs, runs.history.collect(), [str(w.message) for w in caught]


def _assert_same(source: Path | str, **options: Any) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The stacked read equals the file-by-file read: rows, order, values to the bit, dtypes,
    runs and warnings."""
    fast_runs, fast_history, fast_warnings = _load(source, None, **options)
    slow_runs, slow_history, slow_warnings = _load(source, pytest.MonkeyPatch(), **options)
    assert_frame_equal(fast_runs, slow_runs, check_exact=True)
    assert_frame_equal(fast_history, slow_history, check_exact=True)
    # Bit for bit: NaN payloads and the sign of zero too.
    assert fast_history["value"].to_numpy().tobytes() == slow_history["value"].to_numpy().tobytes()
    assert fast_warnings == slow_warnings
    return fast_runs, fast_history


def _write(path: Path, rows: list[list[Any]], *, lineterminator: str = "\r\n") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        csv.writer(handle, lineterminator=lineterminator).writerows(rows)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Records whether each `read_stacked` call returned a table."""
    used: list[bool] = []

    def spy(paths: list[Path]) -> Any:
        found = read_stacked(paths)
        used.append(found is not None)
        return found

    monkeypatch.setattr(tree, "read_stacked", spy)
    return used


def _tree(root: Path) -> Path:
    """Six runs as `csv.writer` writes them (CRLF), with NaN, infinities, integers, numbers
    in exponent form, empty cells, a time and a timestamp column, and an hparams.yaml."""
    for run in range(6):
        folder = root / f"lr-{run % 2}" / f"seed_{run}"
        rows: list[list[Any]] = [["step", "loss", "acc", "time", "timestamp"]]
        for step in range(40):
            loss: Any = 1.0 / (1.0 + step * 0.37 * (run + 1))
            if step == 3:
                loss = math.nan
            elif step == 5 and run == 1:
                loss = math.inf
            elif step == 6 and run == 1:
                loss = -math.inf
            elif step == 7:
                loss = "" if run == 2 else 12  # an empty cell; an integer
            elif step == 8:
                loss = "1.5e-300"
            rows.append([step * 10, loss, step / 7, step * 0.5, 1.7e9 + run * 100 + step])
        _write(folder / "progress.csv", rows)
        (folder / "hparams.yaml").write_text(f"lr: {run % 2}\nwidth: {64 * (run + 1)}\n")
    return root / "{group}" / "seed_{seed}" / "progress.csv"


def test_stacked_tree_equals_file_by_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _tree(tmp_path)
    used = _spy(monkeypatch)
    runs, history = _assert_same(source)
    assert used[0]  # the stacked read was taken (not silently the general one)
    assert runs.height == 6
    assert runs.sort("config.seed")["config.width"].to_list() == [64, 128, 192, 256, 320, 384]
    one = history.filter(pl.col("run_id") == "lr-1/seed_1", pl.col("metric") == "loss")
    values = one.sort("step")["value"].to_list()
    assert math.isnan(values[3]) and values[5] == math.inf and values[6] == -math.inf
    assert values[7] == 12.0 and values[8] == 1.5e-300
    assert values[10] == 1.0 / (1.0 + 10 * 0.37 * 2)  # the float written, to the bit
    empty = history.filter(pl.col("run_id") == "lr-0/seed_2", pl.col("metric") == "loss")
    assert 70 not in empty["step"].to_list()  # the empty cell is no point
    assert runs.sort("id")["runtime"].to_list() == [19.5] * 6


def test_lightning_sparse_rows(lightning_csv: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    used = _spy(monkeypatch)
    _assert_same(lightning_csv / "{group}" / "seed_{seed}" / "metrics.csv")
    _assert_same(lightning_csv, metrics=["loss", "acc"], step="step")
    assert all(used)


def test_odd_but_plain_files_stay_stacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A last line without its line break, blank lines, LF endings, a header without rows,
    a missing step option, and other file types between: the CSV files read stacked, the
    rest file by file, the history in the same order as reading every file alone."""
    _write(tmp_path / "a" / "log.csv", [["step", "x"], [0, 1.5], [1, 2.5]])
    (tmp_path / "b" / "log.csv").parent.mkdir()
    (tmp_path / "b" / "log.csv").write_bytes(b"step,x\r\n0,3\r\n\r\n2,4")  # no last CRLF
    (tmp_path / "c" / "log.csv").parent.mkdir()
    (tmp_path / "c" / "log.csv").write_bytes(b"step,x\r\n")  # a header, no rows
    (tmp_path / "d" / "log.csv").parent.mkdir()
    (tmp_path / "d" / "log.csv").write_bytes(b"step,x\r\n5,6\r\n\r\n")
    (tmp_path / "bb").mkdir()  # between stacked files, with their columns: order kept
    (tmp_path / "bb" / "log.tsv").write_bytes(b"step\tx\n0\t9\n")
    (tmp_path / "e" / "log.jsonl").parent.mkdir()
    (tmp_path / "e" / "log.jsonl").write_text('{"step": 1, "x": 7}\n')
    used = _spy(monkeypatch)
    runs, history = _assert_same(tmp_path)
    _assert_same(tmp_path, step="iteration")  # warned about for every file, in order
    assert used == [True, True]
    assert sorted(runs["id"].to_list()) == ["a", "b", "bb", "c", "d", "e"]
    b = history.filter(pl.col("run_id") == "b").sort("step")
    assert b["step"].to_list() == [0, 2] and b["value"].to_list() == [3.0, 4.0]


def test_duplicate_and_empty_header_names(tmp_path: Path) -> None:
    for run in range(3):
        rows = [["step", "x", "x", ""], [0, 1, 2, 5], [1, 3, 4, 6]]
        _write(tmp_path / f"r{run}" / "log.csv", rows)
    _, history = _assert_same(tmp_path)
    assert sorted(history["metric"].unique().to_list()) == ["", "x", "x_duplicated_0"]


def test_bad_steps_and_times_warn_per_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Files whose steps or timestamps need a warning are checked one by one (the warning
    names their line); the other files of the table are not."""
    for run in range(4):
        rows: list[list[Any]] = [["step", "loss", "timestamp"]]
        for step in range(5):
            stamp: Any = 1.7e9 + step
            step_value: Any = step
            if run == 1 and step == 2:
                step_value = "nan"
            if run == 2 and step == 3:
                stamp = 1.7e12 + step  # milliseconds
            rows.append([step_value, step * 0.25, stamp])
        _write(tmp_path / f"r{run}" / "log.csv", rows)
    used = _spy(monkeypatch)
    _, history = _assert_same(tmp_path)
    assert used == [True]
    _, _, texts = _load(tmp_path, None)
    assert any("r1" in t and "line 4" in t and "not a step number" in t for t in texts)
    assert any("r2" in t and "line 5" in t and "milliseconds" in t for t in texts)
    assert history.filter(pl.col("run_id") == "r1").height == 4


@pytest.mark.parametrize("header", [b'"step","x"\n', b"step,x\rstep\n", b"step,x\r\r\n"])
def test_unprovable_headers(tmp_path: Path, header: bytes) -> None:
    paths = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "log.csv").write_bytes(header + b"0,1\n")
        paths.append(tmp_path / name / "log.csv")
    assert read_stacked(paths) is None
    _assert_same(tmp_path)


@pytest.mark.parametrize(
    ("second", "why"),
    [
        (b'step,x\n0,"1"\n', "a quote may hide a line break"),
        (b"step,x\n0,1\r2\n", "a lone carriage return"),
        (b"step,y\n0,1\n", "another header"),
        (b"step,x\n0,oops\n1,2\n", "text in a column"),
        (b"step,x\n0,true\n1,false\n", "booleans"),
        (b"step,x\n0,-0\n1,2\n", "a negative zero"),
        (b"step,x\n0,1,2\n", "a ragged row"),
        (b"", "an empty file"),
        (b"step,x", "a header without its line break"),
        (b"step,x\n0,\xff\n", "bytes that are not UTF-8"),
        (b"step , x\n0, 1\n", "another header with spaces"),
    ],
)
def test_unprovable_trees_go_the_general_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, second: bytes, why: str
) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "log.csv").write_bytes(b"step,x\n0,1.5\n1,2.5\n")
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "log.csv").write_bytes(second)
    paths = [tmp_path / "a" / "log.csv", tmp_path / "b" / "log.csv"]
    assert read_stacked(paths) is None, why
    _assert_same(tmp_path)


def test_a_file_growing_while_read_goes_the_general_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("a", "b"):
        _write(tmp_path / name / "log.csv", [["step", "x"], [0, 1], [1, 2]])
    real_read = stacked_module._read_file

    def grown(path: str, size: int, head: bytearray, body: memoryview) -> int | None:
        if Path(path).parent.name == "b":
            with Path(path).open("a") as handle:  # a writer appends after the sizes were taken
                handle.write("2,3\n")
        return real_read(path, size, head, body)

    monkeypatch.setattr(stacked_module, "_read_file", grown)
    assert read_stacked([tmp_path / "a" / "log.csv", tmp_path / "b" / "log.csv"]) is None


def test_a_fifo_is_not_read(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "log.csv", [["step", "x"], [0, 1]])
    (tmp_path / "b").mkdir()
    os.mkfifo(tmp_path / "b" / "log.csv")
    assert read_stacked([tmp_path / "a" / "log.csv", tmp_path / "b" / "log.csv"]) is None
    assert read_stacked([tmp_path / "b" / "log.csv", tmp_path / "a" / "log.csv"]) is None


_CELLS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(min_value=-(2**62), max_value=2**62).map(str),
    st.sampled_from(["", "nan", "NaN", "inf", "-inf", "1e400", "0.1", "-1.5e-7", "007", "0"]),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    files=st.lists(
        st.lists(st.tuples(st.integers(-3, 50), _CELLS, _CELLS), min_size=0, max_size=12),
        min_size=2,
        max_size=5,
    ),
    crlf=st.booleans(),
    last_break=st.booleans(),
)
def test_random_trees_equal(
    files: list[list[tuple[int, str, str]]], crlf: bool, last_break: bool
) -> None:
    """Whatever cells a tree holds, stacked or not, the load equals the file-by-file one."""
    end = "\r\n" if crlf else "\n"
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        for index, rows in enumerate(files):
            lines = ["step,a,b", *(f"{s},{a},{b}" for s, a, b in rows)]
            text = end.join(lines) + (end if last_break or not rows else "")
            (root / f"r{index}").mkdir()
            (root / f"r{index}" / "log.csv").write_text(text, newline="")
        _assert_same(root)


@pytest.mark.parametrize(
    "header",
    [
        ["x", "y"],  # no step column: points numbered per run
        ["step", "x", "timestamp"],  # times from the timestamps
        ["global_step", "wall_time", "x"],  # other step and time names
        ["step"],  # no metric
    ],
)
def test_column_layouts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, header: list[str]) -> None:
    for run in range(3):
        rows: list[list[Any]] = [header]
        rows += [[i * (run + 1) + c * 0.5 for c in range(len(header))] for i in range(6)]
        if "timestamp" in header:
            for row in rows[1:]:
                row[header.index("timestamp")] = 1.7e9 + float(row[0]) + run
        _write(tmp_path / f"r{run}" / "log.csv", rows)
    used = _spy(monkeypatch)
    _assert_same(tmp_path)
    _assert_same(tmp_path, metrics=["x"])
    assert all(used)


def test_more_files_than_descriptors(tmp_path: Path) -> None:
    """One file is open at a time: a tree larger than the process's open-file limit is
    still read stacked."""
    import resource

    paths = []
    for run in range(300):
        path = tmp_path / f"r{run:03d}" / "log.csv"
        _write(path, [["step", "x"], [0, run], [1, run + 0.5]])
        paths.append(path)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(128, hard), hard))
    try:
        found = read_stacked(paths)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert found is not None
    assert found.rows(299)["x"].to_list() == [299.0, 299.5]


@pytest.mark.parametrize("batch", [1, 5_000, 9_000])
def test_batches_of_text(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, batch: int) -> None:
    """A tree parsed a few files at a time (one file a batch at the least) is the same."""
    source = _tree(tmp_path)
    monkeypatch.setattr(stacked_module, "BATCH_BYTES", batch)
    used = _spy(monkeypatch)
    _assert_same(source)
    assert used == [True]
