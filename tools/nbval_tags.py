"""Tag the cells whose stored outputs raw nbval must not compare, so that ``pytest --nbval`` agrees with the book.

The book's own notebook test (``tests/notebooks/test_notebooks.py``) compares only the text of exact cells. Plain
``pytest --nbval`` compares every stored output unless a cell carries the tag ``nbval-ignore-output``; this
tool gives that tag to exactly the code cells whose outputs the book does not promise to repeat:

- cells tagged ``machine-dependent`` (timings, float training, anything read from the machine);
- hidden setup cells (``hide-cell``) and cells whose last line ends with a semicolon: nbval runs cells without
  storing them in IPython's history, so the semicolon that hides a return value (``viz.setup();``,
  ``viz.explore(...);``) in a notebook does not hide it there;
- cells whose outputs hold a figure, a widget or an image: their element ids and floats differ from run to run
  (what a figure shows is asserted in its cell).

Every other code cell loses the tag. ``make execute`` tags a notebook after running it;
``python tools/nbval_tags.py`` retags every stored notebook and results page without running them.
``tests/nbval_sanitize.cfg`` masks what may differ inside compared text (uuids, memory addresses), as the book's
test does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
TAG = "nbval-ignore-output"
UNCOMPARED_DATA = {"application/vnd.plotly.v1+json", "application/vnd.jupyter.widget-view+json", "image/png",
                   "image/jpeg", "image/svg+xml"}


def _hides_its_value(source: str) -> bool:
    """Whether the last code line of ``source`` ends with ``;`` (a comment after it allowed)."""
    lines = [line.split("#")[0].rstrip() for line in source.splitlines()]
    code = [line for line in lines if line]
    return bool(code) and code[-1].endswith(";")


def ignores_output(cell) -> bool:
    """Whether raw nbval must skip the stored outputs of ``cell`` (see the module docstring)."""
    if cell.cell_type != "code":
        return False
    tags = cell.metadata.get("tags", [])
    if "machine-dependent" in tags or "hide-cell" in tags or _hides_its_value(cell.source):
        return True
    return any(UNCOMPARED_DATA & set(output.get("data", {})) for output in cell.get("outputs", []))


def tag(nb) -> bool:
    """Add or remove the tag on every cell of ``nb`` as :func:`ignores_output` says; True if anything changed."""
    changed = False
    for cell in nb.cells:
        tags = list(cell.metadata.get("tags", []))
        if ignores_output(cell) != (TAG in tags):
            tags = tags + [TAG] if TAG not in tags else [t for t in tags if t != TAG]
            if tags:
                cell.metadata["tags"] = tags
            else:
                cell.metadata.pop("tags")
            changed = True
    return changed


def stored_notebooks() -> list[Path]:
    """Every executed notebook of the book: the chapters and Foundations, and the results pages."""
    found = ROOT.glob("notebooks/**/*.ipynb"), ROOT.glob("book/results/*.ipynb")
    return sorted(p for paths in found for p in paths if ".ipynb_checkpoints" not in p.parts)


def main(argv=None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])] or stored_notebooks()
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        if tag(nb):
            nbformat.write(nb, path)
            print(f"tagged {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
