"""``qteach``: the instructors' command line.

    qteach student NOTEBOOK_OR_FOLDER... --out DIR [--solutions]   write student versions (and solutions files)
    qteach grade SUBMISSION_OR_FOLDER... [--timeout S] [--report PREFIX]   run submissions, report each exercise
    qteach exercises NOTEBOOK_OR_FOLDER...                          list the exercises (label, topic, kind)
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

import nbformat

from qteach import course


class UsageError(Exception):
    """Bad input on the command line: reported in one line, exit status 2."""


def _notebooks(paths: list[str]) -> list[Path]:
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found += sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
        elif path.is_file() and path.suffix == ".ipynb":
            found.append(path)
        elif path.exists():
            raise UsageError(f"{raw}: not a notebook (.ipynb) or a folder")
        else:
            raise UsageError(f"{raw}: no such file or folder")
    if not found:
        raise UsageError("no notebooks found in " + ", ".join(paths))
    return found


def _read(path: Path):
    try:
        return nbformat.read(path, as_version=4)
    except Exception as error:
        raise UsageError(f"{path}: not a readable notebook ({type(error).__name__}: {error})") from None


def cmd_student(args) -> int:
    out = Path(args.out)
    notebooks = _notebooks(args.notebooks)
    sources = {p.resolve().parent for p in notebooks}
    if out.resolve() in sources:
        raise UsageError(f"--out {out} is where the notebooks are: choose another folder, originals are kept")
    versions = []
    for path in notebooks:  # check every notebook before writing anything
        nb = _read(path)
        try:
            versions.append((path, course.student_version(nb, str(path)), nb))
        except ValueError as error:
            raise UsageError(str(error)) from None
    out.mkdir(parents=True, exist_ok=True)
    for path, student, nb in versions:
        nbformat.write(student, out / path.name)
        line = f"{out / path.name}: {len(student.metadata['qteach']['student']['exercises'])} exercises"
        if args.solutions:
            nbformat.write(course.solutions_only(nb, path.name), out / f"{path.stem}.solutions.ipynb")
            line += f", solutions in {out / (path.stem + '.solutions.ipynb')}"
        print(line)
    return 0


def cmd_grade(args) -> int:
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {args.timeout}")
    statuses, results = [], []
    for path in _notebooks(args.submissions):
        status, graded = course.grade_notebook(path, timeout=args.timeout)
        statuses.append(status)
        results += graded
    rows = [["notebook", "exercise", "result", "detail"]]
    rows += [[r.notebook, r.exercise, r.result, r.detail.replace("\n", " ")[:120]] for r in results]
    widths = [max(len(str(r[i])) for r in rows) for i in range(4)]
    for index, row in enumerate(rows):
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
        if index == 0:
            print("  ".join("-" * w for w in widths))
    print()
    for status in statuses:
        edited = "; EDITED OUTSIDE THE EXERCISE CELLS" if status["edited_outside_exercises"] else ""
        detail = f" ({status['detail']})" if status["detail"] else ""
        print(f"{status['notebook']}: run {status['run']}{detail}{edited}")
    if args.report:
        prefix = Path(args.report)
        prefix.parent.mkdir(parents=True, exist_ok=True)
        with open(prefix.with_suffix(".csv"), "w", newline="") as handle:
            csv.writer(handle).writerows([rows[0]] + [[r.notebook, r.exercise, r.result, r.detail] for r in results])
        prefix.with_suffix(".json").write_text(json.dumps(
            {"notebooks": statuses, "exercises": course.results_as_dicts(results)}, indent=2, ensure_ascii=False))
        print(f"\nreport written to {prefix.with_suffix('.csv')} and {prefix.with_suffix('.json')}")
    return 0


def cmd_exercises(args) -> int:
    for path in _notebooks(args.notebooks):
        try:
            exercises = course.find_exercises(_read(path), str(path))
        except ValueError as error:
            raise UsageError(str(error)) from None
        for e in exercises:
            print(f"{path}\t{e.label}\t{'code' if e.is_code else 'written'}\t{e.topic}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qteach", description="The instructors' tools of 'Model Quantization, "
                                     "Paper by Paper'.")
    sub = parser.add_subparsers(dest="command", required=True)
    student = sub.add_parser("student", help="write student versions of notebooks (solutions removed)")
    student.add_argument("notebooks", nargs="+", help="notebooks or folders of notebooks")
    student.add_argument("--out", required=True, help="folder for the student versions")
    student.add_argument("--solutions", action="store_true", help="also write <name>.solutions.ipynb per notebook")
    student.set_defaults(run=cmd_student)
    grade = sub.add_parser("grade", help="run submitted notebooks and report every exercise's self-check")
    grade.add_argument("submissions", nargs="+", help="submitted notebooks or folders of them")
    grade.add_argument("--timeout", type=int, default=120, help="seconds a cell may run (default 120)")
    grade.add_argument("--report", help="write PREFIX.csv (a grade sheet) and PREFIX.json")
    grade.set_defaults(run=cmd_grade)
    listing = sub.add_parser("exercises", help="list the exercises of notebooks")
    listing.add_argument("notebooks", nargs="+")
    listing.set_defaults(run=cmd_exercises)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as error:
        print(f"qteach {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
