"""Generate the catalog-driven parts of the book: ``_toc.yml``, the year chapters and the tag pages.

Run by ``make book`` before every build (``python tools/generate_book.py``). The pages are written to
``book/_generated/`` (not committed: never edit them by hand); ``_toc.yml`` is committed so the repository
shows the book's structure, and a test checks it equals what this script writes. ``--check`` only compares.
"""

from __future__ import annotations

import argparse
import posixpath
import sys
from pathlib import Path

import nbformat
import yaml

from qteach import catalog, comparison, course, lineage

ROOT = Path(__file__).resolve().parent.parent
GENERATED = ROOT / "book" / "_generated"

YEAR_OVERVIEWS = {
    2015: "Where it starts. BinaryConnect trains a network whose weights are a single bit in the forward and "
          "backward passes, while real-valued weights accumulate the small gradient steps; Bitwise Neural Networks "
          "make every weight, bias and signal binary. Both ask how far one bit per weight can go.",
    2016: "Binary and ternary networks grow up. Binarized Neural Networks make the activations binary too, and "
          "show the XNOR-popcount product that replaces multiply-add; XNOR-Net adds a real scale per filter and "
          "reaches ImageNet; Ternary Weight Networks add a zero; DoReFa-Net takes weights, activations and even "
          "gradients to any number of bits.",
    2017: "The year of variety: learned ternary scales (TTQ), power-of-two weights (INQ, ShiftCNN), several "
          "binary bases (ABC-Net, HORQ), a quantizer shaped for ReLU (HWGQ), wider low-precision layers (WRPN), "
          "and the first FPGA accelerators built around binary networks.",
    2018: "Quantization meets deployment: integer-only inference with 8-bit arithmetic, learned clipping of "
          "activations (PACT), distillation into low-bit students, and a wave of binary kernels for CPUs and "
          "accelerators for FPGAs and custom chips.",
    2019: "Training binary networks better: new surrogate gradients, learned scales, studies of what actually "
          "matters in optimisation, soft and differentiable quantizers, 8-bit training, and computing inside "
          "memory arrays.",
    2020: "Binary networks close much of the gap to real-valued ones (information retention, rotations, "
          "distillation from real to binary), full 8-bit training and 8-bit floats arrive, and binary networks "
          "run on every kind of silicon, from DRAM to memristors. A survey maps the binary field.",
}

def _slugify(tag: str) -> str:
    return tag.lower().replace(" ", "_").replace("-", "_")


def notebook_exists(paper: catalog.Paper) -> bool:
    return (ROOT / paper.notebook).is_file()


def _doc(path: str) -> str:
    """A toc entry: a path relative to the book root without its suffix."""
    return str(Path(path).with_suffix(""))


def _paper_link(paper: catalog.Paper, text: str | None = None) -> str:
    text = text or paper.short_title
    return _link(text, ROOT / paper.notebook) if notebook_exists(paper) else f"{text} *(not written yet)*"


def _paper_row(paper: catalog.Paper) -> str:
    code = f"[code]({paper.code_url})" if paper.code_url else "—"
    learn = paper.learn.replace("|", "\\|")
    return (f"| {_paper_link(paper)} | {learn} | {', '.join(paper.tags)} | {code} | "
            f"{{cite:p}}`{paper.bibkey}` |")


TABLE_HEAD = ["| Chapter | What you will learn | Tags | Code | Paper |", "| --- | --- | --- | --- | --- |"]


def _map(papers: list[catalog.Paper], html_page: str, title: str) -> list[str]:
    """The lineage figure of ``papers`` as raw HTML for the page at ``html_page`` in the built book (its clicks
    open chapters by links relative to that page)."""
    def link(paper):
        if not notebook_exists(paper):
            return None
        return posixpath.relpath(str(Path(paper.notebook).with_suffix(".html")), posixpath.dirname(html_page))

    fig = lineage.lineage_figure(papers, link=link, title=title)
    return ["```{raw} html", lineage.lineage_html(fig), "```", "",
            "*Each paper is placed by year and coloured by its first tag; a line joins it to the papers it builds "
            "on, as its own text says (hollow: chapter not written yet). Hover for what each chapter teaches; click a "
            "paper to open its chapter.*", ""]


def year_page(year: int) -> str:
    papers = catalog.by_year(year)
    done = sum(notebook_exists(p) for p in papers)
    lines = [f"# {year}", "", YEAR_OVERVIEWS[year], "",
             f"{len(papers)} papers of the list are from {year}; {done} have a chapter so far.", "", *TABLE_HEAD]
    lines += [_paper_row(p) for p in papers]
    lines += ["", "*This page is generated from the catalog (`src/qteach/catalog/papers.yaml`).*", ""]
    return "\n".join(lines)


def tag_page(tag: str) -> str:
    papers = catalog.by_tag(tag)
    lines = [f"# {tag}", "", f"{len(papers)} papers of the list carry the tag *{tag}*.", ""]
    lines += _map(papers, f"book/_generated/tags/{_slugify(tag)}.html", f"{tag}: what builds on what")
    for year in catalog.YEARS:
        in_year = [p for p in papers if p.year == year]
        if in_year:
            lines += [f"## {year}", "", *TABLE_HEAD, *[_paper_row(p) for p in in_year], ""]
    lines += ["*This page is generated from the catalog (`src/qteach/catalog/papers.yaml`).*", ""]
    return "\n".join(lines)


def _chapter_link(slug: str) -> str:
    """A link to a Foundations or paper chapter (or its name, if not written yet)."""
    if slug in catalog.FOUNDATIONS:
        entry = catalog.FOUNDATIONS[slug]
        return _link(entry["title"], ROOT / entry["notebook"])
    paper = catalog.paper(slug)
    return _paper_link(paper)


def field_map_page() -> str:
    """Included in the intro (``book/intro.md``): the map of the whole field and the three reading paths."""
    lines = ["## A map of the field", ""]
    lines += _map(catalog.papers(), "book/intro.html", "The papers and what they build on")
    lines += ["## Three reading paths", "",
              "Each path is a sequence of chapters for one goal; Foundations chapters come first where a path needs "
              "them.", ""]
    for name, path in catalog.READING_PATHS.items():
        lines += [f"**{name}**: " + " → ".join(_chapter_link(s) for s in path), ""]
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
        sections = [{"file": _doc(p.notebook), "title": p.short_title} for p in catalog.by_year(year)
                    if notebook_exists(p)]
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
            {"caption": "Reference", "chapters": [{"file": "book/results", "sections": results_sections()},
                                                  {"file": "book/api"},
                                                  {"file": "book/bibliography"}]},
        ],
    }


def results_sections() -> list[dict]:
    """The results pages (:func:`qteach.comparison.pages`), each titled by its family and protocol."""
    return [{"file": comparison.page_path(protocol, family).removesuffix(".ipynb"),
             "title": f"{family.title} ({protocol.name})"} for family, protocol in comparison.page_specs()]


def toc_text() -> str:
    header = "# Generated by tools/generate_book.py from the catalog: do not edit by hand.\n"
    return header + yaml.safe_dump(toc(), sort_keys=False)


def pages() -> dict[Path, str]:
    out = {GENERATED / "years" / f"{year}.md": year_page(year) for year in catalog.YEARS}
    out.update({GENERATED / "tags" / f"{_slugify(tag)}.md": tag_page(tag) for tag in catalog.TAGS})
    out[GENERATED / "field_map.md"] = field_map_page()
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
