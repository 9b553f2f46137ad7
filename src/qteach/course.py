"""The classroom kit: find a notebook's exercises, write student versions, grade submissions.

Exercises follow the book's convention (see CONTRIBUTING.md): a markdown cell with an ``{exercise}`` directive
labelled ``ex-<slug>-<n>``; for a code exercise, a code cell whose solution sits between ``### BEGIN SOLUTION``
and ``### END SOLUTION`` followed by the self-check call; and a markdown ``{solution}`` directive. A self-check
prints ``✅ ex-<slug>-<n> passed: ...`` or raises ``AssertionError("ex-<slug>-<n>: <hint>")``.
"""

from __future__ import annotations

import ast
import copy
import difflib
import hashlib
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
_EXERCISE = re.compile(r"^(?P<fence>`{3,}|:{3,})\{exercise\}(?P<title>[^\n]*)\n(?P<body>.*?)^(?P=fence)\s*$",
                       re.MULTILINE | re.DOTALL)
_SOLUTION = re.compile(r"^(?P<fence>`{3,}|:{3,})\{solution\}[^\n]*\n.*?^(?P=fence)[ \t]*(?:\n|\Z)",
                       re.MULTILINE | re.DOTALL)
_LABEL = re.compile(r"^:label:\s*(ex-[a-z0-9_]+-(\d+))\s*$", re.MULTILINE)
_CHECK_PASSED = re.compile(r"✅ (ex-[a-z0-9_]+-\d+) passed")
_PLOTLY = "application/vnd.plotly.v1+json"
_CHECK_NOT_ATTEMPTED = re.compile(r"⬜ (ex-[a-z0-9_]+-\d+) not attempted")


class SolutionMarkerError(ValueError):
    """A code cell whose solution markers are missing, nested, or out of order."""


@dataclass(frozen=True)
class Exercise:
    """One exercise of a notebook."""

    label: str
    number: int
    topic: str
    statement_cell: int
    code_cells: tuple[int, ...]

    @property
    def is_code(self) -> bool:
        return bool(self.code_cells)


def _topic(title: str, body: str) -> str:
    if title.strip():
        return title.strip()
    text = " ".join(line for line in body.splitlines() if line.strip() and not line.startswith(":"))
    text = re.sub(r"[`*$]", "", text)
    first = re.split(r"(?<=[.?!])\s", text, maxsplit=1)[0]
    return first if len(first) <= 100 else first[:97] + "..."


def _check_notebook(nb, name) -> None:
    if not isinstance(nb, nbformat.NotebookNode) or not isinstance(nb.get("cells"), list):
        raise TypeError(f"nb: expected a notebook (nbformat.NotebookNode), got {type(nb).__name__}")
    if not isinstance(name, str):
        raise TypeError(f"name: expected a str, got {type(name).__name__}")


def _notebook_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path: expected a file path, got {type(path).__name__}")
    if Path(path).suffix != ".ipynb":
        raise ValueError(f"path: {path} is not a notebook (.ipynb)")
    if not Path(path).is_file():
        raise ValueError(f"path: {path}: no such file")
    return Path(path)


def read_notebook(path):
    """Read a notebook file; ``ValueError`` naming the file if it is not a valid notebook."""
    path = _notebook_path(path)
    invalid: dict = {}
    try:
        nb = nbformat.read(path, as_version=4, capture_validation_error=invalid)
    except Exception as error:  # nbformat raises many kinds (JSON, conversion, OS errors)
        raise ValueError(f"{path}: not a readable notebook ({type(error).__name__}: {error})") from None
    if invalid:
        message = str(invalid["ValidationError"]).splitlines()[0]
        raise ValueError(f"{path}: not a valid notebook ({message})")
    return nb


def solution_regions(source: str, where: str = "cell") -> list[tuple[int, int]]:
    """Line index pairs ``(begin, end)`` of the solution regions of a code cell; raises
    :class:`SolutionMarkerError` if markers are unbalanced, nested or reversed."""
    if not isinstance(source, str):
        raise TypeError(f"source: expected a str, got {type(source).__name__}")
    regions, begin = [], None
    for index, line in enumerate(source.splitlines()):
        stripped = line.strip()
        if stripped == BEGIN:
            if begin is not None:
                raise SolutionMarkerError(f"{where}: line {index + 1}: '{BEGIN}' inside an open solution region")
            begin = index
        elif stripped == END:
            if begin is None:
                raise SolutionMarkerError(f"{where}: line {index + 1}: '{END}' without a matching '{BEGIN}'")
            regions.append((begin, index))
            begin = None
    if begin is not None:
        raise SolutionMarkerError(f"{where}: line {begin + 1}: '{BEGIN}' is never closed by '{END}'")
    return regions


def find_exercises(nb, name: str = "notebook") -> list[Exercise]:
    """The exercises of a notebook, in order; a code cell with solution markers belongs to the exercise stated
    above it."""
    _check_notebook(nb, name)
    exercises: list[dict] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "markdown":
            for match in _EXERCISE.finditer(cell.source):
                label = _LABEL.search(match.group("body"))
                if label is None:
                    raise ValueError(f"{name}: cell {index}: an exercise without ':label: ex-<slug>-<n>'")
                exercises.append(dict(label=label.group(1), number=int(label.group(2)),
                                      topic=_topic(match.group("title"), match.group("body")),
                                      statement_cell=index, code_cells=[]))
        elif cell.cell_type == "code" and solution_regions(cell.source, f"{name}: cell {index}"):
            if not exercises:
                raise SolutionMarkerError(f"{name}: cell {index}: solution markers before any exercise statement")
            exercises[-1]["code_cells"].append(index)
    return [Exercise(**{**e, "code_cells": tuple(e["code_cells"])}) for e in exercises]


def exercise_code_cells(nb, name: str = "notebook") -> dict[str, list[int]]:
    """Map each code exercise's label to its code cells: in a student version, the cells tagged by
    :func:`student_version`; in a notebook with solutions, the cells holding solution markers."""
    _check_notebook(nb, name)
    tagged: dict[str, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        label = cell.metadata.get("qteach", {}).get("exercise")
        if cell.cell_type == "code" and label:
            tagged.setdefault(label, []).append(index)
    if tagged:
        return tagged
    return {e.label: list(e.code_cells) for e in find_exercises(nb, name) if e.is_code}


def _cell_hash(cell) -> str:
    return hashlib.sha256(f"{cell.cell_type}\x00{cell.source.strip()}".encode()).hexdigest()[:16]


def _digest(nb) -> str:
    """A hash of every cell's type and source (outputs and metadata aside)."""
    return hashlib.sha256("".join(_cell_hash(c) for c in nb.cells).encode()).hexdigest()[:16]


def _protected(nb, exercise_cells: set[int]) -> list[list]:
    """``[index, hash]`` of each code cell a student should not edit: every non-empty one but the exercises'."""
    return [[index, _cell_hash(cell)] for index, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and index not in exercise_cells and cell.source.strip()]


def _edited_cells(nb, exercise_cells: set[int]) -> list[str]:
    """How the code outside the exercises differs from the student version ``nb`` was handed out as:
    ``cell <i> changed``, ``cell <i> added``, ``cell <j> of the handout removed`` (empty if not a student
    version)."""
    recorded = nb.metadata.get("qteach", {}).get("student", {}).get("protected")
    if recorded is None:
        return []
    now = _protected(nb, exercise_cells)
    matcher = difflib.SequenceMatcher(None, [h for _, h in recorded], [h for _, h in now], autojunk=False)
    edits = []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        paired = min(i2 - i1, j2 - j1)  # a replaced run pairs old and new cells; the rest were added or removed
        edits += [f"cell {now[j][0]} changed" for j in range(j1, j1 + paired)]
        edits += [f"cell {now[j][0]} added" for j in range(j1 + paired, j2)]
        edits += [f"cell {recorded[i][0]} of the handout removed" for i in range(i1 + paired, i2)]
    return edits


def is_unedited_output(nb) -> bool:
    """Whether ``nb`` is a student version or solutions file written here whose cells nobody has edited since
    (so that writing it again loses nothing)."""
    _check_notebook(nb, "notebook")
    info = nb.metadata.get("qteach", {})
    recorded = (info.get("student") or info.get("solutions") or {}).get("digest")
    return recorded is not None and recorded == _digest(nb)


def _strip_solution_code(source: str, number: int, topic: str, where: str) -> str:
    lines = source.splitlines()
    for begin, end in reversed(solution_regions(source, where)):
        indent = re.match(r"\s*", lines[begin]).group(0)
        message = f"Exercise {number}: {topic}".replace("\\", "\\\\").replace('"', "'")  # a valid str literal
        lines[begin:end + 1] = [f'{indent}raise NotImplementedError("{message}")']
    return "\n".join(lines)


def _with_stubs(nb, exercises: list[Exercise], name: str):
    """A copy of ``nb`` whose exercise code holds the stub ``raise NotImplementedError("Exercise <n>: ...")`` and,
    as output, the line the self-check prints for a stub (``⬜ ... not attempted yet``); each exercise code cell
    is tagged ``qteach.exercise`` in its metadata so that the grader finds it after the student has edited it."""
    from qteach.checks import not_attempted_line

    copied = copy.deepcopy(nb)
    for exercise in exercises:
        for index in exercise.code_cells:
            cell = copied.cells[index]
            cell.source = _strip_solution_code(cell.source, exercise.number, exercise.topic, f"{name}: cell {index}")
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                   text=not_attempted_line(exercise.label) + "\n")]
            cell.execution_count = None
            cell.metadata.setdefault("qteach", {})["exercise"] = exercise.label
    copied.metadata.setdefault("qteach", {}).pop("execution", None)
    return copied


def _answer_cell(exercise: Exercise):
    """The markdown cell under a written exercise where the student writes the answer."""
    cell = nbformat.v4.new_markdown_cell(f"**Your answer to Exercise {exercise.number}:** *(double-click to write)*",
                                         metadata={"qteach": {"answer": exercise.label}})
    cell.id = f"answer-{exercise.label}"  # not random: a generated copy is the same each time it is written
    return cell


def _is_answer_cell(cell) -> bool:
    """A markdown cell where a student writes the answer to a written exercise (metadata ``qteach.answer``)."""
    return cell.cell_type == "markdown" and bool(cell.metadata.get("qteach", {}).get("answer"))


def _with_answer_cells(nb, exercises: list[Exercise]) -> None:
    """Insert an answer cell after each written exercise's statement, unless the notebook has its own (a
    markdown cell with ``qteach.answer`` set to the label, e.g. a template of the answer's parts); in place."""
    own = {c.metadata["qteach"]["answer"] for c in nb.cells if _is_answer_cell(c)}
    written = {e.statement_cell: e for e in exercises if not e.is_code and e.label not in own}
    cells = []
    for index, cell in enumerate(nb.cells):
        cells.append(cell)
        if index in written:
            cells.append(_answer_cell(written[index]))
    nb.cells = cells


def _mark_as_handout(nb, exercises: list[Exercise], name: str, kind: str) -> None:
    """Record what the grader needs: the source, the exercises, a hash of every code cell outside them."""
    exercise_cells = {i for cells in exercise_code_cells(nb, name).values() for i in cells}
    nb.metadata["qteach"]["student"] = {"source": name, "exercises": [e.label for e in exercises], "kind": kind,
                                        "protected": _protected(nb, exercise_cells), "digest": _digest(nb)}


def _drop_solutions(text: str) -> str:
    return _SOLUTION.sub("", text).rstrip()


_GLUE_ROLE = re.compile(r"\{glue(?::(?:any|text)?)?\}`([A-Za-z_][A-Za-z0-9_]*)(?::([^`]*))?`")


def glued_values(nb) -> dict[str, str]:
    """The values that ``nb``'s stored outputs keep for its prose (:func:`qteach.display.glue`, or myst-nb's
    ``glue``): name -> the stored plain text."""
    values = {}
    for cell in nb.cells:
        for output in cell.get("outputs", []) if cell.cell_type == "code" else []:
            record = output.get("metadata", {}).get("scrapbook")
            if record:
                text = output.get("data", {}).get(record.get("mime_prefix", "") + "text/plain")
                if text is not None:
                    values[record["name"]] = "".join(text) if isinstance(text, list) else text
    return values


def _format_glued(text: str, spec: str) -> str:
    """A glued value as the book's ``{glue:text}`` role writes it (myst-nb's ``format_plain_text``)."""
    try:
        value = ast.literal_eval(text)
    except (SyntaxError, ValueError):
        value = text
    if not spec:
        return str(value)
    kind = spec[-1]
    if kind in "eEfFgGn%":
        value = float(value)
    elif kind in "bcdoxX":
        value = int(value)
    elif kind == "s":
        value = str(value)
    return format(value, spec)


def paste_glue(text: str, values: dict[str, str]) -> str:
    """Markdown ``text`` with each ``{glue:text}`name:spec``` role (also ``{glue}``, ``{glue:}``,
    ``{glue:any}``) whose name is in ``values`` (:func:`glued_values`) replaced by the value it shows in the book:
    Jupyter and Colab do not know the role. Other roles are left as they are."""

    def paste(match):
        name, spec = match.group(1), match.group(2) or ""
        return _format_glued(values[name], spec) if name in values else match.group(0)

    return _GLUE_ROLE.sub(paste, text)


def student_version(nb, name: str = "notebook"):
    """A copy of ``nb`` to hand out: exercise code replaced by its stub (:func:`_with_stubs`), ``{solution}``
    blocks removed, an answer cell under each written exercise, glued numbers pasted into the prose
    (:func:`paste_glue`); everything else intact.

    A hash of each code cell outside the exercises lets the grader name the cells edited elsewhere, and a digest
    of all cells tells :func:`is_unedited_output`.
    """
    exercises = find_exercises(nb, name)
    student = _with_stubs(nb, exercises, name)
    glued = glued_values(nb)
    for cell in student.cells:
        if cell.cell_type == "markdown":
            cell.source = paste_glue(_drop_solutions(cell.source), glued)
    _with_answer_cells(student, exercises)  # before empty cells go: the statement indexes are the source's
    student.cells = [c for c in student.cells if c.cell_type != "markdown" or c.source.strip()]
    _mark_as_handout(student, exercises, name, "student")
    return student


def book_version(nb, name: str = "notebook"):
    """The notebook as the web book shows it: exercise code as the stub a student starts from, with the line its
    self-check prints; solutions only in the folded ``{solution}`` dropdowns; no answer cells (a page is read,
    not written in)."""
    book = _with_stubs(nb, find_exercises(nb, name), name)
    book.cells = [c for c in book.cells if not _is_answer_cell(c)]
    return book


def _colab_markdown(text: str) -> str:
    """MyST exercise and solution directives as Markdown that Colab and Jupyter render: a bold "Exercise <n>."
    and a folded ``<details>`` "Solution to Exercise <n>"."""

    def exercise(match):
        body = match.group("body")
        label = _LABEL.search(body)
        title = match.group("title").strip()
        text = "\n".join(line for line in body.splitlines() if not re.match(r"^:[a-z]+:", line)).strip()
        heading = f"**Exercise {label.group(2)}" + (f" ({title})" if title else "") + ".**" if label else "**Exercise.**"
        return f"{heading} {text}\n"

    def solution(match):
        lines = match.group(0).splitlines()
        label = re.search(r"ex-[a-z0-9_]+-(\d+)", lines[0])
        body = "\n".join(line for line in lines[1:-1] if not re.match(r"^:[a-z]+:", line)).strip()
        summary = f"Solution to Exercise {label.group(1)}" if label else "Solution"
        return f"<details><summary><b>{summary}</b> (click to show)</summary>\n\n{body}\n\n</details>\n"

    return _EXERCISE.sub(exercise, _SOLUTION.sub(solution, text)).rstrip()


def colab_version(nb, name: str = "notebook"):
    """The notebook the book's Colab buttons open (stored under ``colab/`` in the repository): the book version
    (:func:`book_version`), its exercise and solution directives written as plain Markdown with the solutions
    folded (``<details>``), an answer cell under each written exercise, glued numbers pasted into the prose
    (:func:`paste_glue`), and stored plotly figures dropped (they are drawn with the book's own plotly.js, which
    Colab does not have; running a cell draws them again)."""
    exercises = find_exercises(nb, name)
    colab = _with_stubs(nb, exercises, name)
    glued = glued_values(nb)
    for cell in colab.cells:
        if cell.cell_type == "markdown":
            cell.source = paste_glue(_colab_markdown(cell.source), glued)
        elif cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if _PLOTLY not in o.get("data", {})]
    _with_answer_cells(colab, exercises)
    _mark_as_handout(colab, exercises, name, "colab")
    return colab


def leaked_solution_lines(nb, shown: str, name: str = "notebook") -> list[str]:
    """The lines of ``nb``'s solution code (lines of 12 characters or more) that the text ``shown`` (a page or
    notebook given to students) contains, though nothing but the solutions holds them (not the page's other
    code, its outputs or its prose): empty when ``shown`` gives no solution away."""
    exercises = find_exercises(nb, name)
    public = []  # what the book version shows: code, its outputs, and the markdown without the solutions
    for cell in _with_stubs(nb, exercises, name).cells:
        public.append(cell.source if cell.cell_type == "code" else _drop_solutions(cell.source))
        for output in cell.get("outputs", []):
            public += [str(output.get("text", ""))] + [str(v) for v in output.get("data", {}).values()]
    public = "\n".join(public)
    solution = set()
    for exercise in exercises:
        for index in exercise.code_cells:
            lines = nb.cells[index].source.splitlines()
            for begin, end in solution_regions(nb.cells[index].source):
                solution |= {line.strip() for line in lines[begin + 1:end] if len(line.strip()) >= 12}
    return sorted(line for line in solution if line in shown and line not in public)


def solutions_only(nb, name: str = "notebook"):
    """A notebook holding only the exercises: statements, solution code and solution explanations."""
    exercises = find_exercises(nb, name)
    keep = sorted({e.statement_cell for e in exercises} | {i for e in exercises for i in e.code_cells}
                  | {i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and _SOLUTION.search(c.source)})
    out = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.metadata))
    out.cells = [copy.deepcopy(nb.cells[i]) for i in keep]
    out.cells.insert(0, nbformat.v4.new_markdown_cell(f"# Solutions: {name}"))
    info = out.metadata.setdefault("qteach", {})
    info.pop("student", None)
    info["solutions"] = {"source": name, "digest": _digest(out)}
    return out


@dataclass
class ExerciseResult:
    notebook: str
    exercise: str
    number: int
    result: str  # pass, fail, not attempted, error, no check ran, timeout, kernel died, not run, not graded
    detail: str = ""


def _exercise_outcome(cell, label: str) -> tuple[str, str]:
    for output in cell.get("outputs", []):
        if output.output_type == "error":
            if output.ename == "NotImplementedError":
                return "not attempted", ""
            if output.ename == "AssertionError" and output.evalue.startswith(label):
                return "fail", output.evalue
            return "error", f"{output.ename}: {output.evalue}"[:300]
        text = output.get("text", "")
        if any(m == label for m in _CHECK_PASSED.findall(text)):
            return "pass", ""
        if any(m == label for m in _CHECK_NOT_ATTEMPTED.findall(text)):
            return "not attempted", ""
    return "no check ran", ""


def grade_notebook(path, timeout: int = 120, name: str | None = None) -> tuple[dict, list[ExerciseResult]]:
    """Execute a submitted notebook (errors allowed) and report each exercise's outcome.

    Returns ``(notebook status, results)``, both labelled ``name`` (default: the file's name). The status's
    ``run`` is ``clean``, ``error`` (a cell outside the exercises raised), ``timeout``, ``kernel died``,
    ``unreadable`` or ``no exercises`` (then nothing is run), with a ``detail``; ``edited_outside_exercises``
    lists the code cells changed, added or removed outside the exercises since the student version.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    path = _notebook_path(path)
    if isinstance(timeout, bool) or not isinstance(timeout, int):
        raise TypeError(f"timeout: expected whole seconds (an int), got {type(timeout).__name__}")
    if timeout <= 0:
        raise ValueError(f"timeout: must be > 0 seconds, got {timeout}")
    name = path.name if name is None else name
    status = {"notebook": name, "run": "clean", "edited_outside_exercises": [], "detail": ""}
    try:
        nb = read_notebook(path)
        exercises = find_exercises(nb, name)  # malformed exercise markup is reported like an unreadable file
    except ValueError as error:  # an unreadable or malformed submission is reported, not crashed on
        status.update(run="unreadable", detail=str(error)[:300])
        return status, []
    if not exercises:
        status.update(run="no exercises", detail="no exercise in this notebook: is it the right file?")
        return status, []
    cells_of = exercise_code_cells(nb, name)
    status["edited_outside_exercises"] = _edited_cells(nb, {i for cells in cells_of.values() for i in cells})
    running = {"cell": None}

    def remember(cell, cell_index, **_):
        running["cell"] = cell_index

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True, on_cell_start=remember,
                            resources={"metadata": {"path": str(path.parent)}})
    stopped_at, stopped_by = None, "timeout"
    try:
        client.execute()
    except CellTimeoutError:
        stopped_at = running["cell"]
        status.update(run="timeout", detail=f"cell {stopped_at} ran longer than {timeout} s")
    except DeadKernelError:
        stopped_at, stopped_by = running["cell"], "kernel died"
        status.update(run="kernel died", detail=f"the kernel died in cell {stopped_at} (a crash, an exit, or "
                                                "out of memory)")
    run_status, results = grade_outputs(nb, name, stopped_at=stopped_at, stopped_by=stopped_by)
    if status["run"] == "clean":
        status.update(run_status)
    return status, results


def grade_outputs(nb, name: str = "notebook", stopped_at: int | None = None,
                  stopped_by: str = "timeout") -> tuple[dict, list[ExerciseResult]]:
    """Read an executed notebook's outputs: the first error outside the exercises, and each exercise's result.

    ``stopped_at`` is the cell where execution stopped, ``stopped_by`` why (``timeout`` or ``kernel died``): an
    exercise in that cell gets ``stopped_by`` as its result, exercises after it ``not run``.
    """
    exercises = find_exercises(nb, name)
    if stopped_at is not None and not (isinstance(stopped_at, int) and 0 <= stopped_at < len(nb.cells)):
        raise ValueError(f"stopped_at: expected a cell index below {len(nb.cells)}, got {stopped_at!r}")
    if stopped_by not in ("timeout", "kernel died"):
        raise ValueError(f"stopped_by: expected 'timeout' or 'kernel died', got {stopped_by!r}")
    cells_of = exercise_code_cells(nb, name)
    code_cells = {i for cells in cells_of.values() for i in cells}
    status = {"run": "clean", "detail": ""}
    for index, cell in enumerate(nb.cells):
        if index in code_cells or cell.cell_type != "code":
            continue
        errors = [o for o in cell.get("outputs", []) if o.output_type == "error"]
        if errors and status["run"] == "clean":
            status.update(run="error", detail=f"cell {index}: {errors[0].ename}: {errors[0].evalue}"[:300])
    results = []
    for exercise in exercises:
        if exercise.label not in cells_of:
            results.append(ExerciseResult(name, exercise.label, exercise.number, "not graded", "written answer"))
            continue
        cells = cells_of[exercise.label]
        outcomes = [_exercise_outcome(nb.cells[i], exercise.label) for i in cells]
        result, detail = next(((r, d) for r, d in outcomes if r != "pass"), ("pass", ""))
        if stopped_at is not None and stopped_at in cells:
            result, detail = stopped_by, f"execution stopped in this exercise's cell {stopped_at}"
        elif stopped_at is not None and min(cells) > stopped_at:
            result, detail = "not run", f"execution stopped earlier, in cell {stopped_at}"
        results.append(ExerciseResult(name, exercise.label, exercise.number, result, detail))
    return status, results


def results_as_dicts(results: list[ExerciseResult]) -> list[dict]:
    return [asdict(r) for r in results]
