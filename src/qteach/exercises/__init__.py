"""The self-checks of the book's exercises: one module per notebook, ``check_<n>`` per exercise.

A check prints one ``✅ ex-<slug>-<n> passed: ...`` line or raises ``AssertionError("ex-<slug>-<n>: <hint>")``
(see :mod:`qteach.checks`). ``tests/exercises/`` tests each check on the solution and on plausible wrong answers.
"""
