"""The classroom kit: find a notebook's exercises, write student versions, grade submissions.

Exercises follow the book's convention (see CONTRIBUTING.md): a markdown cell with an ``{exercise}`` directive
labelled ``ex-<slug>-<n>``; for a code exercise, a code cell whose solution sits between ``### BEGIN SOLUTION``
and ``### END SOLUTION`` followed by the self-check call; and a markdown ``{solution}`` directive. A self-check
prints ``✅ ex-<slug>-<n> passed: ...`` or raises ``AssertionError("ex-<slug>-<n>: <hint>")``.
"""

from __future__ import annotations

import copy
import hashlib
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


def solution_regions(source: str, where: str = "cell") -> list[tuple[int, int]]:
    """Line index pairs ``(begin, end)`` of the solution regions of a code cell; raises
    :class:`SolutionMarkerError` if markers are unbalanced, nested or reversed."""
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
    tagged: dict[str, list[int]] = {}
    for index, cell in enumerate(nb.cells):
        label = cell.metadata.get("qteach", {}).get("exercise")
        if cell.cell_type == "code" and label:
            tagged.setdefault(label, []).append(index)
    if tagged:
        return tagged
    return {e.label: list(e.code_cells) for e in find_exercises(nb, name) if e.is_code}


def _fingerprint(nb, exercise_cells: set[int]) -> str:
    """A hash of the code a student should not edit: every code cell but the exercises'."""
    digest = hashlib.sha256()
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and index not in exercise_cells:
            digest.update(cell.source.encode() + b"\x00")
    return digest.hexdigest()[:16]


def _strip_solution_code(source: str, number: int, topic: str, where: str) -> str:
    lines = source.splitlines()
    for begin, end in reversed(solution_regions(source, where)):
        indent = re.match(r"\s*", lines[begin]).group(0)
        message = f"Exercise {number}: {topic}".replace('"', "'")
        lines[begin:end + 1] = [f'{indent}raise NotImplementedError("{message}")']
    return "\n".join(lines)


def student_version(nb, name: str = "notebook"):
    """A copy of ``nb`` for students: solution code replaced by ``raise NotImplementedError("Exercise <n>: ...")``,
    ``{solution}`` blocks removed, exercise cells' outputs cleared; everything else intact.

    Exercise code cells are tagged in their metadata (``qteach.exercise``) so that the grader finds them after
    the student has replaced the ``raise``; a fingerprint of all other code lets it notice edits elsewhere.
    """
    exercises = find_exercises(nb, name)
    student = copy.deepcopy(nb)
    for exercise in exercises:
        for index in exercise.code_cells:
            cell = student.cells[index]
            cell.source = _strip_solution_code(cell.source, exercise.number, exercise.topic, f"{name}: cell {index}")
            cell.outputs, cell.execution_count = [], None
            cell.metadata.setdefault("qteach", {})["exercise"] = exercise.label
    for cell in student.cells:
        if cell.cell_type == "markdown":
            cell.source = _SOLUTION.sub("", cell.source).rstrip()
    student.cells = [c for c in student.cells if c.cell_type != "markdown" or c.source.strip()]
    exercise_cells = {i for cells in exercise_code_cells(student, name).values() for i in cells}
    info = student.metadata.setdefault("qteach", {})
    info.pop("execution", None)
    info["student"] = {"source": name, "exercises": [e.label for e in exercises],
                       "fingerprint": _fingerprint(student, exercise_cells)}
    return student


def solutions_only(nb, name: str = "notebook"):
    """A notebook holding only the exercises: statements, solution code and solution explanations."""
    exercises = find_exercises(nb, name)
    keep = sorted({e.statement_cell for e in exercises} | {i for e in exercises for i in e.code_cells}
                  | {i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and _SOLUTION.search(c.source)})
    out = nbformat.v4.new_notebook(metadata=copy.deepcopy(nb.metadata))
    out.cells = [copy.deepcopy(nb.cells[i]) for i in keep]
    out.cells.insert(0, nbformat.v4.new_markdown_cell(f"# Solutions: {name}"))
    return out


@dataclass
class ExerciseResult:
    notebook: str
    exercise: str
    result: str  # pass, fail, not attempted, error, no check ran, timeout
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
    return "no check ran", ""


def grade_notebook(path: Path, timeout: int = 120) -> tuple[dict, list[ExerciseResult]]:
    """Execute a submitted notebook (errors allowed) and report each exercise's outcome.

    Returns ``(notebook status, results)``; the status says whether the run was clean, which non-exercise cell
    raised, whether it timed out, and whether cells outside the exercises were edited.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    name = Path(path).name
    status = {"notebook": name, "run": "clean", "edited_outside_exercises": False, "detail": ""}
    try:
        nb = nbformat.read(path, as_version=4)
        find_exercises(nb, name)  # malformed exercise markup is reported like an unreadable file
    except Exception as error:  # an unreadable or malformed submission is reported, not crashed on
        status.update(run="unreadable", detail=f"{type(error).__name__}: {error}"[:300])
        return status, []
    cells_of = exercise_code_cells(nb, name)
    code_cells = {i for cells in cells_of.values() for i in cells}
    recorded = nb.metadata.get("qteach", {}).get("student", {}).get("fingerprint")
    status["edited_outside_exercises"] = recorded is not None and recorded != _fingerprint(nb, code_cells)
    running = {"cell": None}

    def remember(cell, cell_index, **_):
        running["cell"] = cell_index

    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", allow_errors=True, on_cell_start=remember,
                            resources={"metadata": {"path": str(Path(path).parent)}})
    stopped_at = None
    try:
        client.execute()
    except CellTimeoutError:
        stopped_at = running["cell"]
        status.update(run="timeout", detail=f"cell {stopped_at} ran longer than {timeout} s")
    except DeadKernelError as error:
        stopped_at = running["cell"]
        status.update(run="kernel died", detail=f"in cell {stopped_at}: {error}"[:300])
    run_status, results = grade_outputs(nb, name, stopped_at=stopped_at)
    if status["run"] == "clean":
        status.update(run_status)
    return status, results


def grade_outputs(nb, name: str = "notebook", stopped_at: int | None = None) -> tuple[dict, list[ExerciseResult]]:
    """Read an executed notebook's outputs: the first error outside the exercises, and each exercise's result.

    ``stopped_at`` is the cell where execution stopped (a timeout or a dead kernel): an exercise in that cell
    is reported as ``timeout``, exercises after it as ``not run``.
    """
    exercises = find_exercises(nb, name)
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
            results.append(ExerciseResult(name, exercise.label, "not graded", "written answer"))
            continue
        cells = cells_of[exercise.label]
        outcomes = [_exercise_outcome(nb.cells[i], exercise.label) for i in cells]
        result, detail = next(((r, d) for r, d in outcomes if r != "pass"), ("pass", ""))
        if stopped_at is not None and stopped_at in cells:
            result, detail = "timeout", "execution stopped in this exercise's cell"
        elif stopped_at is not None and min(cells) > stopped_at:
            result, detail = "not run", f"execution stopped earlier, in cell {stopped_at}"
        results.append(ExerciseResult(name, exercise.label, result, detail))
    return status, results


def results_as_dicts(results: list[ExerciseResult]) -> list[dict]:
    return [asdict(r) for r in results]
