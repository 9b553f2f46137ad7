"""For every notebook of the book: the stored solution passes all its self-checks.

That its student version runs top to bottom with only ``NotImplementedError`` in the exercise cells is checked
by the Colab-like run of ``tests/notebooks/test_notebooks.py``, which executes the student versions."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from qteach import course

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("**/*.ipynb") if ".ipynb_checkpoints" not in p.parts)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_solution_passes_every_self_check(path):
    # the stored outputs are what the native run of tests/notebooks re-checks against a fresh execution
    status, results = course.grade_outputs(nbformat.read(path, as_version=4), path.name)
    assert status["run"] == "clean", status
    graded = [r for r in results if r.result != "not graded"]
    assert graded, "a notebook needs at least one code exercise"
    assert all(r.result == "pass" for r in graded), results
