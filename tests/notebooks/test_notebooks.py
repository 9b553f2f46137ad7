"""Every notebook of the book, executed twice and checked (``make test-notebooks``).

**native** — the notebook as stored (solutions included), in the book's own environment, on this CPU's own
PyTorch kernels. Every cell must run without an error (the asserts in machine-dependent cells are the checks of
their claims), every exact cell must print what is stored, and every exercise's self-check must pass.

**colab** — the notebook's *Colab copy* (``colab/<path>``, written by ``tools/colab_copies.py``: solutions replaced
by ``NotImplementedError`` stubs), the notebook the book's Colab button opens, run as in Google Colab and on another
CPU:

- copied alone into an empty folder outside the repository, in a separate environment holding only packages that
  Colab preinstalls (without qteach), the kernel marked as Colab (a ``google.colab`` module imported at start-up),
  so that the notebook's own install cell installs qteach from a wheel (``QTEACH_SOURCE``) and plotly uses its
  ``colab`` renderer. Each test worker keeps its environment for the session: the first notebook it runs
  installs qteach, the later ones find it installed and skip the install, as a notebook run again in the same
  Colab runtime does (every install cell is the same generated cell);
- with PyTorch and oneDNN forced onto other CPU kernels (:data:`FORCED_KERNELS`: ATen's generic kernels, oneDNN
  limited to SSE4.1), which change the last bits of float reductions as another CPU model would.

Exact cells must again print what the copy stores, and every exercise must be "not attempted" (its self-check
prints the line the copy and the book show under the stub). Together the two runs
check every notebook under two kernel sets while executing each notebook only twice; the executed copies and
their run times are kept in ``_build/executed/<run>/`` (printed at the end of the session).

What the colab run does not prove: Colab's exact package versions (it uses the versions pinned in
requirements.txt), its GPU runtime, its network (the install cell installs a local wheel, not the repository),
and the Colab front end. What the forced kernels do not prove: every CPU; they are one other kernel set.

``QTEACH_NOTEBOOKS`` (paths separated by spaces) restricts both runs to some notebooks (``make test-quick``);
``QTEACH_FORCED_KERNELS`` (e.g. ``"ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2"``) forces another kernel set.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import pytest
from filelock import FileLock

from qteach import comparison, course

ROOT = Path(__file__).resolve().parents[2]
BUILD = ROOT / "_build"
EXECUTED = BUILD / "executed"
COLAB = BUILD / "colab_like"

MACHINE_DEPENDENT = "machine-dependent"
"""The cell tag of cells whose output depends on float training, timings or the CPU: run, never compared."""

FORCED_KERNELS = dict(item.split("=", 1) for item in os.environ.get(
    "QTEACH_FORCED_KERNELS", "ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41").split())
"""The kernel set of the colab run; ``QTEACH_FORCED_KERNELS`` (``NAME=value`` pairs) tries another one."""
CELL_TIMEOUT_S = 300

# What is compared: the text a reader reads. Figures (HTML, images) and widgets are not compared (plotly's
# renderer differs in Colab, and a figure's floats carry every last bit); what a figure shows is asserted.
COMPARED_DATA = ("text/plain", "text/markdown", "text/latex")
WIDGET = "application/vnd.jupyter.widget-view+json"
SANITIZE = [
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<UUID>"),
    (re.compile(r"0x[0-9a-f]{6,16}"), "<ADDRESS>"),
]


def _selected() -> list[Path]:
    wanted = os.environ.get("QTEACH_NOTEBOOKS")
    if wanted is not None:
        return [ROOT / p for p in wanted.split()]
    found = sorted(p for p in (ROOT / "notebooks").glob("**/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
    return found + [ROOT / p for p in comparison.pages()]


NOTEBOOKS = _selected()
COLAB_PACKAGES = ["torch", "numpy", "scipy", "pandas", "plotly", "ipywidgets", "scikit-learn", "matplotlib", "numba",
                  "tqdm", "pyyaml", "ipykernel", "nbclient", "nbformat"]

PURELIB = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
RUNNER = '''
import sys, nbformat
from nbclient import NotebookClient
source, target, folder, timeout = sys.argv[1:5]
nb = nbformat.read(source, as_version=4)
NotebookClient(nb, timeout=int(timeout), kernel_name="python3", allow_errors=True,
               resources={"metadata": {"path": folder}}).execute()
nbformat.write(nb, target)
'''


# ----------------------------------------------------------------------------------------- the comparison rule
def _text(value) -> str:
    text = "".join(value) if isinstance(value, list) else str(value)
    for pattern, replacement in SANITIZE:
        text = pattern.sub(replacement, text)
    return text


def comparable(cell) -> list[tuple]:
    """What a cell's outputs say that must not change between machines: stdout, errors and text results."""
    said = []
    for output in cell.get("outputs", []):
        if output.output_type == "stream":
            if output.name == "stdout":  # stderr: warnings and progress bars differ between environments
                said.append(("stdout", _text(output.text)))
        elif output.output_type == "error":
            said.append(("error", output.ename, _text(output.evalue)))
        elif WIDGET not in output.get("data", {}):
            data = output.get("data", {})
            said += [(kind, _text(data[kind])) for kind in COMPARED_DATA if kind in data]
    # consecutive stdout chunks are one text, however the kernel flushed them
    merged: list[tuple] = []
    for item in said:
        if merged and item[0] == "stdout" and merged[-1][0] == "stdout":
            merged[-1] = ("stdout", merged[-1][1] + item[1])
        else:
            merged.append(item)
    return merged


def is_exact(cell) -> bool:
    tags = cell.metadata.get("tags", [])
    return cell.cell_type == "code" and MACHINE_DEPENDENT not in tags and "colab-install" not in tags


def differences(stored, executed, skip: set[int] = frozenset()) -> list[str]:
    """Exact cells of ``executed`` whose text differs from ``stored`` (the same notebook), as readable reports."""
    assert len(stored.cells) == len(executed.cells)
    found = []
    for index, (want, got) in enumerate(zip(stored.cells, executed.cells)):
        if index in skip or not is_exact(want):
            continue
        expected, actual = comparable(want), comparable(got)
        if expected != actual:
            first_line = want.source.splitlines()[0] if want.source else ""
            found.append(f"cell {index} ({first_line[:60]!r}):\n  stored: {expected!r:.600}\n  now:    {actual!r:.600}")
    return found


HINT = ("\nAn exact cell printed something else than is stored. If its output depends on float training, timings "
        "or the CPU, tag the cell machine-dependent and assert its claims in it (CONTRIBUTING.md, 'Portable "
        "notebooks'); otherwise execute the notebook again (make execute NB=...) or fix the regression.")


def _record(run: str, notebook: Path, executed, seconds: float) -> Path:
    target = EXECUTED / run / notebook.relative_to(ROOT)
    target.parent.mkdir(parents=True, exist_ok=True)
    executed.metadata.setdefault("qteach", {})["test_run"] = {"run": run, "seconds": round(seconds, 1)}
    nbformat.write(executed, target)
    return target


# ------------------------------------------------------------------------------------------------ native run
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_native(notebook):
    from nbclient import NotebookClient

    stored = nbformat.read(notebook, as_version=4)
    executed = nbformat.read(notebook, as_version=4)
    start = time.perf_counter()
    NotebookClient(executed, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                   resources={"metadata": {"path": str(notebook.parent)}}).execute()  # raises on any error
    _record("native", notebook, executed, time.perf_counter() - start)
    found = differences(stored, executed)
    assert not found, "\n".join(found) + HINT
    status, results = course.grade_outputs(executed, notebook.name)
    assert status["run"] == "clean", status
    assert all(r.result in ("pass", "not graded") for r in results), results


# ------------------------------------------------------------------------------------------------- colab run
def _pins() -> list[str]:
    """Colab's packages at the versions requirements.txt pins (unpinned ones as they come)."""
    pinned = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+)", line)
        if match:
            pinned[match.group(1).lower()] = match.group(2)
    return [f"{name}=={pinned[name]}" if name in pinned else name for name in COLAB_PACKAGES]


@pytest.fixture(scope="session")
def colab_python(worker_id, testrun_uid):
    """Python of a Colab-like environment without qteach, one per test worker.

    The packages Colab preinstalls live in one shared environment, created once; each worker gets an empty
    environment on top of it (a ``.pth`` file), so that the notebooks' install cells of two workers never
    install into the same folder at once.
    """
    COLAB.mkdir(parents=True, exist_ok=True)
    base, wanted = COLAB / "venv", "\n".join(_pins())
    stamp = base / ".colab-packages"
    with FileLock(str(COLAB / "venv.lock")):
        if not (stamp.is_file() and stamp.read_text() == wanted):
            shutil.rmtree(base, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "venv", str(base)], check=True)
            subprocess.run([str(base / "bin" / "python"), "-m", "pip", "install", "-q", *_pins()], check=True)
            stamp.write_text(wanted)
    overlay = COLAB / f"overlay-{testrun_uid}-{worker_id}"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(overlay)], check=True)
    shared = subprocess.run([str(base / "bin" / "python"), "-c", PURELIB], check=True, capture_output=True,
                            text=True).stdout.strip()
    own = subprocess.run([str(overlay / "bin" / "python"), "-c", PURELIB], check=True, capture_output=True,
                         text=True).stdout.strip()
    Path(own, "colab_preinstalled.pth").write_text(shared + "\n")
    yield overlay / "bin" / "python"
    shutil.rmtree(overlay, ignore_errors=True)


@pytest.fixture(scope="session")
def wheel(testrun_uid) -> Path:
    """A wheel of qteach built once per test session from the working tree."""
    dist = COLAB / f"dist-{testrun_uid}"
    with FileLock(str(COLAB / "wheel.lock")):
        if not list(dist.glob("qteach-*.whl")):
            for old in COLAB.glob("dist-*"):  # wheels of earlier sessions (not of one running beside this one)
                if time.time() - old.stat().st_mtime > 3600:
                    shutil.rmtree(old, ignore_errors=True)
            subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT)],
                           check=True, capture_output=True)
    (found,) = dist.glob("qteach-*.whl")
    return found


@pytest.fixture(scope="session")
def colab_marker() -> Path:
    """A folder with an empty ``google.colab`` package, imported at start-up by a ``sitecustomize`` module (as
    Colab's kernel has it in ``sys.modules``): on this path, the kernel believes it runs in Colab."""
    marker = COLAB / "colab_marker"
    (marker / "google" / "colab").mkdir(parents=True, exist_ok=True)
    (marker / "google" / "__init__.py").write_text("")
    (marker / "google" / "colab" / "__init__.py").write_text('"""Marks the kernel as Google Colab for tests."""\n')
    (marker / "sitecustomize.py").write_text("import google.colab  # noqa: F401  (as in Colab's kernels)\n")
    return marker


def test_the_colab_environment_has_no_qteach(colab_python):
    result = subprocess.run([str(colab_python), "-c", "import qteach"], capture_output=True)
    assert result.returncode != 0


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_colab(notebook, colab_python, wheel, colab_marker):
    stored = nbformat.read(ROOT / "colab" / notebook.relative_to(ROOT), as_version=4)
    with tempfile.TemporaryDirectory(prefix="colab-") as folder:
        source, target = Path(folder) / notebook.name, Path(folder) / "executed.ipynb"
        nbformat.write(stored, source)
        env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "VIRTUAL_ENV"}}
        env.update(FORCED_KERNELS, PYTHONPATH=str(colab_marker), QTEACH_SOURCE=str(wheel),
                   PATH=f"{colab_python.parent}{os.pathsep}{env.get('PATH', '')}")
        start = time.perf_counter()
        result = subprocess.run([str(colab_python), "-c", RUNNER, str(source), str(target), folder,
                                 str(CELL_TIMEOUT_S)], cwd=folder, env=env, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        assert result.returncode == 0, result.stderr[-3000:]
        executed = nbformat.read(target, as_version=4)
    _record("colab", notebook, executed, seconds)
    status, results = course.grade_outputs(executed, notebook.name)
    assert status["run"] == "clean", status
    assert all(r.result in ("not attempted", "not graded") for r in results), results
    found = differences(stored, executed)  # the exercise cells too: each prints its "not attempted" line
    assert not found, "\n".join(found) + HINT
    printed = "".join(str(o.get("text", "")) for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert str(ROOT) not in printed, "the notebook printed a path of the repository"
