"""Following TensorBoard logs: event files tailed from the last complete record, new files
and runs picked up, and every poll equal to a fresh `load_tensorboard`."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from follow_helpers import assert_same, sorted_history

from rungroup.sources.tensorboard.events import load_tensorboard
from rungroup.sources.tensorboard.follower import TensorBoardFollower, complete_length


def sizes(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("events.out.tfevents.*"))


def test_polls_read_only_appended_bytes_and_equal_a_fresh_load(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter
    from tensorboardX.summary import hparams

    template = str(tmp_path / "{group}" / "seed_{seed}")
    follower = TensorBoardFollower(tmp_path)
    templated = TensorBoardFollower(template)
    runs, changed = follower.poll()
    assert changed and len(runs) == 0

    first = SummaryWriter(str(tmp_path / "adam" / "seed_0"))
    for summary in hparams({"lr": 0.1}, {"loss": 0.0}):
        first.file_writer.add_summary(summary)
    for step in range(20):
        first.add_scalar("loss", 1.0 / (step + 1), step)
        first.add_scalar("train/acc", step / 20, step)
    first.flush()
    runs, changed = follower.poll()
    assert changed and follower.bytes_read == sizes(tmp_path)
    assert runs.runs["config.lr"].to_list() == [0.1]
    assert_same(runs, load_tensorboard(tmp_path))
    assert_same(templated.poll()[0], load_tensorboard(template))

    again, changed = follower.poll()
    assert not changed and again is runs and follower.bytes_read == 0

    before = sizes(tmp_path)
    for step in range(20, 30):
        first.add_scalar("loss", 1.0 / (step + 1), step)
    first.add_scalar("loss", float("nan"), 30)
    first.flush()
    second = SummaryWriter(str(tmp_path / "sgd" / "seed_1"))
    second.add_scalar("loss", 2.0, 0)
    second.flush()
    runs, changed = follower.poll()
    assert changed and follower.bytes_read == sizes(tmp_path) - before  # not the first 40 again
    assert len(runs) == 2
    assert_same(runs, load_tensorboard(tmp_path))
    assert_same(templated.poll()[0], load_tensorboard(template))

    first.close()
    second.close()
    runs, _ = follower.poll()
    assert_same(runs, load_tensorboard(tmp_path))
    assert_same(templated.poll()[0], load_tensorboard(template))


def test_a_record_being_written_is_left_for_the_next_poll(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    source = tmp_path / "source"
    writer = SummaryWriter(str(source))
    for step in range(5):
        writer.add_scalar("loss", float(step), step)
    writer.close()
    (written,) = source.glob("events.out.tfevents.*")
    data = written.read_bytes()
    follow = tmp_path / "logs" / "run"
    follow.mkdir(parents=True)
    target = follow / written.name
    cut = complete_length(data[: len(data) - 7])  # the last record's start
    target.write_bytes(data[: len(data) - 7])  # half of the last record, as seen mid-write
    follower = TensorBoardFollower(tmp_path / "logs")
    runs, _ = follower.poll()  # no warning: the writer is still writing that record
    assert sorted_history(runs)["step"].to_list() == [0, 1, 2, 3]
    with target.open("ab") as handle:
        handle.write(data[len(data) - 7 :])
    runs, changed = follower.poll()
    assert changed and follower.bytes_read == len(data) - cut
    assert sorted_history(runs)["step"].to_list() == [0, 1, 2, 3, 4]
    assert_same(runs, load_tensorboard(tmp_path / "logs"))


def test_a_new_event_file_in_a_run_and_a_rewritten_file(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    folder = tmp_path / "run"
    writer = SummaryWriter(str(folder), filename_suffix=".a")
    writer.add_scalar("loss", 1.0, 0)
    writer.close()
    follower = TensorBoardFollower(tmp_path)
    follower.poll()
    writer = SummaryWriter(str(folder), filename_suffix=".b")  # a restarted job
    writer.add_scalar("loss", 0.5, 1)
    writer.close()
    runs, changed = follower.poll()
    assert changed and sorted_history(runs)["value"].to_list() == [1.0, 0.5]
    assert_same(runs, load_tensorboard(tmp_path))
    (older,) = folder.glob("*.a")
    older.unlink()
    runs, changed = follower.poll()
    assert changed and sorted_history(runs)["value"].to_list() == [0.5]
    assert_same(runs, load_tensorboard(tmp_path))


def test_many_files_appended_at_once_are_decoded_together(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    template = str(tmp_path / "{algo}" / "seed_{seed}")
    writers = [
        SummaryWriter(str(tmp_path / algo / f"seed_{seed}" / split))
        for algo in ("a", "b")
        for seed in range(3)
        for split in ("train", "validation")
    ]
    follower = TensorBoardFollower(template)
    for step in range(3):
        for writer in writers:
            writer.add_scalar("loss", 1.0 / (step + 1), step)
            writer.flush()
        runs, changed = follower.poll()
        assert changed
        assert_same(runs, load_tensorboard(template))
    for writer in writers:
        writer.close()
    runs, _ = follower.poll()
    assert_same(runs, load_tensorboard(template))
    assert runs.metrics == ["train/loss", "validation/loss"]
    assert runs.runs["summary.train/loss"].to_list() == pytest.approx([1 / 3] * 6)
    assert runs.history.select(pl.len()).collect().item() == 36
