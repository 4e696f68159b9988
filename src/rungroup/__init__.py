"""rungroup: group machine-learning runs into experiments, locally and offline, in Jupyter."""

from rungroup.chart import chart
from rungroup.engine import aggregate, recipe_of, summarize
from rungroup.engine.compare import compare, performance_profile
from rungroup.export import export, load_recipe
from rungroup.profile_chart import profile_chart
from rungroup.runs import LoadWarning, Runs
from rungroup.sources import load
from rungroup.sources.csv_tree import load_csv
from rungroup.sources.frames import from_frames
from rungroup.sources.mlflow_store import load_mlflow
from rungroup.sources.tensorboard_events import load_tensorboard
from rungroup.sources.wandb_offline import load_wandb
from rungroup.store import StoreError
from rungroup.tracking import Config, Run, Summary, generate_id, init
from rungroup.view import View
from rungroup.widget import Explorer

__version__ = "0.1.0"

__all__ = [
    "Config",
    "Explorer",
    "LoadWarning",
    "Run",
    "Runs",
    "StoreError",
    "Summary",
    "View",
    "__version__",
    "aggregate",
    "chart",
    "compare",
    "export",
    "from_frames",
    "generate_id",
    "init",
    "load",
    "load_csv",
    "load_mlflow",
    "load_recipe",
    "load_tensorboard",
    "load_wandb",
    "performance_profile",
    "profile_chart",
    "recipe_of",
    "summarize",
]
