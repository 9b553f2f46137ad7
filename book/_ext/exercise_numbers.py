"""Number each exercise as its label says: ``ex-xnor_net-2`` is "Exercise 2" on its page.

sphinx-exercise numbers exercises through Sphinx's ``numfig``, which counts across the whole book ("Exercise
31" for XNOR-Net's first). Students meet exercises in one notebook at a time, and the handouts, the grader and the
index of exercises number them within the notebook, from the label. After Sphinx has assigned its numbers, this
extension replaces each labelled exercise's number by the label's, so that titles ("Exercise 2"), solutions
("Solution to Exercise 2") and references all agree with the rest of the course.
"""

from __future__ import annotations

import re

LABEL = re.compile(r"^ex-[a-z0-9_]+-(\d+)$")


def number_exercises_by_label(app, env) -> list[str]:
    for numbers in env.toc_fignumbers.values():
        exercises = numbers.get("exercise", {})
        for label in exercises:
            match = LABEL.match(label)
            if match:
                exercises[label] = (int(match.group(1)),)
    return []  # no other page to write again


def setup(app):
    # Sphinx assigns its numbers in an "env-get-updated" handler (priority 500); renumber after it
    app.connect("env-get-updated", number_exercises_by_label, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
