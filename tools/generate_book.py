"""Generate the catalog-driven parts of the book: ``_toc.yml``, the year chapters and the tag pages.

Run by ``make book`` before every build (``python tools/generate_book.py``). The pages are written to
``book/_generated/`` (not committed: never edit them by hand); ``_toc.yml`` is committed so the repository
shows the book's structure, and a test checks it equals what this script writes. ``--check`` only compares.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

from qteach import catalog, course

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "book" / "_generated"

YEAR_INTROS = {
    2015: "Where it starts: networks whose weights, and then activations, are a single bit.",
    2016: "Binary and ternary networks grow up: scaling factors, XNOR-popcount kernels, k-bit everything.",
    2017: "Ternary and power-of-two weights, residual binarization, and the first FPGA accelerators.",
    2018: "Integer-only inference, learned clipping, distillation, and a wave of binary hardware.",
    2019: "Better gradients for binary networks, soft quantizers, and in-memory computing.",
    2020: "Information retention, full 8-bit training, and binary networks on every kind of silicon.",
}


def _slugify(tag: str) -> str:
    return tag.lower().replace(" ", "_").replace("-", "_")


def notebook_exists(paper: catalog.Paper) -> bool:
    return (ROOT / paper.notebook).is_file()


def _doc(path: str) -> str:
    """A toc entry: a path relative to the book root without its suffix."""
    return str(Path(path).with_suffix(""))


def _paper_row(paper: catalog.Paper) -> str:
    if notebook_exists(paper):
        title = _link(paper.title, ROOT / paper.notebook)
    else:
        title = f"{paper.title} *(notebook not written yet)*"
    code = f"[code]({paper.code_url})" if paper.code_url else "—"
    return f"| {title} | {', '.join(paper.tags)} | {code} | {{cite:p}}`{paper.bibkey}` |"


def year_page(year: int) -> str:
    papers = catalog.by_year(year)
    done = sum(notebook_exists(p) for p in papers)
    lines = [f"# {year}", "", YEAR_INTROS[year], "",
             f"{len(papers)} papers of the list are from {year}; {done} have a notebook so far.", "",
             "| Paper | Tags | Code | Reference |", "| --- | --- | --- | --- |"]
    lines += [_paper_row(p) for p in papers]
    lines += ["", "*This page is generated from the catalog (`src/qteach/catalog/papers.yaml`).*", ""]
    return "\n".join(lines)


def tag_page(tag: str) -> str:
    papers = catalog.by_tag(tag)
    lines = [f"# {tag}", "", f"{len(papers)} papers of the list carry the tag *{tag}*.", ""]
    for year in catalog.YEARS:
        in_year = [p for p in papers if p.year == year]
        if not in_year:
            continue
        lines += [f"## {year}", "", "| Paper | Tags | Code | Reference |", "| --- | --- | --- | --- |"]
        lines += [_paper_row(p) for p in in_year]
        lines.append("")
    lines += ["*This page is generated from the catalog (`src/qteach/catalog/papers.yaml`).*", ""]
    return "\n".join(lines)


def all_notebooks() -> list[tuple[str, Path]]:
    """(title, path) of every notebook on disk, Foundations first, then the papers in catalog order."""
    entries = [(f["title"], ROOT / f["notebook"]) for f in catalog.FOUNDATIONS.values()]
    entries += [(p.title, ROOT / p.notebook) for p in catalog.papers()]
    return [(title, path) for title, path in entries if path.is_file()]


def _link(title: str, path: Path) -> str:
    return f"[{title}]({Path('/') / _doc(str(path.relative_to(ROOT)))})"


def execution_status_page() -> str:
    lines = ["# Execution status", "",
             "Every notebook is stored with the outputs of its last execution, a fresh kernel run top to bottom "
             "(`make execute NB=...`); the test suite re-executes each one and compares. This page is generated "
             "from the stored notebooks when the book is built.", "",
             "| Notebook | Run time (s) | Executed on | Environment | Clean |", "| --- | ---: | --- | --- | :---: |"]
    total = 0.0
    for title, path in all_notebooks():
        nb = nbformat.read(path, as_version=4)
        run = nb.metadata.get("qteach", {}).get("execution", {})
        code = [c for c in nb.cells if c.cell_type == "code"]
        in_order = [c.execution_count for c in code] == list(range(1, len(code) + 1))
        no_errors = not any(o.output_type == "error" for c in code for o in c.outputs
                            if "raises-exception" not in c.metadata.get("tags", []))
        seconds = run.get("seconds")
        total += seconds or 0
        env = f"Python {run['python']}, torch {run['torch']}, {run['machine']}" if run else "unknown"
        lines.append(f"| {_link(title, path)} | {seconds if seconds is not None else '—'} | "
                     f"{run.get('date', '—')} | {env} | {'✓' if in_order and no_errors and run else '✗'} |")
    lines += ["", f"Total: {total:.0f} s for {len(all_notebooks())} notebooks.", ""]
    return "\n".join(lines)


def exercise_index_page() -> str:
    lines = ["# Index of exercises", "",
             "Every exercise of the book, generated from the notebooks. *Code* exercises have a self-check; "
             "the last column is what it verifies (its success line). *Written* exercises have a folded model "
             "answer in the book and are graded by hand.", "",
             "| Notebook | Exercise | Kind | Topic | What the self-check verifies |",
             "| --- | --- | --- | --- | --- |"]
    for title, path in all_notebooks():
        nb = nbformat.read(path, as_version=4)
        for exercise in course.find_exercises(nb, str(path)):
            checked = "—"
            for index in exercise.code_cells:
                for output in nb.cells[index].get("outputs", []):
                    text = output.get("text", "")
                    if f"{exercise.label} passed: " in text:
                        checked = text.split(f"{exercise.label} passed: ", 1)[1].splitlines()[0]
            topic = exercise.topic.replace("|", "\\|")
            lines.append(f"| {_link(title, path)} | {exercise.number} | {'code' if exercise.is_code else 'written'} "
                         f"| {topic} | {checked.replace('|', '/')} |")
    lines.append("")
    return "\n".join(lines)


def toc() -> dict:
    foundations = [{"file": _doc(entry["notebook"])} for entry in catalog.FOUNDATIONS.values()
                   if (ROOT / entry["notebook"]).is_file()]
    years = []
    for year in catalog.YEARS:
        chapter = {"file": f"book/_generated/years/{year}"}
        sections = [{"file": _doc(p.notebook)} for p in catalog.by_year(year) if notebook_exists(p)]
        if sections:
            chapter["sections"] = sections
        years.append(chapter)
    return {
        "format": "jb-book",
        "root": "book/intro",
        "parts": [
            {"caption": "Getting started", "chapters": [{"file": "book/how_to_use"}]},
            {"caption": "Foundations", "chapters": [{"file": "book/foundations"}] + foundations},
            {"caption": "The papers, year by year", "chapters": years},
            {"caption": "The papers, by tag",
             "chapters": [{"file": f"book/_generated/tags/{_slugify(t)}"} for t in catalog.TAGS]},
            {"caption": "For instructors", "chapters": [
                {"file": "book/instructors"}, {"file": "book/_generated/exercise_index"},
                {"file": "book/_generated/execution_status"}]},
            {"caption": "Reference", "chapters": [{"file": "book/results"}, {"file": "book/api"},
                                                  {"file": "book/bibliography"}]},
        ],
    }


def toc_text() -> str:
    header = "# Generated by tools/generate_book.py from the catalog: do not edit by hand.\n"
    return header + yaml.safe_dump(toc(), sort_keys=False)


def pages() -> dict[Path, str]:
    out = {GENERATED / "years" / f"{year}.md": year_page(year) for year in catalog.YEARS}
    out.update({GENERATED / "tags" / f"{_slugify(tag)}.md": tag_page(tag) for tag in catalog.TAGS})
    out[GENERATED / "execution_status.md"] = execution_status_page()
    out[GENERATED / "exercise_index.md"] = exercise_index_page()
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only check that _toc.yml is up to date")
    args = parser.parse_args(argv)
    toc_path = ROOT / "_toc.yml"
    if args.check:
        if not toc_path.is_file() or toc_path.read_text() != toc_text():
            print("_toc.yml is out of date: run `python tools/generate_book.py`", file=sys.stderr)
            return 1
        return 0
    toc_path.write_text(toc_text())
    for path, text in pages().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print(f"wrote _toc.yml and {len(pages())} pages under {GENERATED.relative_to(ROOT)}/")
    return 0


if __name__ == "__main__":
    sys.exit(main())
