"""``qteach``: the instructors' command line.

    qteach student NOTEBOOK_OR_FOLDER... --out DIR [--solutions]   write student versions (and solutions files)
    qteach grade SUBMISSION_OR_FOLDER... [--timeout S] [--report PREFIX]   run submissions, report each exercise
    qteach exercises NOTEBOOK_OR_FOLDER...                          list the exercises (label, topic, kind)

Bad input (a missing path, a corrupt notebook, a bad option) ends with exit status 2 and one line on stderr, and
nothing is written over a user's files: only over earlier, unedited outputs of these commands.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import nbformat

from qteach import course

COLUMNS = ["student", "notebook", "exercise", "number", "result", "score", "detail", "notebook_status"]
STUDENT_RULE = ("The student of a submission is the first folder below the folder given on the command line "
                "(submissions/alice/xnor_net.ipynb: alice), or the notebook's name without .ipynb when it sits "
                "directly in that folder (submissions/alice.ipynb: alice); for a notebook given by itself, the "
                "folder that holds it.")


class UsageError(Exception):
    """Bad input on the command line: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """Reports a command-line error in one line, like every other bad input."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _seconds(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of seconds, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0 seconds, got {value}")
    return value


def _notebooks(paths: list[str]) -> list[tuple[Path, Path | None]]:
    """Each notebook found, once, with the folder argument it was found in (``None`` if given by itself)."""
    found: dict[Path, tuple[Path, Path | None]] = {}
    for raw in paths:
        if not raw.strip():
            raise UsageError("an empty path was given")
        path = Path(raw)
        if path.is_dir():
            for inside in sorted(path.rglob("*.ipynb")):
                if ".ipynb_checkpoints" not in inside.parts and inside.is_file():
                    found.setdefault(inside.resolve(), (inside, path))
        elif path.is_file() and path.suffix == ".ipynb":
            found.setdefault(path.resolve(), (path, None))
        elif path.exists():
            raise UsageError(f"{raw}: not a notebook (.ipynb) or a folder")
        else:
            raise UsageError(f"{raw}: no such file or folder")
    if not found:
        raise UsageError("no notebooks found in " + ", ".join(paths))
    return list(found.values())


def _read(path: Path):
    try:
        return course.read_notebook(path)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _make_folder(folder: Path, option: str) -> None:
    for part in (folder, *folder.parents):
        if part.exists() and not part.is_dir():
            raise UsageError(f"{option}: {part} is a file, not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{option}: cannot create {folder} ({error.strerror or error})") from None


def _unedited_output(path: Path) -> bool:
    try:
        return course.is_unedited_output(course.read_notebook(path))
    except ValueError:
        return False


def cmd_student(args) -> int:
    if not args.out.strip():
        raise UsageError("--out: an empty path was given")
    out = Path(args.out)
    notebooks = [path for path, _ in _notebooks(args.notebooks)]
    originals = {path.resolve(): path for path in notebooks}
    planned: dict[Path, Path] = {}  # where each file goes -> the notebook it comes from
    handouts = []
    for path in notebooks:  # check everything before writing anything
        nb = _read(path)
        try:
            student = course.student_version(nb, str(path))
        except ValueError as error:
            raise UsageError(str(error)) from None
        files = [(out / path.name, student)]
        count = len(student.metadata["qteach"]["student"]["exercises"])
        if args.solutions and count:
            files.append((out / f"{path.stem}.solutions.ipynb", course.solutions_only(nb, path.name)))
        for target, _ in files:
            key = target.resolve()
            if key in originals:
                raise UsageError(f"--out {out}: {target} would replace the original {originals[key]}")
            if key in planned:
                raise UsageError(f"{planned[key]} and {path} would both be written to {target}: "
                                 "give them with different --out folders")
            if target.is_dir() or (target.exists() and not _unedited_output(target)):
                raise UsageError(f"{target} exists and is not an unedited output of qteach student: "
                                 "move it away or choose another --out")
            planned[key] = path
        handouts.append((files, count))
    _make_folder(out, "--out")
    try:
        for files, count in handouts:
            for target, nb in files:
                nbformat.write(nb, target)
            line = f"{files[0][0]}: {count} exercises"
            print(line + (f", solutions in {files[1][0]}" if len(files) > 1 else ""))
    except OSError as error:
        raise UsageError(f"--out {out}: cannot write ({error.strerror or error})") from None
    return 0


def _who(path: Path, root: Path | None) -> tuple[str, str]:
    """``(student, notebook)`` of a submission, by :data:`STUDENT_RULE`."""
    if root is None:
        return path.resolve().parent.name, path.name
    parts = path.relative_to(root).parts
    if len(parts) == 1:
        return path.stem, path.name
    return parts[0], "/".join(parts[1:])


def _note(status: dict) -> str:
    """How a notebook ran, in one line, with the cells edited outside the exercises."""
    note = status["run"] + (f" ({status['detail']})" if status["detail"] else "")
    if status["edited_outside_exercises"]:
        note += "; edited outside the exercise cells: " + ", ".join(status["edited_outside_exercises"])
    return note


def _is_report(path: Path) -> bool:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    if path.suffix == ".csv":
        return text.partition("\n")[0].strip() == ",".join(COLUMNS)
    try:
        report = json.loads(text)
    except ValueError:
        return False
    return isinstance(report, dict) and {"notebooks", "exercises"} <= report.keys()


def _report_files(raw: str) -> tuple[Path, Path]:
    """``PREFIX.csv`` and ``PREFIX.json``, checked before grading: their folder is created, and an existing file
    may only be an earlier report."""
    prefix = Path(raw)
    if prefix.suffix in (".csv", ".json"):
        prefix = prefix.with_suffix("")
    if prefix.name in ("", ".", ".."):
        raise UsageError(f"--report {raw!r}: give a file prefix, such as grades")
    files = prefix.with_name(prefix.name + ".csv"), prefix.with_name(prefix.name + ".json")
    for file in files:
        if file.is_dir() or (file.exists() and not _is_report(file)):
            raise UsageError(f"--report: {file} exists and is not an earlier qteach report: "
                             "move it away or choose another prefix")
    _make_folder(prefix.parent, "--report")
    return files


def cmd_grade(args) -> int:
    report = None if args.report is None else _report_files(args.report)
    notebooks, rows = [], []
    for path, root in _notebooks(args.submissions):
        student, name = _who(path, root)
        status, results = course.grade_notebook(path, timeout=args.timeout, name=name)
        notebooks.append({"student": student, **status})
        note = _note(status)
        graded = [{**r, "score": "" if r["result"] == "not graded" else int(r["result"] == "pass")}
                  for r in course.results_as_dicts(results)]
        if not graded:  # an unreadable notebook, or one without exercises, still has its row in the grade sheet
            graded = [{"notebook": name, "exercise": "", "number": "", "result": status["run"],
                       "detail": status["detail"], "score": ""}]
        rows += [{"student": student, **r, "notebook_status": note} for r in graded]
    students: dict[str, dict] = {}
    for row in rows:
        total = students.setdefault(row["student"], {"student": row["student"], "score": 0, "out_of": 0})
        if row["score"] != "":
            total["score"] += row["score"]
            total["out_of"] += 1
    shown = ["student", "notebook", "exercise", "result", "score", "detail"]
    table = [shown] + [[str(row[c]).replace("\n", " ")[:120] for c in shown] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(shown))]
    for index, line in enumerate(table):
        print("  ".join(cell.ljust(width) for cell, width in zip(line, widths)).rstrip())
        if index == 0:
            print("  ".join("-" * width for width in widths))
    print()
    for status in notebooks:
        print(f"{status['student']}  {status['notebook']}: {_note(status)}".replace("\n", " "))
    print()
    for total in students.values():
        print(f"{total['student']}: {total['score']}/{total['out_of']} code exercises passed")
    if report:
        try:
            with open(report[0], "w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, COLUMNS)
                writer.writeheader()
                writer.writerows(rows)
            report[1].write_text(json.dumps({"notebooks": notebooks, "students": list(students.values()),
                                             "exercises": rows}, indent=2, ensure_ascii=False), encoding="utf-8")
        except OSError as error:
            raise UsageError(f"--report: cannot write {error.filename} ({error.strerror or error})") from None
        print(f"\nreport written to {report[0]} and {report[1]}")
    return 0


def cmd_exercises(args) -> int:
    for path, _ in _notebooks(args.notebooks):
        try:
            exercises = course.find_exercises(_read(path), str(path))
        except ValueError as error:
            raise UsageError(str(error)) from None
        if not exercises:
            print(f"{path}: no exercises", file=sys.stderr)
        for e in exercises:
            print(f"{path}\t{e.label}\t{'code' if e.is_code else 'written'}\t{e.topic}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="qteach", description="The instructors' tools of 'Model Quantization, Paper by Paper'. "
                     "Bad input ends with exit status 2 and a one-line message.")
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="write student versions of notebooks (solutions removed)",
                             description="Write student versions of notebooks into --out. An existing file there is "
                             "only replaced if it is an unedited output of this command; never an original.")
    student.add_argument("notebooks", nargs="+", help="notebooks or folders of notebooks")
    student.add_argument("--out", required=True, metavar="DIR", help="folder for the student versions")
    student.add_argument("--solutions", action="store_true", help="also write <name>.solutions.ipynb per notebook")
    student.set_defaults(run=cmd_student)
    grade = sub.add_parser("grade", help="run submitted notebooks and report every exercise's self-check",
                           description="Run each submitted notebook in a fresh kernel and report every exercise: "
                           "one row per student, notebook and exercise, with a score (1 pass, 0 otherwise, empty "
                           "for a written exercise). " + STUDENT_RULE)
    grade.add_argument("submissions", nargs="+", help="submitted notebooks or folders of them")
    grade.add_argument("--timeout", type=_seconds, default=120, metavar="SECONDS",
                       help="seconds a cell may run (default 120)")
    grade.add_argument("--report", metavar="PREFIX", help="write PREFIX.csv (a grade sheet) and PREFIX.json; "
                       "existing files of those names are replaced only if they are earlier reports")
    grade.set_defaults(run=cmd_grade)
    listing = sub.add_parser("exercises", help="list the exercises of notebooks")
    listing.add_argument("notebooks", nargs="+", help="notebooks or folders of notebooks")
    listing.set_defaults(run=cmd_exercises)
    return parser


def main(argv=None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:  # --help, or a command-line error already reported in one line
        return stop.code
    try:
        return args.run(args)
    except UsageError as error:
        print(f"qteach {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
