"""The wheel and the sdist as a user installs them: fresh venvs, no Node on PATH.

Building from the sdist must find the shipped bundle and skip npm; the wheel, installed with its
core dependencies only, imports, finds the widget's ESM file and answers `rungroup --version`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

import rungroup as rg

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _node_free_path() -> str:
    """PATH without any folder holding node or npm (a user's machine without Node)."""
    folders = os.environ.get("PATH", "").split(os.pathsep)
    kept = [f for f in folders if not any((Path(f) / n).exists() for n in ("node", "npm"))]
    return os.pathsep.join(kept)


def _venv(where: Path) -> Path:
    venv.EnvBuilder(with_pip=True, clear=True).create(where)
    return where / "bin" / "python"


def _run(*command: str | Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(c) for c in command], capture_output=True, text=True, env=env, timeout=600
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    if not (ROOT / "src/rungroup/static/widget.js").is_file():
        pytest.fail("build the front end first (npm --prefix js run build)")
    out = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "build", "--sdist", "--wheel", "--outdir", out, ROOT)
    return {
        "wheel": next(out.glob("rungroup-*.whl")),
        "sdist": next(out.glob("rungroup-*.tar.gz")),
    }


def test_the_sdist_installs_without_node(dists: dict[str, Path], tmp_path: Path) -> None:
    python = _venv(tmp_path / "venv")
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{_node_free_path()}"}
    assert shutil.which("npm", path=env["PATH"]) is None
    _run(python, "-m", "pip", "install", "--quiet", "--no-deps", dists["sdist"], env=env)
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    static = Path(site.strip()) / "rungroup" / "static"
    assert (static / "widget.js").stat().st_size > 10_000
    assert (static / "widget.css").is_file()


def test_the_wheel_imports_renders_its_esm_and_knows_its_version(
    dists: dict[str, Path], tmp_path: Path
) -> None:
    python = _venv(tmp_path / "venv")
    env = {**os.environ, "PATH": f"{python.parent}{os.pathsep}{_node_free_path()}"}
    _run(python, "-m", "pip", "install", "--quiet", dists["wheel"], env=env)
    installed = _run(python, "-m", "pip", "list", "--format=freeze", env=env)
    assert "vl-convert" not in installed.lower(), "vl-convert is the [save] extra"
    check = (
        "import pathlib, rungroup, rungroup.widget as w;"
        "print(rungroup.__file__);"
        "print(pathlib.Path(rungroup.__file__).parent / 'static' / 'widget.js');"
        "e = w.Explorer;"
        "print(len(str(e._esm)))"
    )
    module_file, esm, esm_length = _run(python, "-c", check, env=env).split()
    assert not module_file.startswith(str(ROOT)), "imported the worktree, not the wheel"
    assert Path(esm).is_file()
    assert int(esm_length) > 10_000  # the bundle's text, not a path to nowhere
    version = _run(python.parent / "rungroup", "--version", env=env)
    assert version.strip() == f"rungroup {rg.__version__}"
