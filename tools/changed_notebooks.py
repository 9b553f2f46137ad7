"""Print the notebooks a change touches (for ``make test-quick``), separated by spaces.

With arguments, those notebooks. Without, every notebook changed since the last commit (or new), and every
notebook whose paper module (``src/qteach/papers/<slug>.py``) or exercise module (``src/qteach/exercises/``)
changed; the results pages when ``qteach.comparison`` changed.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from qteach import comparison

ROOT = Path(__file__).resolve().parent.parent


def changed_files() -> set[str]:
    def git(*args: str) -> list[str]:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()

    return set(git("diff", "--name-only", "HEAD")) | set(git("ls-files", "--others", "--exclude-standard"))


def touched(changed: set[str]) -> list[str]:
    notebooks = {str(p.relative_to(ROOT)): p.stem for p in ROOT.glob("notebooks/**/*.ipynb")}
    modules = {Path(f).stem for f in changed if f.startswith(("src/qteach/papers/", "src/qteach/exercises/"))}
    found = {path for path, slug in notebooks.items() if path in changed or slug in modules}
    results = comparison.pages()
    found |= {path for path in results if path in changed}
    if "src/qteach/comparison.py" in changed:
        found |= set(results)
    return sorted(found)


def main(argv: list[str]) -> int:
    for arg in argv:
        if not arg.endswith(".ipynb") or not (ROOT / arg).is_file():
            print(f"{arg}: not a notebook of the book", file=sys.stderr)
            return 2
    print(" ".join(argv or touched(changed_files())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
