"""Write the two generated cells at the top of every notebook: the header card and the Colab install cell.

Cell 0 (markdown) is the header card generated from the catalog (``qteach.display.header_card``); cell 1 (code,
hidden in the HTML) installs qteach in Colab from the repository written in ``_config.yml``. Neither is ever
typed by hand: run ``python tools/sync_notebooks.py notebooks/**/*.ipynb`` after changing the catalog or the
repository address. ``tests/test_consistency.py`` checks that every notebook is in sync.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import yaml

from qteach.display import header_card

ROOT = Path(__file__).resolve().parent.parent

INSTALL_TEMPLATE = '''\
# Setup. In Google Colab this installs qteach (about a minute; once per runtime); elsewhere it does nothing.
# QTEACH_SOURCE overrides where qteach comes from (a wheel, a folder, a git URL).
import importlib.util, os, subprocess, sys
if "google.colab" in sys.modules and importlib.util.find_spec("qteach") is None:
    source = os.environ.get("QTEACH_SOURCE", "git+{url}.git@{branch}")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", source], check=True)'''


def repository() -> tuple[str, str]:
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    return config["repository"]["url"], config["repository"].get("branch", "main")


def install_source() -> str:
    url, branch = repository()
    return INSTALL_TEMPLATE.format(url=url, branch=branch)


def slug_of(path: Path) -> str:
    return path.stem


def header_source(path: Path) -> str:
    return header_card(slug_of(path)).text


def expected_cells(path: Path):
    header = nbformat.v4.new_markdown_cell(header_source(path), metadata={"tags": ["header-card"]})
    install = nbformat.v4.new_code_cell(install_source(), metadata={"tags": ["hide-cell", "colab-install"]})
    return header, install


def is_synced(nb) -> bool:
    cells = nb.cells
    return (len(cells) >= 2 and "header-card" in cells[0].metadata.get("tags", [])
            and "colab-install" in cells[1].metadata.get("tags", []))


def sync(path: Path) -> bool:
    """Rewrite the generated cells of ``path``; return True if anything changed."""
    nb = nbformat.read(path, as_version=4)
    header, install = expected_cells(path)
    if is_synced(nb):
        changed = nb.cells[0].source != header.source or nb.cells[1].source != install.source
        nb.cells[0].source, nb.cells[1].source = header.source, install.source
    else:
        nb.cells[0:0] = [header, install]
        changed = True
    if changed:
        nbformat.write(nb, path)
    return changed


def main(argv=None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        paths = sorted(ROOT.glob("notebooks/**/*.ipynb"))
    for path in paths:
        if sync(path):
            print(f"synced {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
