"""Build one of the book's three HTML versions from the notebooks with solutions (the single source).

``reader`` (``make book``, published)      exercise code as the stub a student starts from, with the line its
                                            self-check prints; solutions only in the folded dropdowns
                                            (:func:`qteach.course.book_version`)             -> _build/html
``instructors`` (``make book-instructors``) the notebooks as stored: solutions worked out, with their output
                                                                                             -> _build/instructors/html
``student`` (``make book-student``)        no solutions at all, for handing out (:func:`qteach.course.student_version`)
                                                                                             -> _build/student/html

The book's sources (configuration, ``book/``, ``_static/``, the notebooks) are copied to ``_build/<version>-src``,
every notebook replaced by its version, and that copy is built with Jupyter Book.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat

from qteach import course

ROOT = Path(__file__).resolve().parent.parent
VERSIONS = {"reader": course.book_version, "instructors": None, "student": course.student_version}
OUTPUT = {"reader": ROOT / "_build" / "html", "instructors": ROOT / "_build" / "instructors" / "html",
          "student": ROOT / "_build" / "student" / "html"}


def build(version: str) -> int:
    source = ROOT / "_build" / f"{version}-src"
    scratch = ROOT / "_build" / f"{version}-out"
    shutil.rmtree(source, ignore_errors=True)
    source.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, source / name)
    for folder in ("book", "notebooks", "_static"):
        shutil.copytree(ROOT / folder, source / folder, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    make_version = VERSIONS[version]
    if make_version is not None:
        for path in sorted(source.glob("**/*.ipynb")):
            name = str(path.relative_to(source))
            nbformat.write(make_version(nbformat.read(path, as_version=4), name), path)
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jupyter_book), "build", str(source), "--path-output", str(scratch),
                             "--warningiserror", "--keep-going", "--quiet"])
    if result.returncode == 0:
        shutil.rmtree(OUTPUT[version], ignore_errors=True)
        OUTPUT[version].parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(scratch / "_build" / "html"), OUTPUT[version])
        print(f"The {version} version of the book is in {OUTPUT[version].relative_to(ROOT)}/index.html")
    return result.returncode


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("version", choices=sorted(VERSIONS), nargs="?", default="reader")
    return build(parser.parse_args(argv).version)


if __name__ == "__main__":
    sys.exit(main())
