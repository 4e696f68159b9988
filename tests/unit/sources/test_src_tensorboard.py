"""TensorBoard event files: scalars, tensor scalars, hparams, templates, damaged files."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from rungroup.runs import LoadWarning
from rungroup.sources.tensorboard.events import is_tensorboard, load_tensorboard


def _snapshot(folder: Path) -> dict[str, tuple[int, float]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime) for p in folder.rglob("*")}


def test_template_fields_become_numbers(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    for algo in ("ppo", "dqn"):
        for seed in (1, 2):
            with SummaryWriter(str(tmp_path / algo / "CartPole-v1" / f"seed_{seed}")) as w:
                w.add_scalar("reward", seed * 10.0, 0)
    before = _snapshot(tmp_path)
    runs = load_tensorboard(tmp_path / "{algo}" / "{env}" / "seed_{seed}", group="{algo}-{env}")
    table = runs.runs.sort("id")
    assert table["config.seed"].dtype == pl.Int64
    assert table["config.seed"].to_list() == [1, 2, 1, 2]
    assert table["config.env"].to_list() == ["CartPole-v1"] * 4
    assert table["group"].to_list() == ["dqn-CartPole-v1"] * 2 + ["ppo-CartPole-v1"] * 2
    assert table["id"].to_list()[0] == "dqn/CartPole-v1/seed_1"
    assert _snapshot(tmp_path) == before  # nothing written into the user's folders


def test_tensor_encoded_scalars_from_tensorboard_pb(tmp_path: Path) -> None:
    """TF2's tf.summary.scalar layout, written with tensorboard's own pb API and writer."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.scalar import metadata
    from tensorboard.plugins.scalar import summary as scalar_summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    from tensorboard.util import tensor_util

    writer = EventFileWriter(str(tmp_path / "tf2"))
    start = time.time()
    for step in range(5):
        summary = scalar_summary.scalar_pb("loss", np.float32(1.0 / (step + 1)))
        writer.add_event(event_pb2.Event(wall_time=start + step, step=step, summary=summary))
        doubles = summary_pb2.Summary(
            value=[
                summary_pb2.Summary.Value(
                    tag="lr",
                    tensor=tensor_util.make_tensor_proto(np.float64(0.1 * step)),
                    metadata=metadata.create_summary_metadata("", ""),
                )
            ]
        )
        writer.add_event(event_pb2.Event(wall_time=start + step, step=step, summary=doubles))
    writer.close()
    runs = load_tensorboard(tmp_path)
    history = runs.history.collect().sort("metric", "step")
    loss = history.filter(pl.col("metric") == "loss")
    np.testing.assert_allclose(loss["value"].to_numpy(), 1.0 / np.arange(1, 6), rtol=1e-7)
    lr = history.filter(pl.col("metric") == "lr")
    assert lr["value"].to_list() == [0.1 * s for s in range(5)]  # doubles stay exact
    times = lr["time"].to_numpy()
    assert times - times[0] == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0], abs=1e-6)


def test_torch_style_add_hparams_subfolder_joins_its_run(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    with SummaryWriter(str(tmp_path / "run_a")) as w:
        w.add_scalar("loss", 0.5, 1)
        w.add_hparams({"lr": 0.01, "batch": 32, "opt": "adam"}, {"hparam/loss": 0.5})
    runs = load_tensorboard(tmp_path)
    assert runs.ids == ["run_a"]
    row = runs.runs.row(0, named=True)
    assert (row["config.lr"], row["config.batch"], row["config.opt"]) == (0.01, 32, "adam")
    assert is_tensorboard(tmp_path)


def test_keras_style_subfolders_prefix_metrics(tmp_path: Path) -> None:
    from tensorboardX import SummaryWriter

    for part in ("train", "validation"):
        with SummaryWriter(str(tmp_path / "exp" / "run1" / part)) as w:
            w.add_scalar("epoch_loss", 1.0, 0)
    runs = load_tensorboard(tmp_path / "exp" / "{name}")
    assert runs.ids == ["run1"]
    assert runs.metrics == ["train/epoch_loss", "validation/epoch_loss"]


def _two_runs(root: Path) -> None:
    from tensorboardX import SummaryWriter

    for name in ("good", "bad"):
        with SummaryWriter(str(root / name)) as w:
            for step in range(50):
                w.add_scalar("loss", float(step), step)


def test_corrupt_record_is_a_warning_naming_file_and_record(tmp_path: Path) -> None:
    _two_runs(tmp_path)
    bad = next((tmp_path / "bad").glob("events.out.tfevents.*"))
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    with pytest.warns(LoadWarning, match=r"events\.out\.tfevents.*record \d+"):
        runs = load_tensorboard(tmp_path)
    counts = dict(runs.history.collect().group_by("run_id").len().iter_rows())
    assert counts["good"] == 50
    assert 0 < counts["bad"] < 50  # a record skipped, or the file read up to the damage


def test_truncated_file_keeps_what_was_written(tmp_path: Path) -> None:
    _two_runs(tmp_path)
    bad = next((tmp_path / "bad").glob("events.out.tfevents.*"))
    bad.write_bytes(bad.read_bytes()[:-7])
    with pytest.warns(LoadWarning, match="truncated"):
        runs = load_tensorboard(tmp_path)
    counts = dict(runs.history.collect().group_by("run_id").len().iter_rows())
    assert counts == {"good": 50, "bad": 49}


def test_garbage_file_is_a_warning(tmp_path: Path) -> None:
    _two_runs(tmp_path)
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "events.out.tfevents.123.host").write_bytes(b"\x05" * 100)
    with pytest.warns(LoadWarning, match="junk"):
        runs = load_tensorboard(tmp_path)
    assert sorted(runs.ids) == ["bad", "good", "junk"]


def test_crc_check_can_be_skipped(tmp_path: Path) -> None:
    _two_runs(tmp_path)
    a = load_tensorboard(tmp_path, check_crc=False).history.collect()
    b = load_tensorboard(tmp_path).history.collect()
    assert a.equals(b)


def test_single_event_file(tmp_path: Path) -> None:
    _two_runs(tmp_path)
    shutil.rmtree(tmp_path / "bad")
    path = next((tmp_path / "good").glob("events.out.tfevents.*"))
    assert len(load_tensorboard(path)) == 1
