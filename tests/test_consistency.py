"""The book's sources agree: catalog, seed list, bibliography, _toc.yml, notebooks and generated cells."""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import warnings
from pathlib import Path

import nbformat
import pytest
import yaml
from pybtex.database import parse_file

from qteach import catalog, comparison, course
from qteach.display import header_card

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import colab_copies  # noqa: E402
import nbval_tags  # noqa: E402
import sync_notebooks  # noqa: E402

NOTEBOOKS = sorted(p for p in (ROOT / "notebooks").glob("**/*.ipynb") if ".ipynb_checkpoints" not in p.parts)
BIB = parse_file(str(ROOT / "book" / "references.bib"))


def seed_rows() -> list[dict]:
    """The paper rows of the seed list (tests/data holds a copy of the list the book is built from)."""
    rows = []
    for line in (ROOT / "tests" / "data" / "awesome-model-quantization.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and re.fullmatch(r"20(1[5-9]|20)", cells[3]):
            link = re.search(r"\((https?://[^)]*)\)", cells[2])
            rows.append({"title": cells[0], "tags": cells[1], "code": link.group(1) if link else None,
                         "year": int(cells[3])})
    return rows


def _normalise(title: str) -> str:
    return re.sub(r"[^a-z0-9]", "", title.lower())


def test_seed_has_103_rows_and_102_distinct_papers():
    rows = seed_rows()
    assert len(rows) == 103
    assert len({(_normalise(r["title"]), r["year"]) for r in rows}) == 102


def test_catalog_has_one_entry_per_distinct_seed_paper():
    assert len(catalog.papers()) == 102
    seed = {}
    for row in seed_rows():
        seed.setdefault((_normalise(row["title"]), row["year"]), []).append(row)
    matched = set()
    for paper in catalog.papers():
        # the catalog repairs punctuation the seed lost, so titles are compared on letters and digits
        key = _best_match(seed, paper)
        assert key is not None, f"{paper.slug}: title not found among the seed's {paper.year} rows"
        matched.add(key)
        seed_tags = {t.strip() for r in seed[key] for t in re.split(r"[;,]", r["tags"]) if t.strip()}
        assert set(paper.tags) == seed_tags, paper.slug
    assert len(matched) == 102


def _best_match(seed: dict, paper) -> tuple | None:
    """The seed row of the paper's year whose title is most similar (the seed lost some punctuation)."""
    import difflib

    title = _normalise(paper.title)
    scored = [(difflib.SequenceMatcher(None, k[0], title).ratio(), k) for k in seed if k[1] == paper.year]
    ratio, key = max(scored)
    return key if ratio > 0.8 else None


def test_code_links_are_the_seeds_with_the_two_broken_ones_repaired():
    by_title = {(_normalise(r["title"]), r["year"]): r["code"] for r in seed_rows()}
    repaired = 0
    for paper in catalog.papers():
        seed_link = by_title[_best_match(by_title, paper)]
        if seed_link != paper.code_url:
            repaired += 1
            assert paper.slug in {"metaquant", "proxquant"}, (paper.slug, seed_link, paper.code_url)
            assert paper.code_url.startswith("https://github.com/") and not paper.code_url.endswith(".")
    assert repaired == 2


def test_catalog_fields():
    slugs = [p.slug for p in catalog.papers()]
    assert len(set(slugs)) == len(slugs)
    assert len({p.bibkey for p in catalog.papers()}) == len(slugs)
    for p in catalog.papers():
        assert p.slug.isidentifier() and p.slug == p.slug.lower()
        assert p.year in catalog.YEARS and p.tags and set(p.tags) <= set(catalog.TAGS)
        assert p.notebook == f"notebooks/{p.year}/{p.slug}.ipynb"
        assert p.code_url is None or p.code_url.startswith("http")
        assert 0 < len(p.short_title) <= 28 and 0 < len(p.learn) <= 110, p.slug
    assert [(p.year, p.title.casefold()) for p in catalog.papers()] == sorted(
        (p.year, p.title.casefold()) for p in catalog.papers())


def test_lineage_points_back_in_time_with_evidence():
    by_slug = {p.slug: p for p in catalog.papers()}
    for p in catalog.papers():
        assert p.slug not in p.builds_on and len(set(p.builds_on)) == len(p.builds_on), p.slug
        for earlier in p.builds_on:
            assert earlier in by_slug, f"{p.slug} builds on unknown {earlier}"
            assert by_slug[earlier].year <= p.year, f"{p.slug} ({p.year}) builds on later {earlier}"
        assert p.builds_on_evidence.strip(), f"{p.slug}: say where the relation is stated (or why none)"
    assert len({p.short_title for p in catalog.papers()}) == len(by_slug)  # a short title names one paper


def test_reading_paths_are_chapters_in_time_order():
    by_slug = {p.slug: p for p in catalog.papers()}
    assert len(catalog.READING_PATHS) == 3
    for name, path in catalog.READING_PATHS.items():
        assert all(s in by_slug or s in catalog.FOUNDATIONS for s in path), name
        years = [by_slug[s].year for s in path if s in by_slug]
        assert years == sorted(years), f"{name} goes back in time"
        assert len(set(path)) == len(path), name


def test_catalog_lookup_errors():
    assert catalog.paper("xnor_net").year == 2016
    with pytest.raises(KeyError, match="xnor_net"):
        catalog.paper("xnor_nett")
    with pytest.raises(ValueError, match="year"):
        catalog.by_year(2014)
    with pytest.raises(ValueError, match="tag"):
        catalog.by_tag("Pruning")
    assert sum(len(catalog.by_year(y)) for y in catalog.YEARS) == 102


@pytest.mark.parametrize("function, argument, name", [
    (catalog.paper, None, "slug"), (catalog.paper, ["xnor_net"], "slug"), (catalog.by_year, "2016", "year"),
    (catalog.by_year, 2016.0, "year"), (catalog.by_tag, ["Hardware"], "tag"), (catalog.by_tag, None, "tag"),
])
def test_catalog_lookup_wrong_types(function, argument, name):
    with pytest.raises(TypeError, match=name):
        function(argument)


def test_every_catalog_bibkey_is_in_the_bibliography():
    missing = [p.bibkey for p in catalog.papers() if p.bibkey not in BIB.entries]
    assert not missing


def test_every_citation_in_the_book_resolves():
    cited = set()
    sources = [p.read_text() for p in (ROOT / "book").glob("*.md")]
    sources += ["\n".join(c.source for c in nbformat.read(p, as_version=4).cells) for p in NOTEBOOKS]
    for text in sources:
        for keys in re.findall(r"\{cite(?::[a-z]+)?\}`([^`]+)`", text):
            cited.update(k.strip() for k in keys.split(","))
    assert cited - set(BIB.entries) == set()


def test_repository_url_is_written_once():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["repository"]["url"] == catalog.REPOSITORY_URL
    assert config["repository"]["branch"] == catalog.REPOSITORY_BRANCH
    assert config["repository"]["path_to_book"] == catalog.COLAB_FOLDER  # the launch buttons open the copies


def test_toc_is_generated_from_the_catalog():
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "generate_book.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_pyproject_does_not_pin_torch():
    text = (ROOT / "pyproject.toml").read_text()
    assert re.search(r'"torch>=[0-9.]+"', text) and "torch==" not in text


def assert_directive_fences_nest(markdown: str) -> None:
    """A code block inside an exercise or solution needs a longer outer fence (````{solution}), or MyST closes
    the directive at the code block's fence and the student version would keep part of the solution."""
    fence = None
    for line in markdown.splitlines():
        if fence is None:
            opened = re.match(r"^(`{3,}|:{3,})\{(exercise|solution)\}", line)
            fence = opened.group(1) if opened else None
        elif line.strip() == fence:
            fence = None
        elif line.startswith(fence):
            pytest.fail(f"a fence {line.strip()!r} inside a {fence}-fenced directive: use a longer outer fence")


@pytest.mark.parametrize("page", comparison.pages())
def test_the_results_pages_install_qteach_in_colab_too(page):
    nb = nbformat.read(ROOT / page, as_version=4)
    assert nb.cells[1].source == sync_notebooks.install_source()
    assert "colab-install" in nb.cells[1].metadata.get("tags", [])


def test_every_results_page_exists_and_no_other():
    assert sorted(str(p.relative_to(ROOT)) for p in (ROOT / "book" / "results").glob("*.ipynb")) == sorted(
        comparison.pages())


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
class TestNotebook:
    def test_belongs_to_the_catalog(self, path):
        rel = str(path.relative_to(ROOT))
        known = {p.notebook for p in catalog.papers()} | {f["notebook"] for f in catalog.FOUNDATIONS.values()}
        assert rel in known

    def test_generated_cells_are_in_sync(self, path):
        nb = nbformat.read(path, as_version=4)
        header, install = sync_notebooks.expected_cells(path)
        assert nb.cells[0].source == header.source == header_card(path.stem).text
        assert nb.cells[1].source == install.source

    def test_exercise_cells_end_in_their_check_and_stub_inside_a_function(self, path):
        """As a stub, an exercise cell must run up to its check, which then says "not attempted": the solution
        sits in a function body (not at the top or in a class body, which would raise while defining), and
        nothing after the check calls the student's code."""
        nb = nbformat.read(path, as_version=4)
        book = course.book_version(nb, path.name)
        for label, indexes in course.exercise_code_cells(book, path.name).items():
            number = int(label.rsplit("-", 1)[1])
            for index in indexes:
                with warnings.catch_warnings():
                    warnings.simplefilter("error")  # an invalid escape in the stub's message warns in Colab
                    tree = ast.parse(book.cells[index].source)
                last = tree.body[-1]
                assert isinstance(last, ast.Expr) and isinstance(last.value, ast.Call) \
                    and getattr(last.value.func, "id", "") == f"check_{number}", \
                    f"cell {index}: the last statement must be the call check_{number}(...)"
                functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
                stubs_in_functions = sum(isinstance(n, ast.Raise) for f in functions for n in f.body)
                stubs = book.cells[index].source.count("raise NotImplementedError(")
                assert stubs == stubs_in_functions, f"cell {index}: a solution region outside a function body"
                for statement in tree.body[:-1]:
                    assert not isinstance(statement, ast.Expr), \
                        f"cell {index}: a call before the check (line {statement.lineno}); put it in the solution"

    def test_stored_executed_in_order_without_errors(self, path):
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        counts = [c.execution_count for c in code]
        assert None not in counts, "execute the notebook: make execute NB=..."
        assert counts == list(range(1, len(counts) + 1)), "cells were not executed top to bottom in one kernel"
        for cell in code:
            if "raises-exception" not in cell.metadata.get("tags", []):
                assert not [o for o in cell.outputs if o.output_type == "error"], cell.source[:80]

    def test_budgets(self, path):
        assert path.stat().st_size <= 1_000_000
        seconds = nbformat.read(path, as_version=4).metadata.get("qteach", {}).get("execution", {}).get("seconds")
        assert seconds is not None and seconds <= 30

    def test_follows_the_conventions(self, path):
        nb = nbformat.read(path, as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        setup = nb.cells[2]
        assert "hide-cell" in setup.metadata.get("tags", []) and "set_seed(0)" in setup.source
        assert "show_source(" in text, "show the library code, do not retype it"
        labels = re.findall(r":label: (ex-[a-z0-9_]+-\d+)", text)
        assert len(labels) >= 2 and all(label.startswith(f"ex-{path.stem}-") for label in labels)
        for label in labels:
            assert re.search(r"\{solution\}\s*" + re.escape(label), text), f"no solution for {label}"
        assert text.count("### BEGIN SOLUTION") == text.count("### END SOLUTION") >= 1
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                assert_directive_fences_nest(cell.source)
        assert "slider" in json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"]).lower() \
            or "slider_figure" in text or "staircase(" in text
        assert "ipywidgets" in text


def test_the_notebook_template_has_every_section_in_order():
    import jupytext

    nb = jupytext.read(ROOT / "tools" / "notebook_template.py")
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    sections = ["## The idea", "## The mechanism", "## Experiment", "## Explore", "## Paper vs here",
                "## Exercises", "## Summary"]
    assert [text.index(s) for s in sections] == sorted(text.index(s) for s in sections)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code[0].metadata.get("tags") == ["hide-cell"] and "def " not in code[0].source  # setup: no helpers
    assert any("machine-dependent" in c.metadata.get("tags", []) for c in code)
    assert any("### BEGIN SOLUTION" in c.source and "check_1(" in c.source for c in code)
    assert "display.table(" in "\n".join(c.source for c in code) and "print_table" not in text


# ------------------------------------------------------------------------------- what a student meets in Colab
@pytest.mark.parametrize("page", colab_copies.pages(), ids=str)
def test_colab_copy_is_generated_from_the_notebook(page):
    """The Colab button opens ``colab/<page>``: it must be what ``tools/colab_copies.py`` writes now (run
    ``make colab``, or ``make execute NB=...`` which rewrites it)."""
    copy = colab_copies.COLAB / page
    assert copy.is_file(), f"{copy.relative_to(ROOT)} is missing: run make colab"
    assert nbformat.read(copy, as_version=4) == colab_copies.expected_copy(page), \
        f"{copy.relative_to(ROOT)} is out of date: run make colab"


def test_no_stale_colab_copies():
    wanted = {colab_copies.COLAB / page for page in colab_copies.pages()}
    assert set(colab_copies.COLAB.glob("**/*.ipynb")) == wanted


@pytest.mark.parametrize("page", [p for p in colab_copies.pages() if p.parts[0] == "notebooks"], ids=str)
def test_colab_copy_shows_no_solution_outside_the_folds(page):
    source = nbformat.read(ROOT / page, as_version=4)
    copy = nbformat.read(colab_copies.COLAB / page, as_version=4)
    outside = "\n".join(re.sub(r"<details>.*?</details>", "", c.source, flags=re.DOTALL) for c in copy.cells)
    assert "BEGIN SOLUTION" not in outside and "{solution}" not in outside
    shown = course.leaked_solution_lines(source, outside)
    assert not shown, f"solution code visible in {page}'s Colab copy: {shown[:3]}"
    exercises = course.find_exercises(source)
    stubs = [c for c in copy.cells if c.get("metadata", {}).get("qteach", {}).get("exercise")]
    assert len(stubs) == sum(len(e.code_cells) for e in exercises)
    assert all("raise NotImplementedError" in c.source and "not attempted" in c.outputs[0].text for c in stubs)


def test_raw_nbval_skips_exactly_the_outputs_the_book_does_not_compare():
    """``pytest --nbval`` agrees with the book's notebook test only if the uncompared cells carry nbval's tag."""
    untagged = [str(p.relative_to(ROOT)) for p in nbval_tags.stored_notebooks()
                if nbval_tags.tag(nbformat.read(p, as_version=4))]
    assert not untagged, f"run python tools/nbval_tags.py: {untagged}"
    assert (ROOT / "tests" / "nbval_sanitize.cfg").is_file()


def test_nbval_tag_rule():
    code = nbformat.v4.new_code_cell
    figure = nbformat.v4.new_output("display_data", data={"application/vnd.plotly.v1+json": {}, "text/html": ""})
    text = nbformat.v4.new_output("stream", name="stdout", text="exact\n")
    cells = [code("x", metadata={"tags": ["machine-dependent"]}), code("import qteach", metadata={"tags": ["hide-cell"]}),
             code("fig.show()", outputs=[figure]), code("print('exact')", outputs=[text]),
             code("print('exact')", outputs=[text], metadata={"tags": [nbval_tags.TAG]}),
             nbformat.v4.new_markdown_cell("text"), code("viz.explore(f,\n    n=1);  # hides its value"),
             code("x = 'a;'  # b;\ny")]
    nb = nbformat.v4.new_notebook(cells=cells)
    assert nbval_tags.tag(nb)
    assert [nbval_tags.TAG in c.metadata.get("tags", []) for c in nb.cells] == [True, True, True, False, False, False, True, False]
    assert "tags" not in nb.cells[4].metadata  # a stale tag is removed with its empty list
    assert not nbval_tags.tag(nb)  # idempotent
