"""Prints, at the end of a notebook test session, how long each run took per notebook (from the executed copies
in ``_build/executed/``), so that the cost of the notebook stage is visible in every CI log."""

from __future__ import annotations

import json
import time
from pathlib import Path

EXECUTED = Path(__file__).resolve().parents[2] / "_build" / "executed"
BUDGET_S = 30
_started = time.time()


def pytest_terminal_summary(terminalreporter):
    runs: dict[str, list[tuple[float, str]]] = {}
    for path in EXECUTED.glob("*/**/*.ipynb"):
        if path.stat().st_mtime < _started:
            continue
        record = json.loads(path.read_text()).get("metadata", {}).get("qteach", {}).get("test_run")
        if record:
            runs.setdefault(record["run"], []).append((record["seconds"], str(path.relative_to(EXECUTED))))
    if not runs:
        return
    write = terminalreporter.write_line
    terminalreporter.section("notebook run times (kernel start to last cell, workers in parallel)")
    for run, times in sorted(runs.items()):
        times.sort(reverse=True)
        total = sum(t for t, _ in times)
        slowest = ", ".join(f"{name} {t:.0f} s" for t, name in times[:3])
        write(f"{run}: {len(times)} notebooks, {total:.0f} s in all, mean {total / len(times):.1f} s; slowest: {slowest}")
        over = [name for t, name in times if t > BUDGET_S]
        if over:
            write(f"{run}: over the {BUDGET_S} s budget here: {', '.join(over)}")
