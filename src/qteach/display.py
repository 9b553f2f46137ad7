"""What a notebook shows besides figures: the paper's code, and the header card from the catalog."""

from __future__ import annotations

import inspect
from pathlib import PurePosixPath

from qteach import catalog
from qteach._validate import require_str


class Markdown:
    """Markdown that Jupyter, Colab and the book all render (a minimal ``IPython.display.Markdown``); a ``text``
    that is not a str raises ``TypeError``."""

    def __init__(self, text: str):
        self.text = require_str(text, "text")

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


def show_source(*objects) -> Markdown:
    """The source code of functions or classes as a highlighted Python block.

    Notebooks show a paper's mechanism with this instead of retyping it, so the book always shows the code
    that the tests check. No ``objects`` raises ``ValueError``; an object that is not a function, class or module
    ``TypeError``, and one without Python source (a built-in) ``ValueError``.
    """
    if not objects:
        raise ValueError("show_source needs at least one function, class or module in objects")
    blocks = []
    for obj in objects:
        if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj) or inspect.ismethod(obj)):
            raise TypeError(f"objects must be functions, classes or modules, got {type(obj).__name__}")
        try:
            blocks.append(inspect.getsource(obj).rstrip())
        except (OSError, TypeError) as error:
            raise ValueError(f"objects: no Python source for {obj!r} ({error})") from error
    return Markdown("```python\n" + "\n\n\n".join(blocks) + "\n```")


def colab_url(notebook: str) -> str:
    """The Colab address of a notebook of the repository (a path like ``notebooks/2016/xnor_net.ipynb``).

    Anything but a relative POSIX path inside the repository ending in ``.ipynb`` (no ``..``, ``.``, empty part
    or backslash) raises ``ValueError``.
    """
    path = PurePosixPath(notebook) if isinstance(notebook, str) else None
    if (path is None or str(path) != notebook or path.is_absolute() or ".." in path.parts or "\\" in notebook
            or not notebook.endswith(".ipynb")):
        raise ValueError(f"notebook must be a repository path ending in .ipynb, got {notebook!r}")
    owner_repo = catalog.REPOSITORY_URL.removeprefix("https://github.com/")
    return f"https://colab.research.google.com/github/{owner_repo}/blob/{catalog.REPOSITORY_BRANCH}/{notebook}"


def header_card(slug: str) -> Markdown:
    """The card at the top of a notebook, generated from the catalog: the title (the page's only level-1
    heading), year, authors and venue (where verified), tags, code link, Colab link and citation key. Foundations notebooks have no paper; they pass a
    slug of :data:`qteach.catalog.FOUNDATIONS`. A ``slug`` that is not a str raises ``TypeError``, an unknown one
    ``KeyError`` (as :func:`qteach.catalog.paper`)."""
    if require_str(slug, "slug") in catalog.FOUNDATIONS:
        entry = catalog.FOUNDATIONS[slug]
        lines = [f"# {entry['title']}", "", "> **Foundations**: the common ground of the papers in this book", ">",
                 f"> [Open in Colab]({colab_url(entry['notebook'])})"]
        return Markdown("\n".join(lines))
    p = catalog.paper(slug)
    authors = ", ".join(p.authors) if p.authors else "authors not verified (see the notes below)"
    venue = f" · {p.venue}" if p.venue else ""
    year = "" if p.venue and str(p.year) in p.venue else f" · {p.year}"
    code = f"[official code]({p.code_url})" if p.code_url else "no official code listed"
    lines = [f"# {p.title}", "", f"> {authors}{venue}{year}", ">",
             f"> Tags: {', '.join(p.tags)} · {code} · [Open in Colab]({colab_url(p.notebook)}) · "
             f"citation key `{p.bibkey}`"]
    return Markdown("\n".join(lines))
