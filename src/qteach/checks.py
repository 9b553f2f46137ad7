"""Self-checks for the book's exercises.

An exercise's check either prints one success line, ``✅ ex-<slug>-<n> passed: <what>``, or raises
``AssertionError`` whose message starts with the exercise label and gives a hint; while the student's code is
still the stub (it raises ``NotImplementedError``), it prints ``⬜ ex-<slug>-<n> not attempted ...`` instead
(:func:`self_check`). The grader of the classroom kit reads exactly these outcomes. The checks of each notebook live in
:mod:`qteach.exercises`; this module holds the shared building blocks.

A mistake in a check itself (a bad label, hint or tolerance, an expected value with NaN) raises ``TypeError`` or
``ValueError`` naming the argument, whether the student's answer passes or not.
"""

from __future__ import annotations

import functools
import math
import numbers
import re

import torch

from qteach._validate import require_no_nan, require_non_negative_number, require_str

_LABEL = re.compile(r"^ex-[a-z0-9_]+-\d+$")


def _label(exercise: str) -> str:
    if not isinstance(exercise, str) or not _LABEL.match(exercise):
        raise ValueError(f"exercise must be a label like 'ex-xnor_net-1', got {exercise!r}")
    return exercise


def fail(exercise: str, hint: str):
    """Raise the ``AssertionError`` of a failed check: ``"<label>: <hint>"``."""
    raise AssertionError(f"{_label(exercise)}: {require_str(hint, 'hint')}")


def expect(condition, exercise: str, hint: str) -> None:
    """Fail with ``hint`` unless ``condition`` is true (a bool, or anything with one truth value such as a
    one-element tensor; a tensor of several values raises ``TypeError``)."""
    _label(exercise)
    require_str(hint, "hint")
    try:
        ok = bool(condition)
    except (RuntimeError, ValueError) as error:  # torch and NumPy refuse the truth value of several elements
        raise TypeError(f"condition must have one truth value (a bool or a one-element tensor), got "
                        f"{type(condition).__name__}: {error}") from error
    if not ok:
        fail(exercise, hint)


def expect_type(value, expected_type, exercise: str, what: str) -> None:
    """Fail unless ``value`` is an instance of ``expected_type`` (a type or a tuple of types)."""
    _label(exercise)
    if not (isinstance(expected_type, type) or (isinstance(expected_type, tuple) and expected_type
                                                 and all(isinstance(t, type) for t in expected_type))):
        raise TypeError(f"expected_type must be a type or a tuple of types, got {expected_type!r}")
    if not isinstance(value, expected_type):
        names = getattr(expected_type, "__name__", None) or " or ".join(t.__name__ for t in expected_type)
        fail(exercise, f"{what} should be a {names}, got {type(value).__name__}")


def expect_tensor_like(value, like: torch.Tensor, exercise: str, what: str) -> None:
    """Fail unless ``value`` is a tensor of the shape of ``like`` (the input the student's function received)."""
    expect_type(value, torch.Tensor, exercise, what)
    if value.shape != like.shape:
        fail(exercise, f"{what} should have the shape {tuple(like.shape)} of its input, got {tuple(value.shape)}")


def as_number(value, exercise: str, what: str) -> float:
    """A student's answer as a Python float: a number or a one-element tensor; fail with a hint otherwise."""
    if isinstance(value, torch.Tensor):
        expect(value.numel() == 1, exercise, f"{what} should be a single number (a float or a 0-d tensor), got a "
                                             f"tensor of shape {tuple(value.shape)}")
        return float(value.detach().reshape(()).item())
    expect(isinstance(value, (int, float)) and not isinstance(value, bool), exercise,
           f"{what} should be a number, got {type(value).__name__}")
    return float(value)


def expect_close(actual, expected, exercise: str, what: str, rtol: float = 1e-5, atol: float = 1e-6,
                 hint: str = "") -> None:
    """Fail unless ``actual`` is close to ``expected`` (numbers or tensors of the same shape).

    ``expected`` (the check's own value) must be a real number or a tensor without NaN, ``rtol`` and ``atol``
    finite numbers >= 0: otherwise ``TypeError``/``ValueError``.
    """
    rtol = require_non_negative_number(rtol, "rtol")
    atol = require_non_negative_number(atol, "atol")
    require_str(hint, "hint")
    if isinstance(expected, torch.Tensor):
        require_no_nan(expected, "expected")
        expect_type(actual, torch.Tensor, exercise, what)
        if actual.shape != expected.shape:
            fail(exercise, f"{what} has shape {tuple(actual.shape)}, expected {tuple(expected.shape)}")
        ok = torch.allclose(actual.detach().double().cpu(), expected.detach().double().cpu(), rtol=rtol, atol=atol)
        got = "a tensor that differs"
    else:
        if isinstance(expected, bool) or not isinstance(expected, numbers.Real):
            raise TypeError(f"expected must be a number or a tensor, got {type(expected).__name__}")
        if math.isnan(expected):
            raise ValueError("expected must not be NaN")
        expect_type(actual, (int, float), exercise, what)
        ok = math.isclose(float(actual), float(expected), rel_tol=rtol, abs_tol=atol)
        got = f"{float(actual):.6g}"
    if not ok:
        fail(exercise, f"{what} is {got}; expected {_describe(expected)}. {hint}".strip())


def _describe(expected) -> str:
    if isinstance(expected, torch.Tensor):
        return f"a tensor of shape {tuple(expected.shape)} with other values"
    return f"about {float(expected):.6g}"


class SuccessLine(str):
    """The success line of a check: a plain ``str`` for code and tests, which Jupyter does not display again
    when a check is the last call of a cell (the line was already printed)."""

    def _ipython_display_(self):
        pass


def passed(exercise: str, what: str) -> SuccessLine:
    """Print the success line of a check and return it."""
    line = SuccessLine(f"✅ {_label(exercise)} passed: {require_str(what, 'what')}")
    print(line)
    return line


def not_attempted_line(exercise: str) -> str:
    """The line a check prints while its exercise still holds the stub (what the book shows under each stub)."""
    return (f"⬜ {_label(exercise)} not attempted yet: replace the line `raise NotImplementedError(...)` by your "
            f"code, then run the cell again.")


def not_attempted(exercise: str) -> SuccessLine:
    """Print :func:`not_attempted_line` and return it."""
    line = SuccessLine(not_attempted_line(exercise))
    print(line)
    return line


_CHECK_NAME = re.compile(r"check_(\d+)")


def self_check(check):
    """Decorate the check ``check_<n>`` of the module ``qteach.exercises.<slug>`` (exercise ``ex-<slug>-<n>``).

    In the book and in Colab an exercise's code is a stub that raises ``NotImplementedError``; the decorated
    check then prints :func:`not_attempted`'s line and returns, instead of ending the cell in a traceback. A
    check named otherwise, or outside ``qteach.exercises``, raises ``ValueError`` (its label would be wrong).
    """
    number = _CHECK_NAME.fullmatch(getattr(check, "__name__", ""))
    package, _, slug = getattr(check, "__module__", "").rpartition(".")
    if not callable(check) or number is None or package != "qteach.exercises":
        raise ValueError(f"check must be a function check_<n> of a module qteach.exercises.<slug>, got {check!r}")
    label = f"ex-{slug}-{number.group(1)}"

    @functools.wraps(check)
    def run(*args, **kwargs):
        try:
            return check(*args, **kwargs)
        except NotImplementedError:
            return not_attempted(label)

    return run
