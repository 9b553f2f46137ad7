"""Execute notebooks top to bottom in a fresh kernel and store their outputs (``make execute NB=...``).

Each notebook runs in its own directory with a fresh ``python3`` kernel of the current environment. The run time
and environment are recorded in the notebook's metadata (``metadata.qteach.execution``), from which the book's
execution-status page is generated. A notebook that raises (outside cells tagged ``raises-exception``) is not
written back, and the command fails. The cells whose outputs raw nbval must not compare are tagged
(``tools/nbval_tags.py``), and the notebook's Colab copy (``colab/<path>``, see ``tools/colab_copies.py``) is
written again from the new outputs.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import sys
import time
from pathlib import Path

import nbformat
from colab_copies import write as write_colab_copy
from nbclient import NotebookClient
from nbval_tags import tag as tag_for_nbval

TIMEOUT_S = 120
BUDGET_S = 30


def execute(path: Path) -> float:
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=TIMEOUT_S, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    import torch  # noqa: PLC0415 - only for the environment record

    nb.metadata.setdefault("qteach", {})["execution"] = {
        "seconds": round(seconds, 1),
        "date": datetime.date.today().isoformat(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "machine": f"{platform.system()} {platform.machine()}, {torch.get_num_threads()} threads",
    }
    tag_for_nbval(nb)
    nbformat.write(nb, path)
    return seconds


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)
    status = 0
    for path in args.notebooks:
        if path.suffix != ".ipynb" or not path.is_file():
            print(f"{path}: not a notebook file", file=sys.stderr)
            status = 2
            continue
        seconds = execute(path)
        write_colab_copy(path.resolve().relative_to(Path(__file__).resolve().parent.parent))
        size = path.stat().st_size / 1e6
        flag = "" if seconds <= BUDGET_S and size <= 1 else "  <-- over budget (30 s, 1 MB)"
        print(f"{path}: {seconds:.1f} s, {size:.2f} MB{flag}")
    return status


if __name__ == "__main__":
    sys.exit(main())
