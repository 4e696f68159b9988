"""Optional dependencies: a missing one is named with the extra that installs it."""

from __future__ import annotations

import importlib
import types


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names `pip install rungroup[extra]`."""


def require(module: str, extra: str, purpose: str) -> types.ModuleType:
    """Import `module`, or raise MissingExtraError naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{purpose} needs the optional package {module!r}, which is not installed: "
            f"pip install 'rungroup[{extra}]'"
        ) from error
