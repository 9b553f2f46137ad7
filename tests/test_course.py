"""The classroom kit: student versions, solutions files, grading, and the command line (on a small notebook
built here, so these tests do not depend on any chapter)."""

from __future__ import annotations

import json

import nbformat
import pytest

from qteach import cli, course

LABEL = "ex-demo-1"


def make_notebook(solution: str = "    return x + 1") -> nbformat.NotebookNode:
    v4 = nbformat.v4
    nb = v4.new_notebook(metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nb.cells = [
        v4.new_markdown_cell("# Demo"),
        v4.new_code_cell("value = 41"),
        v4.new_markdown_cell(f"```{{exercise}}\n:label: {LABEL}\nWrite `plus_one(x)`, which adds one.\n```"),
        v4.new_code_cell(
            "from qteach.checks import expect, passed\n"
            "def plus_one(x):\n"
            "    ### BEGIN SOLUTION\n"
            f"{solution}\n"
            "    ### END SOLUTION\n"
            f"expect(plus_one(value) == 42, '{LABEL}', 'add exactly one')\n"
            f"passed('{LABEL}', 'plus_one adds one')"),
        v4.new_markdown_cell(f"```{{solution}} {LABEL}\n:class: dropdown\nReturn `x + 1`.\n```"),
        v4.new_markdown_cell("```{exercise}\n:label: ex-demo-2\nExplain in words why.\n```"),
        v4.new_code_cell("print('after the exercises')"),
    ]
    return nb


def test_find_exercises():
    exercises = course.find_exercises(make_notebook())
    assert [e.label for e in exercises] == [LABEL, "ex-demo-2"]
    assert exercises[0].code_cells == (3,) and exercises[0].topic == "Write plus_one(x), which adds one."
    assert not exercises[1].is_code


def test_student_version_replaces_solutions_and_keeps_the_rest():
    nb = make_notebook()
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="kept\n")]
    nb.cells[3].outputs = [nbformat.v4.new_output("stream", text="✅ cleared\n")]
    student = course.student_version(nb, "demo.ipynb")
    sources = [c.source for c in student.cells]
    code = student.cells[3]
    assert 'raise NotImplementedError("Exercise 1: Write plus_one(x), which adds one.")' in code.source
    assert "return x + 1" not in code.source and "BEGIN SOLUTION" not in code.source
    assert code.source.splitlines()[2].startswith("    raise")  # indentation kept
    assert code.outputs == [] and code.metadata["qteach"]["exercise"] == LABEL
    assert not any("{solution}" in s for s in sources) and len(student.cells) == len(nb.cells) - 1
    assert student.cells[1].outputs[0].text == "kept\n"
    assert nb.cells[3].source.count("BEGIN SOLUTION") == 1  # the original is not modified


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\nx = 1\n", "never closed"),
    ("x = 1\n### END SOLUTION\n", "without a matching"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION\n", "inside an open"),
])
def test_unbalanced_markers_are_refused(source, message):
    nb = make_notebook()
    nb.cells[3].source = source
    with pytest.raises(course.SolutionMarkerError, match=message):
        course.student_version(nb, "demo.ipynb")


def test_a_solution_with_a_code_block_is_removed_whole():
    nb = make_notebook()
    nb.cells[4].source = (f"````{{solution}} {LABEL}\n:class: dropdown\nThe code:\n```python\ndef plus_one(x):\n"
                          "    return x + 1\n```\nThat is all.\n````\nAfter the solution.")
    student = course.student_version(nb, "demo.ipynb")
    text = "\n".join(c.source for c in student.cells)
    assert "return x + 1" not in text and "That is all" not in text and "After the solution." in text


def test_solutions_only():
    out = course.solutions_only(make_notebook(), "demo.ipynb")
    text = "\n".join(c.source for c in out.cells)
    assert "return x + 1" in text and "{solution}" in text and "after the exercises" not in text


def _write(nb, path):
    nbformat.write(nb, path)
    return path


def test_grading_solution_student_wrong_and_edited(tmp_path):
    solution = _write(make_notebook(), tmp_path / "solution.ipynb")
    student_nb = course.student_version(make_notebook(), "demo.ipynb")
    student = _write(student_nb, tmp_path / "student.ipynb")
    wrong_nb = course.student_version(make_notebook(), "demo.ipynb")
    wrong_nb.cells[3].source = wrong_nb.cells[3].source.replace('raise NotImplementedError("Exercise 1: Write '
                                                                'plus_one(x), which adds one.")', "return x + 2")
    wrong = _write(wrong_nb, tmp_path / "wrong.ipynb")
    edited_nb = course.student_version(make_notebook(), "demo.ipynb")
    edited_nb.cells[1].source = "value = 0"
    edited = _write(edited_nb, tmp_path / "edited.ipynb")

    status, results = course.grade_notebook(solution, timeout=60)
    assert status["run"] == "clean" and [r.result for r in results] == ["pass", "not graded"]
    status, results = course.grade_notebook(student, timeout=60)
    assert status["run"] == "clean" and not status["edited_outside_exercises"]
    assert results[0].result == "not attempted"
    _, results = course.grade_notebook(wrong, timeout=60)
    assert results[0].result == "fail" and "add exactly one" in results[0].detail
    status, _ = course.grade_notebook(edited, timeout=60)
    assert status["edited_outside_exercises"]


def test_grading_reports_errors_timeouts_and_garbage(tmp_path):
    raising = make_notebook()
    raising.cells[1].source = "value = 1 / 0"
    status, _ = course.grade_notebook(_write(raising, tmp_path / "raises.ipynb"), timeout=60)
    assert status["run"] == "error" and "ZeroDivisionError" in status["detail"]
    hanging = course.student_version(make_notebook(), "demo.ipynb")
    hanging.cells[3].source = "import time\ntime.sleep(30)"
    status, results = course.grade_notebook(_write(hanging, tmp_path / "hangs.ipynb"), timeout=2)
    assert status["run"] == "timeout" and results[0].result == "timeout"
    garbage = tmp_path / "garbage.ipynb"
    garbage.write_text("{not json")
    status, results = course.grade_notebook(garbage)
    assert status["run"] == "unreadable" and results == []


def test_cli_student_grade_and_errors(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    _write(make_notebook(), source / "demo.ipynb")
    out = tmp_path / "out"
    assert cli.main(["student", str(source), "--out", str(out), "--solutions"]) == 0
    assert (out / "demo.ipynb").is_file() and (out / "demo.solutions.ipynb").is_file()
    assert cli.main(["grade", str(out / "demo.ipynb"), "--report", str(tmp_path / "grades")]) == 0
    printed = capsys.readouterr().out
    assert "not attempted" in printed
    report = json.loads((tmp_path / "grades.json").read_text())
    assert report["exercises"][0]["result"] == "not attempted"
    assert (tmp_path / "grades.csv").read_text().startswith("notebook,exercise,result,detail")
    assert cli.main(["student", str(tmp_path / "missing.ipynb"), "--out", str(out)]) == 2
    assert cli.main(["student", str(source), "--out", str(source)]) == 2
    assert cli.main(["grade", str(out), "--timeout", "0"]) == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    nb = make_notebook()
    nb.cells[3].source = "### BEGIN SOLUTION\n"
    _write(nb, broken / "b.ipynb")
    assert cli.main(["student", str(broken), "--out", str(tmp_path / "o2")]) == 2
    assert "never closed" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()
