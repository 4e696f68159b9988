"""TensorBoard event files: `events.py` finds the runs and loads them (framed by `records.py`,
decoded by `decode.py`, `layout.py` and `values.py`), `follower.py` tails them while runs are
written."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from rungroup.sources.registry import (
    DATA_SUFFIXES,
    MLFLOW_SCHEMES,
    follower_options,
    is_template,
    local_path,
)

if TYPE_CHECKING:
    from rungroup.runs import Runs
    from rungroup.sources.followers import Follower


#: The reader's version, part of the cache's key: raise it when what `load` returns changes.
VERSION = 1


def detect(source: Any) -> bool:
    """A template not naming data files (``"logs/{algo}/seed_{seed}"``), or event files."""
    if not isinstance(source, (str, os.PathLike)):
        return False
    text = os.fspath(source)
    if is_template(text) and not text.startswith(MLFLOW_SCHEMES):
        return not text.lower().endswith(DATA_SUFFIXES)
    from rungroup.sources.tensorboard.events import is_tensorboard

    path = local_path(source)
    return path is not None and is_tensorboard(path)


def load(source: Any, **options: Any) -> Runs:
    from rungroup.sources.tensorboard.events import load_tensorboard

    return load_tensorboard(source, **options)


def follow(source: Any, **options: Any) -> Follower:
    from rungroup.sources.tensorboard.follower import TensorBoardFollower

    return TensorBoardFollower(source, **follower_options(options))
