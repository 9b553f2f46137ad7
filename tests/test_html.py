"""Browser checks of the built book (``make test-html`` builds it first).

Every page is opened in headless Chromium with all network access blocked: it must load without JavaScript
errors and without asking for anything outside the book; every plotly figure must actually be drawn; math must
be typeset by the local MathJax; every notebook page's Colab button must point at that notebook's Colab copy.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qteach import catalog, comparison

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PAGES = sorted(p for p in HTML.glob("**/*.html") if "_static" not in p.parts and "_sources" not in p.parts)
NOTEBOOKS = sorted(p.relative_to(ROOT) for p in (ROOT / "notebooks").glob("**/*.ipynb"))
WITH_COLAB_BUTTON = set(NOTEBOOKS) | {Path(page) for page in comparison.pages()}
"""The pages built from a notebook (the chapters and the results pages): each has a Colab button."""

# Two messages of the theme stack itself, not of the book, seen on every page of any Jupyter Book 1 site: the
# sphinx-thebe snippet is included twice (a redeclared const; thebe is disabled here), and pydata-sphinx-theme
# finds no stored theme mode on a file:// page. Anything else fails the test.
KNOWN_THEME_NOISE = ("Identifier 'THEBE_JS_URL' has already been declared", "Got invalid theme mode")

pytestmark = pytest.mark.skipif(not HTML.is_dir(), reason="build the book first: make book")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail("headless Chromium is missing: make browser (apt-get install chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
            "--no-first-run", "--disable-sync", "--allow-file-access-from-files"])
        yield browser
        browser.close()


def open_page(browser, path: Path):
    """Open ``path``; return (page, javascript errors, requests that tried to leave the book)."""
    page = browser.new_page()
    errors, outside = [], []
    def record(text):
        if not text.startswith(KNOWN_THEME_NOISE):
            errors.append(text)

    page.on("pageerror", lambda exc: record(str(exc)))
    page.on("console", lambda msg: record(msg.text) if msg.type == "error" else None)

    def route(r):
        if r.request.url.startswith(("file://", "data:", "blob:")):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri(), wait_until="load")
    page.wait_for_timeout(300)
    return page, errors, outside


def test_the_book_has_its_pages():
    names = {str(p.relative_to(HTML)) for p in PAGES}
    assert {"book/intro.html", "book/how_to_use.html", "book/api.html", "book/bibliography.html",
            "book/results.html", "book/instructors.html"} <= names
    assert {f"book/_generated/years/{y}.html" for y in catalog.YEARS} <= names
    assert {str(nb.with_suffix(".html")) for nb in NOTEBOOKS} <= names
    assert {page.removesuffix(".ipynb") + ".html" for page in comparison.pages()} <= names


def colab_url(notebook: Path) -> str:
    """Where a notebook page's Colab button must point: the notebook's Colab copy on the book's repository."""
    owner_repo = catalog.REPOSITORY_URL.removeprefix("https://github.com/")
    return (f"https://colab.research.google.com/github/{owner_repo}/blob/"
            f"{catalog.REPOSITORY_BRANCH}/{catalog.COLAB_FOLDER}/{notebook.as_posix()}")


@pytest.mark.parametrize("path", PAGES, ids=lambda p: str(p.relative_to(HTML)))
def test_page_loads_offline_without_errors(browser, path):
    """One visit per page (the slow part of these checks): no errors, nothing asked of the network, every figure
    drawn, math typeset, and on a notebook's page, the Colab button pointing at that notebook's Colab copy."""
    page, errors, outside = open_page(browser, path)
    try:
        assert not errors, errors
        assert not outside, f"the page asked the network for {outside}"
        figures = page.locator(".plotly-graph-div")
        for i in range(figures.count()):
            figures.nth(i).scroll_into_view_if_needed()
            assert figures.nth(i).locator(".main-svg").count() > 0, f"plotly figure {i} was not drawn"
        if page.locator("div.math, span.math").count():
            page.wait_for_selector("mjx-container", state="attached", timeout=10_000)
        notebook = path.relative_to(HTML).with_suffix(".ipynb")
        if notebook in WITH_COLAB_BUTTON:
            links = page.locator("a[href*='colab.research.google.com']")
            hrefs = {links.nth(i).get_attribute("href") for i in range(links.count())}
            assert colab_url(notebook) in hrefs, hrefs
    finally:
        page.close()


def test_every_notebook_page_is_visited_for_its_colab_button():
    assert {HTML / nb.with_suffix(".html") for nb in WITH_COLAB_BUTTON} <= set(PAGES)


@pytest.mark.parametrize("page_path", ["book/intro.html", "book/_generated/tags/binarization.html"])
def test_clicking_a_paper_on_the_map_opens_its_chapter(browser, page_path):
    page, errors, _ = open_page(browser, HTML / page_path)
    try:
        target = page.evaluate("""() => {
            const gd = document.querySelector('.plotly-graph-div');
            for (const trace of gd.data) {
                const i = (trace.text || []).indexOf('XNOR-Net');
                if (i >= 0) { gd.emit('plotly_click', {points: [{customdata: trace.customdata[i]}]}); return true; }
            }
            return false; }""")
        assert target, "XNOR-Net is not on the map"
        page.wait_for_url("**/notebooks/2016/xnor_net.html", timeout=20_000)  # a loaded machine needs more than 5 s
        assert not errors, errors
    finally:
        page.close()


def _soup(path: Path):
    from bs4 import BeautifulSoup

    return BeautifulSoup(path.read_text(encoding="utf-8"), "html.parser")


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=str)
def test_exercises_are_unsolved_and_numbered_as_everywhere_else(notebook):
    """The published page shows each code exercise as its stub, with the line its self-check prints; solution code
    only inside the folded solutions; and each exercise numbered as its label, the handouts and the grader say."""
    import nbformat

    from qteach import course

    source = nbformat.read(ROOT / notebook, as_version=4)
    soup = _soup(HTML / notebook.with_suffix(".html"))
    exercises = course.find_exercises(source, str(notebook))
    for exercise in exercises:
        box = soup.find(id=exercise.label)
        assert box is not None, f"no exercise {exercise.label} on the page"
        title = box.find(class_="admonition-title").get_text(" ", strip=True)
        assert title.startswith(f"Exercise {exercise.number}"), title
    solutions = [s.get_text(" ", strip=True) for s in soup.select("div.solution")]
    assert [s.split(" (")[0].split(" ")[:4] for s in solutions] == \
        [["Solution", "to", "Exercise", str(e.number)] for e in exercises], solutions
    for folded in soup.select("div.solution"):
        assert "dropdown" in folded.get("class", []), "a solution that is not folded"
        folded.decompose()
    page = soup.get_text("\n")
    assert "BEGIN SOLUTION" not in page
    shown = course.leaked_solution_lines(source, page)
    assert not shown, f"solution code visible outside the folded solutions: {shown[:3]}"
    code_exercises = [e for e in exercises if e.is_code]
    assert page.count("not attempted yet") == sum(len(e.code_cells) for e in code_exercises)
