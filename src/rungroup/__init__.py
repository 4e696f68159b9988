"""rungroup: group machine-learning runs into experiments, locally and offline, in Jupyter."""

from rungroup.runs import LoadWarning, Runs
from rungroup.sources import load
from rungroup.store import StoreError
from rungroup.tracking import Config, Run, Summary, generate_id, init

__version__ = "0.1.0"

__all__ = [
    "Config",
    "LoadWarning",
    "Run",
    "Runs",
    "StoreError",
    "Summary",
    "__version__",
    "generate_id",
    "init",
    "load",
]
