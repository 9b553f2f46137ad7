"""What a notebook shows besides figures: the paper's code, result tables, and the header card from the catalog."""

from __future__ import annotations

import ast
import hashlib
import html
import inspect
import numbers
import re
import textwrap
from pathlib import PurePosixPath

from qteach import catalog
from qteach._validate import require_bool, require_str


class Markdown:
    """Markdown that Jupyter, Colab and the book all render (a minimal ``IPython.display.Markdown``); a ``text``
    that is not a str raises ``TypeError``."""

    def __init__(self, text: str):
        self.text = require_str(text, "text")

    def _repr_markdown_(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text


_CHECK_CALL = re.compile(r"^_?(require|check|validate)\w*$")
CHECKS_OMITTED = "...  # checks of the arguments: see the full source below"


def _called(node) -> str:
    if isinstance(node, ast.Call):
        return getattr(node.func, "id", None) or getattr(node.func, "attr", "")
    return ""


def _is_check(statement) -> bool:
    """An argument check: ``if ...: raise ...``, a call of a ``require_*``/``_check*`` validator, or such a call
    assigned back to the argument it checks (``x = require_tensor(x, "x")``). A validator whose result gets a new
    name (``k = _require_operands(a, b)``) defines something the mechanism uses, so it stays visible."""
    if isinstance(statement, ast.If):
        return not statement.orelse and all(isinstance(s, ast.Raise) for s in statement.body)
    if isinstance(statement, ast.Expr):
        return bool(_CHECK_CALL.match(_called(statement.value)))
    if isinstance(statement, ast.Assign) and len(statement.targets) == 1:
        target, value = statement.targets[0], statement.value
        if isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts):
            pairs = list(zip(target.elts, value.elts))
        else:
            pairs = [(target, v) for v in (value.elts if isinstance(value, ast.Tuple) else [value])]
        return all(isinstance(t, ast.Name) and _CHECK_CALL.match(_called(v)) and v.args
                   and any(isinstance(n, ast.Name) and n.id == t.id for n in ast.walk(v.args[0]))
                   for t, v in pairs)
    return False


def _defines_by_validator(statement) -> bool:
    """``k = _require_operands(a, b)``: a validator whose result the mechanism uses (shown, among the checks)."""
    return isinstance(statement, ast.Assign) and bool(_CHECK_CALL.match(_called(statement.value)))


def _omissions(node, found: list) -> None:
    """Line ranges ``(first, last, indent or None)`` of the docstrings and leading checks of ``node`` and of the
    functions and classes inside it (``indent``: where a placeholder line goes)."""
    body, start = node.body, 0
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        found.append((body[0].lineno, body[0].end_lineno, None))
        start = 1
    hidden = []
    for statement in body[start:-1]:  # the leading checks (the last statement is never one)
        if _is_check(statement):
            hidden.append(statement)
        elif not _defines_by_validator(statement):
            break
    for index, statement in enumerate(hidden):  # one placeholder line, where the first check was
        found.append((statement.lineno, statement.end_lineno, statement.col_offset if index == 0 else None))
    for statement in body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            _omissions(statement, found)


def mechanism(source: str) -> str:
    """``source`` (of functions or classes) without docstrings and without the argument checks at the top of
    each function, which a one-line placeholder stands for; the rest is unchanged."""
    source = textwrap.dedent(source)
    found: list = []
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            _omissions(node, found)
    lines = source.splitlines()
    for first, last, indent in sorted(found, reverse=True):
        lines[first - 1:last] = [] if indent is None else [" " * indent + CHECKS_OMITTED]
    return "\n".join(lines).strip("\n")


def show_source(*objects, full: bool = False) -> Markdown:
    """The source code of functions or classes as a highlighted Python block: by default the mechanism only
    (:func:`mechanism`: no docstrings, no argument checks), with the full source folded below it; with
    ``full=True`` the full source.

    Notebooks show a paper's mechanism with this instead of retyping it, so the book always shows the code
    that the tests check. No ``objects`` raises ``ValueError``; an object that is not a function, class or module
    ``TypeError``, and one without Python source (a built-in) ``ValueError``.
    """
    if not objects:
        raise ValueError("show_source needs at least one function, class or module in objects")
    sources = []
    for obj in objects:
        if not (inspect.isfunction(obj) or inspect.isclass(obj) or inspect.ismodule(obj) or inspect.ismethod(obj)):
            raise TypeError(f"objects must be functions, classes or modules, got {type(obj).__name__}")
        try:
            sources.append(textwrap.dedent(inspect.getsource(obj)).rstrip())
        except (OSError, TypeError) as error:
            raise ValueError(f"objects: no Python source for {obj!r} ({error})") from error
    whole = "\n\n\n".join(sources)
    if require_bool(full, "full"):
        return Markdown(f"```python\n{whole}\n```")
    shown = "\n\n\n".join(mechanism(source) for source in sources)
    text = f"```python\n{shown}\n```"
    if shown != whole:
        text += ("\n\n<details><summary>Full source, with docstrings and argument checks</summary>\n\n"
                 f"```python\n{whole}\n```\n\n</details>")
    return Markdown(text)


_NUMBER = re.compile(r"^\s*[-+\u2212]?\d[\d,]*(\.\d+)?")


def _sort_key(cell: str) -> str:
    """The number a cell starts with (``97.3 %``, ``1,024``, ``-4.0 points``), else the text, for sorting."""
    match = _NUMBER.match(cell)
    return match.group(0).replace(",", "").replace("\u2212", "-").strip() if match else cell


_SORT_SCRIPT = """<script>(function () {
  var table = document.getElementById("%s"); if (!table || !table.tHead) { return; }
  Array.prototype.forEach.call(table.tHead.rows[0].cells, function (th, column) {
    th.style.cursor = "pointer"; th.title = "click to sort";
    th.addEventListener("click", function () {
      var body = table.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var up = th.getAttribute("data-order") !== "up";
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute("data-key"), y = b.cells[column].getAttribute("data-key");
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
        return up ? order : -order; });
      rows.forEach(function (row) { body.appendChild(row); });
      th.setAttribute("data-order", up ? "up" : "down"); }); });
})();</script>"""


class Table:
    """A results table: HTML in the book, Jupyter and Colab (click a header to sort), aligned text elsewhere.

    ``header`` names the columns, ``rows`` holds one list of cells per row (formatted as you want them shown);
    ``align`` is one ``"<"`` (left) or ``">"`` (right) per column, by default the first column left and the
    others right. Rows of another length than ``header`` raise ``ValueError``.
    """

    def __init__(self, header, rows, align=None):
        if isinstance(header, str) or not isinstance(header, (list, tuple)) or not header:
            raise TypeError("header must be a non-empty list of column names")
        if isinstance(rows, str) or not isinstance(rows, (list, tuple)):
            raise TypeError(f"rows must be a list of rows, got {type(rows).__name__}")
        self.header = [str(h) for h in header]
        self.rows = []
        for index, row in enumerate(rows):
            if isinstance(row, str) or not isinstance(row, (list, tuple)) or len(row) != len(self.header):
                raise ValueError(f"rows[{index}] must be a list of {len(self.header)} cells, got {row!r}")
            self.rows.append([str(cell) for cell in row])
        self.align = list(align) if align is not None else ["<"] + [">"] * (len(self.header) - 1)
        if len(self.align) != len(self.header) or not set(self.align) <= {"<", ">"}:
            raise ValueError(f"align must be one '<' or '>' per column, got {align!r}")

    @property
    def text(self) -> str:
        lines = [self.header, *self.rows]
        widths = [max(len(line[i]) for line in lines) for i in range(len(self.header))]
        fmt = "  ".join(f"{{:{a}{w}}}" for a, w in zip(self.align, widths))
        return "\n".join([fmt.format(*self.header).rstrip(), "  ".join("-" * w for w in widths),
                          *(fmt.format(*row).rstrip() for row in self.rows)])

    def _repr_html_(self) -> str:
        ident = "qteach-table-" + hashlib.sha1(self.text.encode()).hexdigest()[:12]
        side = {"<": "left", ">": "right"}

        def cells(tag, row, keys=False):
            return "".join(
                f'<{tag} style="text-align:{side[a]}"' + (f' data-key="{html.escape(_sort_key(c))}"' if keys else "")
                + f">{html.escape(c)}</{tag}>" for c, a in zip(row, self.align))

        body = "".join(f"<tr>{cells('td', row, keys=True)}</tr>" for row in self.rows)
        return (f'<div style="overflow-x:auto"><table id="{ident}" class="table qteach-table">'
                f"<thead><tr>{cells('th', self.header)}</tr></thead><tbody>{body}</tbody></table></div>"
                + _SORT_SCRIPT % ident)

    def __repr__(self) -> str:
        return self.text


def table(header, rows, align=None) -> None:
    """Show a results table (see :class:`Table`): as HTML in a notebook, as aligned text in a terminal. Use it
    where a notebook would print a table; it returns nothing, so it can stand anywhere in a cell."""
    shown = Table(header, rows, align)
    try:
        from IPython import get_ipython
        from IPython.display import display as show
    except ImportError:  # pragma: no cover - IPython comes with Jupyter
        get_ipython = None
    if get_ipython is not None and get_ipython() is not None:
        show(shown)
    else:
        print(shown.text)


#: The mime-type prefix under which a glued value is stored (myst-nb's ``GLUE_PREFIX``): hidden in Jupyter,
#: read by the book build.
GLUE_PREFIX = "application/papermill.record/"


def glue_bundle(name: str, value) -> tuple[dict, dict]:
    """The (data, metadata) of the output that :func:`glue` displays: ``repr(value)`` as hidden plain text,
    and the name where myst-nb looks for it. ``name`` must be an identifier (``[A-Za-z_][A-Za-z0-9_]*``);
    ``value`` a number (not a bool) or a str; otherwise ``ValueError``/``TypeError``."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", require_str(name, "name")):
        raise ValueError(f"name must be an identifier such as 'binary_speedup', got {name!r}")
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, str)):
        raise TypeError(f"value must be a number or a str, got {type(value).__name__}")
    if isinstance(value, numbers.Real) and not isinstance(value, int):
        value = float(value)  # NumPy and torch scalars: stored as a plain float
    return {GLUE_PREFIX + "text/plain": repr(value)}, {"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}}


def glue(name: str, value) -> None:
    """Keep ``value`` under ``name`` for the prose of the page, without showing it, as myst-nb's
    ``glue(name, value, display=False)`` does but without needing myst-nb (Colab does not have it).

    A markdown cell then quotes it with ``{glue:text}`name:.1f``` (a format spec rounds a number): the book
    pastes the value stored in the executed notebook, and the Colab copies and handouts get it pasted in as
    text (:mod:`qteach.course`). Use it for the numbers a machine-dependent cell measures, and say in the prose
    that they were measured on the machine that built the page.
    """
    data, metadata = glue_bundle(name, value)
    from IPython.display import display as show

    show(data, raw=True, metadata=metadata)


def colab_url(notebook: str) -> str:
    """The Colab address of a notebook of the repository (a path like ``notebooks/2016/xnor_net.ipynb``): that of
    its Colab copy (``colab/<path>``, where the exercises are stubs and the solutions folded).

    Anything but a relative POSIX path inside the repository ending in ``.ipynb`` (no ``..``, ``.``, empty part
    or backslash) raises ``ValueError``.
    """
    path = PurePosixPath(notebook) if isinstance(notebook, str) else None
    if (path is None or str(path) != notebook or path.is_absolute() or ".." in path.parts or "\\" in notebook
            or not notebook.endswith(".ipynb")):
        raise ValueError(f"notebook must be a repository path ending in .ipynb, got {notebook!r}")
    owner_repo = catalog.REPOSITORY_URL.removeprefix("https://github.com/")
    return (f"https://colab.research.google.com/github/{owner_repo}/blob/{catalog.REPOSITORY_BRANCH}/"
            f"{catalog.COLAB_FOLDER}/{notebook}")


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
