"""`import rungroup` is light: names are imported when first used (PEP 562)."""

from __future__ import annotations

import subprocess
import sys

import pytest

import rungroup

WIDGET_SIDE = ("altair", "anywidget", "ipywidgets", "IPython", "vl_convert")


def imported_after(code: str) -> set[str]:
    probe = f"{code}\nimport sys\nprint('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


def test_logging_imports_no_widget_chart_or_loader(tmp_path: object) -> None:
    modules = imported_after(
        f"import rungroup\nwith rungroup.init(dir={str(tmp_path)!r}, project='p') as run:\n"
        "    run.log({'loss': 1.0})"
    )
    assert not {m for m in modules if m.split(".")[0] in WIDGET_SIDE}
    assert not {m for m in modules if m.startswith("rungroup.sources.")}
    assert not {"polars", "numpy"} & modules  # numpy: only the store's readers need it


def test_loading_imports_no_widget_side() -> None:
    modules = imported_after("import rungroup\nrungroup.load")
    assert not {m for m in modules if m.split(".")[0] in WIDGET_SIDE}


@pytest.mark.parametrize("name", rungroup.__all__)
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(rungroup, name) is not None
    assert name in dir(rungroup)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        rungroup.nope  # noqa: B018


@pytest.mark.parametrize("name", ["chart", "export", "profile_chart"])
def test_a_function_named_like_its_module_stays_the_function(name: str) -> None:
    code = (
        f"import rungroup, importlib\nimportlib.import_module('rungroup.{name}')\n"
        f"assert callable(rungroup.{name}), rungroup.{name}\n"
        f"from rungroup.{name} import {name} as f\nassert rungroup.{name} is f"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
