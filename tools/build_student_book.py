"""Build the book without solutions (``make book-student``) into ``_build/student/html``.

Copies the book's sources to ``_build/student/src``, replaces every notebook by its student version
(``qteach.course.student_version``: solution code replaced by ``NotImplementedError``, folded solutions removed),
and builds that copy with Jupyter Book.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from qteach import course

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "_build" / "student"


def main() -> int:
    source = OUT / "src"
    shutil.rmtree(OUT, ignore_errors=True)
    source.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("book", "notebooks"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for path in sorted((source / "notebooks").rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.write(course.student_version(nb, str(path.relative_to(source))), path)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jupyter_book), "build", str(source), "--path-output", str(OUT), "--quiet"])
    if result.returncode == 0:
        print(f"The book without solutions is in {OUT.relative_to(ROOT)}/_build/html/index.html")
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
