"""Write the notebooks that the book's Colab buttons open: ``colab/<path>`` for every notebook page ``<path>``.

A Colab button opens a notebook from the repository on GitHub, so the version a student should meet there (the
exercise stubs, the solutions folded; :func:`qteach.course.colab_version`) is stored in the repository, under
``colab/`` with the same paths as the pages (``_config.yml``'s ``path_to_book``). The copies are generated, never
edited: ``make execute`` rewrites the copy of the notebook it executes, ``make colab`` (this script without
arguments) rewrites all of them and removes the copies of notebooks that no longer exist, and
``tests/test_consistency.py`` checks that every copy is what this script writes.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

from qteach import comparison, course

ROOT = Path(__file__).resolve().parent.parent
COLAB = ROOT / "colab"


def pages() -> list[Path]:
    """Every notebook page of the book (the chapters and the results pages), relative to the repository."""
    found = sorted(p.relative_to(ROOT) for p in (ROOT / "notebooks").glob("**/*.ipynb")
                   if ".ipynb_checkpoints" not in p.parts)
    return found + [Path(p) for p in comparison.pages()]


def expected_copy(page: Path):
    """The Colab copy of ``page`` (a path relative to the repository), as this script writes it."""
    nb = nbformat.read(ROOT / page, as_version=4)
    return course.colab_version(nb, page.as_posix())


def write(page: Path) -> Path:
    target = COLAB / page
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(expected_copy(page), target)
    return target


def main(argv: list[str]) -> int:
    if argv:
        for name in argv:
            page = Path(name).resolve().relative_to(ROOT)
            print(f"wrote {write(page).relative_to(ROOT)}")
        return 0
    wanted = {COLAB / page for page in pages()}
    for stale in set(COLAB.glob("**/*.ipynb")) - wanted:
        stale.unlink()
        print(f"removed {stale.relative_to(ROOT)}")
    for page in pages():
        write(page)
    print(f"wrote {len(wanted)} Colab copies under {COLAB.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
