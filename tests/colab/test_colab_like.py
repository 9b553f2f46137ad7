"""Every notebook runs as in Google Colab, as closely as this machine allows (``make test-colab``).

What it does: builds a wheel of qteach; creates a separate virtual environment holding only packages that Colab
preinstalls (torch, numpy, scipy, pandas, plotly, ipywidgets, scikit-learn, matplotlib, numba, tqdm, pyyaml and
the Jupyter kernel stack), without qteach; copies each notebook alone into an empty folder outside the
repository; marks the kernel as Colab (a ``google.colab`` module on its path); and runs the notebook top to bottom
with ``QTEACH_SOURCE`` pointing at the wheel, so that the notebook's own install cell installs qteach, exactly as
it would from the repository in Colab.

What it does not prove: Colab's exact package versions (this uses the versions pinned in requirements.txt), its
GPU runtime, its network (here the wheel is local, in Colab the install cell fetches the repository), and the
Colab front end (widgets, plotly's ``colab`` renderer in a browser).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[2]
WORK = ROOT / "_build" / "colab_like"
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("**/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
COLAB_PACKAGES = ["torch", "numpy", "scipy", "pandas", "plotly", "ipywidgets", "scikit-learn", "matplotlib", "numba",
                  "tqdm", "pyyaml", "ipykernel", "nbclient", "nbformat"]

RUNNER = '''
import sys, nbformat
from nbclient import NotebookClient
path = sys.argv[1]
nb = nbformat.read(path, as_version=4)
NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
nbformat.write(nb, path)
'''


def _pins() -> list[str]:
    """Colab's packages at the versions requirements.txt pins (unpinned ones as they come)."""
    pinned = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            pinned[match.group(1).lower()] = match.group(2)
    return [f"{name}=={pinned[name]}" if name in pinned else name for name in COLAB_PACKAGES]


@pytest.fixture(scope="session")
def colab_python() -> Path:
    venv = WORK / "venv"
    python = venv / "bin" / "python"
    stamp = venv / ".colab-packages"
    wanted = "\n".join(_pins())
    if not (stamp.is_file() and stamp.read_text() == wanted):
        shutil.rmtree(venv, ignore_errors=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *_pins()], check=True)
        stamp.write_text(wanted)
    # every run starts without qteach: the notebooks' install cell must bring it
    subprocess.run([str(python), "-m", "pip", "uninstall", "-q", "-y", "qteach"], check=True,
                   capture_output=True)
    return python


@pytest.fixture(scope="session")
def wheel() -> Path:
    dist = WORK / "dist"
    shutil.rmtree(dist, ignore_errors=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)], check=True)
    (found,) = dist.glob("qteach-*.whl")
    return found


@pytest.fixture(scope="session")
def colab_marker() -> Path:
    """A folder with an empty ``google.colab`` package, imported at start-up by a ``sitecustomize`` module (as
    Colab's kernel has it in ``sys.modules``): on this path, the kernel believes it runs in Colab."""
    marker = WORK / "colab_marker"
    (marker / "google" / "colab").mkdir(parents=True, exist_ok=True)
    (marker / "google" / "__init__.py").write_text("")
    (marker / "google" / "colab" / "__init__.py").write_text('"""Marks the kernel as Google Colab for tests."""\n')
    (marker / "sitecustomize.py").write_text("import google.colab  # noqa: F401  (as in Colab's kernels)\n")
    return marker


def test_the_colab_environment_has_no_qteach(colab_python):
    result = subprocess.run([str(colab_python), "-c", "import qteach"], capture_output=True)
    assert result.returncode != 0


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_notebook_runs_as_in_colab(notebook, colab_python, wheel, colab_marker):
    with tempfile.TemporaryDirectory(prefix="colab-") as folder:
        copy = Path(folder) / notebook.name
        shutil.copy(notebook, copy)
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        env.update(PYTHONPATH=str(colab_marker), QTEACH_SOURCE=str(wheel),
                   PATH=f"{colab_python.parent}{os.pathsep}{env.get('PATH', '')}")
        result = subprocess.run([str(colab_python), "-c", RUNNER, str(copy), folder], cwd=folder, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr[-3000:]
        nb = nbformat.read(copy, as_version=4)
        errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
                  if o.output_type == "error"]
        assert not errors
        renderer = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []) if c.cell_type == "code")
        assert str(ROOT) not in renderer, "the notebook printed a path of the repository"
