"""W&B offline run folders and `.wandb` files: `offline.py` decodes them, `follower.py` tails
the `.wandb` files while runs are written."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rungroup.sources.registry import follower_options, local_path

if TYPE_CHECKING:
    from rungroup.runs import Runs
    from rungroup.sources.followers import Follower


#: The reader's version, part of the cache's key: raise it when what `load` returns changes.
VERSION = 1


def detect(source: Any) -> bool:
    from rungroup.sources.wandb.offline import is_wandb

    path = local_path(source)
    return path is not None and is_wandb(path)


def load(source: Any, **options: Any) -> Runs:
    from rungroup.sources.wandb.offline import load_wandb

    return load_wandb(source, **options)


def follow(source: Any, **options: Any) -> Follower:
    from rungroup.sources.wandb.follower import WandbFollower

    return WandbFollower(source, **follower_options(options))
