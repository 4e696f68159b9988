"""Hazards every file source shares, damaged into trees written by the real clients: names
that are not UTF-8, FIFOs and devices where a file is expected, symlink loops, unreadable
folders, YAML alias bombs in MLflow's meta.yaml. Every case loads (or, for the followers,
polls once) in a child process with a time limit: a FIFO that is opened blocks, a device that
is read never ends, and either would fail the case as a hang.

Sources: CSV (pandas), TensorBoard (tensorboardX), W&B (wandb offline), MLflow's file store
(mlflow's client) and rungroup's own store (`rungroup.init`), three runs each.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from damage_runner import load_isolated

E9 = os.fsdecode(b"caf\xe9")  # a name that is not UTF-8 (Latin-1 "café")


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One tree per source, three runs `a`, `b`, `c` each."""
    base = tmp_path_factory.mktemp("files-clean")
    return {
        "csv": _csv(base / "csv"),
        "tensorboard": _tensorboard(base / "tensorboard"),
        "wandb": _wandb(base / "wandb-root"),
        "mlflow": _mlflow(base / "mlruns"),
        "store": _store(base / "store"),
    }


def _csv(root: Path) -> Path:
    import pandas as pd

    for run in ("a", "b", "c"):
        (root / run).mkdir(parents=True)
        frame = pd.DataFrame({"step": range(10), "loss": [1.0 / (s + 1) for s in range(10)]})
        frame.to_csv(root / run / "metrics.csv", index=False)
    return root


def _tensorboard(root: Path) -> Path:
    from tensorboardX import SummaryWriter

    for run in ("a", "b", "c"):
        writer = SummaryWriter(str(root / run))
        for step in range(10):
            writer.add_scalar("loss", 1.0 / (step + 1), step)
        writer.close()
    return root


def _wandb(root: Path) -> Path:
    root.mkdir()
    script = f"""
import wandb
for run_id in ["a", "b", "c"]:
    run = wandb.init(project="files", id=run_id, dir={str(root)!r})
    for step in range(10):
        run.log({{"loss": 1.0 / (step + 1)}}, step=step)
    run.finish()
"""
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, timeout=300)
    return root / "wandb"


def _mlflow(root: Path) -> Path:
    script = f"""
import os
os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
client = MlflowClient(tracking_uri={root.as_uri()!r})
experiment = client.create_experiment("files")
for name in ["a", "b", "c"]:
    run = client.create_run(experiment, run_name=name)
    metrics = [Metric("loss", 1.0 / (s + 1), 1_700_000_000_000 + s, s) for s in range(10)]
    client.log_batch(run.info.run_id, metrics=metrics, params=[Param("lr", "0.1")])
    client.set_terminated(run.info.run_id)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=300)
    return root


def _store(root: Path) -> Path:
    import rungroup as rg

    for name in ("a", "b", "c"):
        run = rg.init(project="files", name=name, id=name, dir=root, config={"lr": 0.1})
        for step in range(10):
            run.log({"loss": 1.0 / (step + 1)}, step=step)
        run.finish()
    return root


# --- where each source keeps run b ----------------------------------------------------------


def _mlflow_run(root: Path, name: str = "b") -> Path:
    for meta in root.glob("*/*/meta.yaml"):
        if f"run_name: {name}\n" in meta.read_text():
            return meta.parent
    raise AssertionError(f"no MLflow run {name}")


def _mlflow_ids(root: Path) -> dict[str, str]:
    """MLflow run name -> run id (ids are random)."""
    ids = {}
    for name in ("a", "b", "c"):
        ids[name] = _mlflow_run(root, name).name
    return ids


def _tb_file(root: Path, run: str = "b") -> Path:
    (path,) = (root / run).glob("events.out.tfevents.*")
    return path


def _wandb_folder(root: Path, run: str = "b") -> Path:
    (path,) = root.glob(f"offline-run-*-{run}")
    return path


def _fifo(path: Path) -> None:
    if path.exists():
        path.unlink()
    os.mkfifo(path)


def _symlink(path: Path, target: str | Path) -> None:
    if path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(target)


def _loop(folder: Path, name: str) -> None:
    """Two links that point at each other; `name` is one of them."""
    (folder / name).symlink_to(folder / f"{name}.other")
    (folder / f"{name}.other").symlink_to(folder / name)


def _alias_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _unreadable(path: Path) -> None:
    path.chmod(0)


@dataclass(frozen=True)
class Case:
    name: str
    source: str
    damage: Callable[[Path], Any]
    #: run -> points; for MLflow the run *names* (ids are random) are mapped in the test
    runs: dict[str, int]
    warns: tuple[str, ...] | None
    options: dict[str, Any] = field(default_factory=dict)
    unprivileged: bool = False
    follow: bool = False
    #: what `rg.load` is given, relative to the tree (default: the tree itself)
    load: str = ""


ALL = {"a": 10, "b": 10, "c": 10}
AC = {"a": 10, "c": 10}

CASES = [
    # names that are not UTF-8: kept apart, shown with \xNN
    Case(
        "csv: folder name not UTF-8",
        "csv",
        lambda r: (r / "b").rename(r / E9),
        {"a": 10, "c": 10, "caf\\xe9": 10},
        None,
    ),
    Case(
        "csv: file name not UTF-8",
        "csv",
        lambda r: (r / "b" / "metrics.csv").rename(r / "b" / f"{E9}.csv"),
        ALL,
        None,
    ),
    Case(
        "tensorboard: folder name not UTF-8",
        "tensorboard",
        lambda r: (r / "b").rename(r / E9),
        {"a": 10, "c": 10, "caf\\xe9": 10},
        None,
    ),
    Case(
        "tensorboard: subfolder name not UTF-8 in a template",
        "tensorboard",
        lambda r: (
            _tb_file(r).rename(_tb_file(r).parent / E9 / _tb_file(r).name)
            if (_tb_file(r).parent / E9).mkdir() is None
            else None
        ),
        ALL,
        None,
        load="{run}",
    ),
    Case(
        "wandb: folder name not UTF-8",
        "wandb",
        lambda r: _wandb_folder(r).rename(r / f"offline-run-{E9}"),
        ALL,
        None,
    ),
    Case(
        "mlflow: metric file name not UTF-8",
        "mlflow",
        lambda r: (_mlflow_run(r) / "metrics" / "loss").rename(_mlflow_run(r) / "metrics" / E9),
        ALL,
        None,
    ),
    Case(
        "store: project folder name not UTF-8",
        "store",
        lambda r: (r / "files").rename(r / E9),
        ALL,
        None,
    ),
    # FIFOs, devices and sockets where a file is expected: skipped, never opened for reading
    Case(
        "csv: FIFO as a data file",
        "csv",
        lambda r: _fifo(r / "b" / "metrics.csv"),
        AC,
        ("b/metrics.csv", "a FIFO"),
    ),
    Case(
        "csv: FIFO as the file given",
        "csv",
        lambda r: _fifo(r / "b" / "metrics.csv"),
        {},
        ("b/metrics.csv", "a FIFO"),
        load="b/metrics.csv",
    ),
    Case(
        "csv: FIFO matched by a template",
        "csv",
        lambda r: _fifo(r / "b" / "metrics.csv"),
        AC,
        ("b/metrics.csv", "not a regular file"),
        load="{run}/metrics.csv",
    ),
    Case(
        "csv: FIFO as hparams.yaml",
        "csv",
        lambda r: _fifo(r / "b" / "hparams.yaml"),
        ALL,
        ("b/hparams.yaml", "a FIFO"),
    ),
    Case(
        "csv: /dev/zero as a data file",
        "csv",
        lambda r: _symlink(r / "b" / "metrics.csv", "/dev/zero"),
        AC,
        ("b/metrics.csv", "a character device"),
    ),
    Case(
        "tensorboard: FIFO as an event file",
        "tensorboard",
        lambda r: _fifo(_tb_file(r)),
        AC,
        ("b/events.out.tfevents", "a FIFO"),
    ),
    Case(
        "tensorboard: /dev/zero as an event file",
        "tensorboard",
        lambda r: _symlink(_tb_file(r), "/dev/zero"),
        AC,
        ("b/events.out.tfevents", "a character device"),
    ),
    Case(
        "tensorboard: FIFO in a template run",
        "tensorboard",
        lambda r: _fifo(_tb_file(r)),
        AC,
        ("b/events.out.tfevents", "a FIFO"),
        load="{run}",
    ),
    Case(
        "wandb: FIFO as a run file",
        "wandb",
        lambda r: _fifo(_wandb_folder(r) / "run-b.wandb"),
        AC,
        ("run-b.wandb", "a FIFO"),
    ),
    Case(
        "wandb: /dev/urandom as a run file",
        "wandb",
        lambda r: _symlink(_wandb_folder(r) / "run-b.wandb", "/dev/urandom"),
        AC,
        ("run-b.wandb", "a character device"),
    ),
    Case(
        "mlflow: FIFO as a metric file",
        "mlflow",
        lambda r: _fifo(_mlflow_run(r) / "metrics" / "loss"),
        {"a": 10, "b": 0, "c": 10},
        ("metrics/loss", "a FIFO"),
    ),
    Case(
        "mlflow: FIFO as a param file",
        "mlflow",
        lambda r: _fifo(_mlflow_run(r) / "params" / "lr"),
        ALL,
        ("params/lr", "a FIFO"),
    ),
    Case(
        "mlflow: FIFO as a run's meta.yaml",
        "mlflow",
        lambda r: _fifo(_mlflow_run(r) / "meta.yaml"),
        AC,
        None,
    ),
    # symlink loops: one warning, no hang
    Case(
        "csv: link to its own parent",
        "csv",
        lambda r: (r / "b" / "back").symlink_to(r),
        ALL,
        ("b/back", "symlink loop"),
    ),
    Case(
        "csv: links pointing at each other",
        "csv",
        lambda r: _loop(r / "b", "x.csv"),
        ALL,
        ("b/x.csv", "symlink loop"),
    ),
    Case(
        "tensorboard: link to its own parent",
        "tensorboard",
        lambda r: (r / "b" / "back").symlink_to(r),
        ALL,
        ("b/back", "symlink loop"),
    ),
    Case(
        "tensorboard: event file links in a loop",
        "tensorboard",
        lambda r: _loop(r / "b", "events.out.tfevents.loop"),
        ALL,
        ("events.out.tfevents.loop", "symlink loop"),
    ),
    Case(
        "wandb: link to its own parent",
        "wandb",
        lambda r: (_wandb_folder(r) / "back").symlink_to(r),
        ALL,
        ("back", "symlink loop"),
    ),
    Case(
        "mlflow: metric links in a loop",
        "mlflow",
        lambda r: _loop(_mlflow_run(r) / "metrics", "acc"),
        ALL,
        ("metrics/acc", "symlink loop"),
    ),
    Case("store: project links in a loop", "store", lambda r: _loop(r, "other"), ALL, None),
    Case(
        "csv: a linked run folder and a latest link",
        "csv",
        lambda r: (
            (r.parent / "elsewhere").mkdir(),
            shutil.move(r / "c", r.parent / "elsewhere" / "c"),
            (r / "c").symlink_to(r.parent / "elsewhere" / "c"),
            (r / "latest").symlink_to(r / "a"),
        ),
        ALL,
        None,
    ),
    # folders that cannot be read: one warning, the other runs load
    Case(
        "csv: unreadable run folder",
        "csv",
        lambda r: _unreadable(r / "b"),
        AC,
        ("/b", "folder not read", "Permission denied"),
        unprivileged=True,
    ),
    Case(
        "tensorboard: unreadable run folder",
        "tensorboard",
        lambda r: _unreadable(r / "b"),
        AC,
        ("/b", "folder not read", "Permission denied"),
        unprivileged=True,
    ),
    Case(
        "wandb: unreadable run folder",
        "wandb",
        lambda r: _unreadable(_wandb_folder(r)),
        AC,
        ("offline-run-", "folder not read"),
        unprivileged=True,
    ),
    Case(
        "mlflow: unreadable metrics folder",
        "mlflow",
        lambda r: _unreadable(_mlflow_run(r) / "metrics"),
        {"a": 10, "b": 0, "c": 10},
        ("metrics", "folder not read"),
        unprivileged=True,
    ),
    Case(
        "store: unreadable run folder",
        "store",
        lambda r: _unreadable(r / "files" / "b"),
        AC,
        ("files/b", "folder not read", "Permission denied"),
        unprivileged=True,
    ),
    Case(
        "csv: unreadable data file",
        "csv",
        lambda r: _unreadable(r / "b" / "metrics.csv"),
        AC,
        ("b/metrics.csv", "not read", "Permission denied"),
        unprivileged=True,
    ),
    # MLflow's meta.yaml: bounded YAML
    Case(
        "mlflow: alias bomb in a run's meta.yaml",
        "mlflow",
        lambda r: (_mlflow_run(r) / "meta.yaml").write_text(
            (_mlflow_run(r) / "meta.yaml").read_text() + _alias_bomb()
        ),
        AC,
        ("meta.yaml", "alias bomb"),
    ),
    Case(
        "mlflow: meta.yaml refers to itself",
        "mlflow",
        lambda r: (_mlflow_run(r) / "meta.yaml").write_text(
            (_mlflow_run(r) / "meta.yaml").read_text() + "loop: &l [*l]\n"
        ),
        AC,
        ("meta.yaml", "cycle"),
    ),
    Case(
        "mlflow: lone surrogate in meta.yaml",
        "mlflow",
        lambda r: (_mlflow_run(r) / "meta.yaml").write_text(
            (_mlflow_run(r) / "meta.yaml")
            .read_text()
            .replace("run_name: b", 'run_name: "b\\ud800"')
        ),
        {"a": 10, "b\ufffd": 10, "c": 10},
        ("meta.yaml", "lone surrogate"),
    ),
    # the followers read the same files the same way
    Case(
        "follow tensorboard: FIFO and an infinite wall time",
        "tensorboard",
        lambda r: (_fifo(_tb_file(r, "c")), _tb_append_inf(r)),
        {"a": 10, "b": 11},
        ("events.out.tfevents", "a FIFO"),
        follow=True,
    ),
    Case(
        "follow wandb: FIFO as a run file",
        "wandb",
        lambda r: _fifo(_wandb_folder(r) / "run-b.wandb"),
        AC,
        ("run-b.wandb", "a FIFO"),
        follow=True,
    ),
    Case(
        "follow csv: link to its own parent",
        "csv",
        lambda r: (r / "b" / "back").symlink_to(r),
        ALL,
        ("b/back", "symlink loop"),
        follow=True,
    ),
    Case(
        "follow mlflow files: FIFO as a metric file",
        "mlflow",
        lambda r: _fifo(_mlflow_run(r) / "metrics" / "loss"),
        {"a": 10, "b": 0, "c": 10},
        ("metrics/loss", "a FIFO"),
        follow=True,
    ),
]


def _tb_append_inf(root: Path) -> None:
    import struct

    from tensorboardX.proto import event_pb2
    from tensorboardX.record_writer import masked_crc32c

    event = event_pb2.Event(step=10, wall_time=float("inf"))
    event.summary.value.add(tag="loss", simple_value=0.5)
    data = event.SerializeToString()
    header = struct.pack("<Q", len(data))
    with _tb_file(root).open("ab") as handle:
        handle.write(header + struct.pack("<I", masked_crc32c(header)))
        handle.write(data + struct.pack("<I", masked_crc32c(data)))


def _age(root: Path) -> None:
    old = time.time() - 86_400
    for path in root.rglob("*"):
        with contextlib.suppress(OSError):  # a link into /dev
            os.utime(path, (old, old), follow_symlinks=False)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_damaged_files(case: Case, clean: dict[str, Path], tmp_path: Path) -> None:
    root = tmp_path / case.source
    shutil.copytree(clean[case.source], root, symlinks=True)
    expected = dict(case.runs)
    if case.source == "mlflow":
        ids = _mlflow_ids(root)
        expected = {ids.get(name, name): points for name, points in case.runs.items()}
        if "b\ufffd" in expected:
            expected[ids["b"]] = expected.pop("b\ufffd")
    case.damage(root)
    _age(root)
    source = root / case.load if case.load else root
    try:
        outcome = load_isolated(
            source, unprivileged=case.unprivileged, follow=case.follow, **case.options
        )
    finally:
        for path in [root, *root.rglob("*")] if case.unprivileged else []:
            if not path.is_symlink():
                path.chmod(0o755)
    assert outcome.error is None, outcome.error
    assert outcome.runs == expected, outcome.load_warnings()
    if case.warns is None:
        assert outcome.load_warnings() == []
    else:
        assert outcome.warned_about(*case.warns), outcome.load_warnings()


@pytest.mark.parametrize("source", ["csv", "tensorboard", "wandb", "mlflow", "store"])
def test_clean_trees_load_without_warnings(source: str, clean: dict[str, Path]) -> None:
    outcome = load_isolated(clean[source])
    assert outcome.error is None
    assert sorted(outcome.runs.values()) == [10, 10, 10]
    assert outcome.load_warnings() == []
