"""The classroom kit: student versions, solutions files, grading, and the command line (on a small notebook
built here, so these tests do not depend on any chapter)."""

from __future__ import annotations

import csv
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
    assert [o.text for o in code.outputs] == [f"⬜ {LABEL} not attempted yet: replace the line "
                                              "`raise NotImplementedError(...)` by your code, then run the cell again.\n"]
    assert code.metadata["qteach"]["exercise"] == LABEL
    assert not any("{solution}" in s for s in sources)
    answer = student.cells[5]  # the solution's cell is gone; the written exercise got an answer cell
    assert answer.cell_type == "markdown" and answer.source.startswith("**Your answer to Exercise 2:**")
    assert len(student.cells) == len(nb.cells)
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


def test_book_version_shows_the_stub_and_keeps_the_folded_solution():
    nb = make_notebook()
    book = course.book_version(nb, "demo.ipynb")
    assert "return x + 1" not in book.cells[3].source and "raise NotImplementedError" in book.cells[3].source
    assert "not attempted yet" in book.cells[3].outputs[0].text
    assert [c.source for i, c in enumerate(book.cells) if i != 3] == [c.source for i, c in enumerate(nb.cells) if i != 3]


def test_a_notebooks_own_answer_cell_replaces_the_generic_one_and_is_not_in_the_book():
    nb = make_notebook()
    own = nbformat.v4.new_markdown_cell("**Your answer:** (a) ... (b) ...", metadata={"qteach": {"answer": "ex-demo-2"}})
    nb.cells.insert(6, own)
    for version in (course.student_version, course.colab_version):
        answers = [c.source for c in version(nb, "demo.ipynb").cells if "Your answer" in c.source]
        assert answers == ["**Your answer:** (a) ... (b) ..."]
    assert not any("Your answer" in c.source for c in course.book_version(nb, "demo.ipynb").cells)


def test_colab_version_folds_solutions_in_plain_markdown():
    nb = make_notebook()
    nb.cells[4].source = (f"````{{solution}} {LABEL}\n:class: dropdown\nThe code:\n```python\ndef plus_one(x):\n"
                          "    return x + 1\n```\n````")
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data={"application/vnd.plotly.v1+json": {},
                                                                        "text/html": "<div></div>"}),
                           nbformat.v4.new_output("stream", text="kept\n")]
    colab = course.colab_version(nb, "demo.ipynb")
    text = [c.source for c in colab.cells]
    assert text[2] == "**Exercise 1.** Write `plus_one(x)`, which adds one."
    assert text[4].startswith("<details><summary><b>Solution to Exercise 1</b>")
    assert "```python\ndef plus_one(x):\n    return x + 1\n```" in text[4] and text[4].endswith("</details>")
    assert text[5] == "**Exercise 2.** Explain in words why." and text[6].startswith("**Your answer to Exercise 2")
    assert "raise NotImplementedError" in text[3] and "return x + 1" not in text[3]
    assert [o.output_type for o in colab.cells[1].outputs] == ["stream"]  # the plotly figure is dropped
    assert colab.metadata["qteach"]["student"]["kind"] == "colab"


def test_colab_and_student_versions_paste_the_glued_numbers_into_the_prose():
    from qteach import display

    nb = make_notebook()
    data, metadata = display.glue_bundle("speedup", 6.4821)
    nb.cells[1].outputs = [nbformat.v4.new_output("display_data", data=data, metadata=metadata)]
    nb.cells[0].source = ("Measured {glue:text}`speedup:.1f`x, raw {glue:}`speedup`, "
                          "unknown {glue:text}`other:.1f`, inline `code`.")
    assert course.glued_values(nb) == {"speedup": "6.4821"}
    expected = "Measured 6.5x, raw 6.4821, unknown {glue:text}`other:.1f`, inline `code`."
    for version in (course.student_version, course.colab_version):
        assert version(nb, "demo.ipynb").cells[0].source == expected
    assert course.book_version(nb, "demo.ipynb").cells[0].source == nb.cells[0].source  # the book pastes itself


@pytest.mark.parametrize(("stored", "spec", "shown"), [
    ("3.14159", ".2f", "3.14"), ("12", "d", "12"), ("12", ",", "12"), ("'text'", "", "text"), ("0.125", ".0%", "12%"),
    ("2.5", "", "2.5"), ("nan", ".1f", "nan"),
])
def test_glued_values_are_formatted_as_the_book_does(stored, spec, shown):
    from myst_nb.core.variables import format_plain_text

    assert course._format_glued(stored, spec) == shown == format_plain_text(stored, spec)


def test_stub_message_with_latex_is_a_valid_literal():
    nb = make_notebook()
    nb.cells[2].source = f"```{{exercise}}\n:label: {LABEL}\nReturn $x + \\gamma$ with \\text{{t}}.\n```"
    stub = course.student_version(nb, "demo.ipynb").cells[3].source
    namespace: dict = {}
    exec(compile(stub.split("expect(")[0], "stub", "exec"), namespace)  # the definition, without the check
    with pytest.raises(NotImplementedError, match=r"x \+ \\gamma with \\text\{t\}"):
        namespace["plus_one"](1)


def test_leaked_solution_lines():
    nb = make_notebook()
    text = lambda notebook: "\n".join(c.source for c in notebook.cells)  # noqa: E731
    assert course.leaked_solution_lines(nb, text(nb)) == ["return x + 1"]
    assert course.leaked_solution_lines(nb, text(course.book_version(nb))) == []
    assert course.leaked_solution_lines(nb, text(course.student_version(nb))) == []


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
    edited_nb.cells.insert(5, nbformat.v4.new_code_cell("print('extra')"))
    edited_nb.cells.append(nbformat.v4.new_code_cell(""))  # an empty cell is no edit
    edited = _write(edited_nb, tmp_path / "edited.ipynb")
    removed_nb = course.student_version(make_notebook(), "demo.ipynb")
    del removed_nb.cells[6]
    removed = _write(removed_nb, tmp_path / "removed.ipynb")

    status, results = course.grade_notebook(solution, timeout=60)
    assert status["run"] == "clean" and [r.result for r in results] == ["pass", "not graded"]
    status, results = course.grade_notebook(student, timeout=60)
    assert status["run"] == "clean" and not status["edited_outside_exercises"]
    assert results[0].result == "not attempted"
    _, results = course.grade_notebook(wrong, timeout=60)
    assert results[0].result == "fail" and "add exactly one" in results[0].detail
    status, _ = course.grade_notebook(edited, timeout=60)
    assert status["edited_outside_exercises"] == ["cell 1 changed", "cell 5 added"]
    status, _ = course.grade_notebook(removed, timeout=60)
    assert status["edited_outside_exercises"] == ["cell 6 of the handout removed"]


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
    assert (tmp_path / "grades.csv").read_text().startswith("student,notebook,exercise,number,result,score,detail")
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


def test_a_dead_kernel_is_not_a_timeout(tmp_path):
    dying = course.student_version(make_notebook(), "demo.ipynb")
    dying.cells[3].source = "import os\nos._exit(1)"
    status, results = course.grade_notebook(_write(dying, tmp_path / "dies.ipynb"), timeout=60)
    assert status["run"] == "kernel died" and "cell 3" in status["detail"]
    assert results[0].result == "kernel died" and "cell 3" in results[0].detail


def test_public_functions_name_their_bad_arguments(tmp_path):
    nb = make_notebook()
    path = _write(nb, tmp_path / "demo.ipynb")
    (tmp_path / "notes.txt").write_text("hello")
    invalid = tmp_path / "invalid.ipynb"
    invalid.write_text(json.dumps({"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "code", "id": "a", "metadata": {}, "source": 5, "outputs": [], "execution_count": None}]}))
    with pytest.raises(TypeError, match="^nb: "):
        course.find_exercises({"cells": []})
    with pytest.raises(TypeError, match="^name: "):
        course.student_version(nb, 3)
    with pytest.raises(TypeError, match="^source: "):
        course.solution_regions(None)
    with pytest.raises(ValueError, match="^path: .*not a notebook"):
        course.grade_notebook(tmp_path / "notes.txt")
    with pytest.raises(ValueError, match="^path: .*no such file"):
        course.read_notebook(tmp_path / "missing.ipynb")
    with pytest.raises(ValueError, match="not a valid notebook"):
        course.read_notebook(invalid)
    with pytest.raises(ValueError, match="^timeout: must be > 0"):
        course.grade_notebook(path, timeout=0)
    with pytest.raises(TypeError, match="^timeout: "):
        course.grade_notebook(path, timeout="60")
    with pytest.raises(ValueError, match="^stopped_at: "):
        course.grade_outputs(nb, "demo.ipynb", stopped_at=len(nb.cells))
    with pytest.raises(ValueError, match="^stopped_by: "):
        course.grade_outputs(nb, "demo.ipynb", stopped_at=3, stopped_by="crash")
    status, results = course.grade_notebook(invalid)  # a broken submission is reported, not raised
    assert status["run"] == "unreadable" and results == []


def test_cli_bad_input_is_one_line_with_status_2(tmp_path, capsys):
    source = tmp_path / "src"
    source.mkdir()
    notebook = str(_write(make_notebook(), source / "demo.ipynb"))
    (tmp_path / "empty").mkdir()
    (tmp_path / "file").write_text("mine")
    (tmp_path / "corrupt.ipynb").write_text("{not json")
    file, out = str(tmp_path / "file"), str(tmp_path / "out")
    cases = [[], ["bogus"], ["student", notebook], ["student", "", "--out", out], ["student", notebook, "--out", ""],
             ["student", notebook, "--out", file], ["student", notebook, "--out", file + "/sub"],
             ["student", str(tmp_path / "corrupt.ipynb"), "--out", out], ["student", file, "--out", out],
             ["student", str(tmp_path / "empty"), "--out", out], ["grade"], ["grade", notebook, "--timeout", "-1"],
             ["grade", notebook, "--timeout", "soon"], ["grade", notebook, "--report", file + "/grades"],
             ["grade", notebook, "--report", ""], ["grade", str(tmp_path / "empty")],
             ["exercises", str(tmp_path / "missing")], ["exercises", str(tmp_path / "corrupt.ipynb")]]
    for argv in cases:
        assert cli.main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.startswith("qteach") and err.count("\n") == 1 and "Traceback" not in err, (argv, err)
    assert (tmp_path / "file").read_text() == "mine" and not (tmp_path / "out").exists()


def test_cli_student_never_overwrites_a_users_files(tmp_path, capsys):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        _write(make_notebook(), tmp_path / folder / "demo.ipynb")
    out = tmp_path / "out"
    assert cli.main(["student", str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out)]) == 2
    assert "would both be written" in capsys.readouterr().err and not out.exists()
    argv = ["student", str(tmp_path / "a"), "--out", str(out), "--solutions"]
    assert cli.main(argv) == 0 and cli.main(argv) == 0  # an unedited earlier output is written again
    work = nbformat.read(out / "demo.ipynb", as_version=4)
    work.cells[3].source = "def plus_one(x):\n    return x + 1"
    _write(work, out / "demo.ipynb")
    capsys.readouterr()
    assert cli.main(argv) == 2
    assert "not an unedited output" in capsys.readouterr().err
    assert "return x + 1" in (out / "demo.ipynb").read_text()
    plain = make_notebook()
    plain.cells = plain.cells[:2]
    _write(plain, tmp_path / "plain.ipynb")
    assert cli.main(["student", str(tmp_path / "plain.ipynb"), "--out", str(tmp_path / "o2"), "--solutions"]) == 0
    assert "0 exercises" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "o2").iterdir()) == ["plain.ipynb"]


def test_cli_grade_rows_name_student_notebook_and_exercise(tmp_path, capsys):
    submissions = tmp_path / "submissions"
    for student, solution in [("alice", "    return x + 1"), ("carol", None)]:
        (submissions / student).mkdir(parents=True)
        nb = course.student_version(make_notebook(), "xnor_net.ipynb")
        if solution:
            nb.cells[3].source = nb.cells[3].source.replace(
                'raise NotImplementedError("Exercise 1: Write plus_one(x), which adds one.")', solution.strip())
        _write(nb, submissions / student / "xnor_net.ipynb")
    (submissions / "bob.ipynb").write_text("{not json")
    (tmp_path / "grades.csv").write_text("name,grade\nalice,A\n")
    report = str(tmp_path / "grades")
    assert cli.main(["grade", str(submissions), "--report", report]) == 2  # a user's own grades.csv is kept
    assert "grades.csv exists" in capsys.readouterr().err
    assert (tmp_path / "grades.csv").read_text() == "name,grade\nalice,A\n"
    (tmp_path / "grades.csv").unlink()
    assert cli.main(["grade", str(submissions), "--report", report]) == 0
    printed = capsys.readouterr().out
    assert "alice: 1/1 code exercises passed" in printed and "carol: 0/1 code exercises passed" in printed
    with open(tmp_path / "grades.csv", newline="") as handle:
        rows = [tuple(row[c] for c in ("student", "notebook", "exercise", "number", "result", "score"))
                for row in csv.DictReader(handle)]
    assert rows == [("alice", "xnor_net.ipynb", LABEL, "1", "pass", "1"),
                    ("alice", "xnor_net.ipynb", "ex-demo-2", "2", "not graded", ""),
                    ("bob", "bob.ipynb", "", "", "unreadable", ""),
                    ("carol", "xnor_net.ipynb", LABEL, "1", "not attempted", "0"),
                    ("carol", "xnor_net.ipynb", "ex-demo-2", "2", "not graded", "")]
    report = json.loads((tmp_path / "grades.json").read_text())
    assert report["students"][0] == {"student": "alice", "score": 1, "out_of": 1}
    assert [n["student"] for n in report["notebooks"]] == ["alice", "bob", "carol"]
    assert cli.main(["grade", str(submissions / "bob.ipynb"), "--report", str(tmp_path / "grades")]) == 0  # again
    assert json.loads((tmp_path / "grades.json").read_text())["notebooks"][0]["student"] == "submissions"
