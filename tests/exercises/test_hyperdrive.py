"""The self-checks of the Hyperdrive chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest

from qteach.exercises import hyperdrive as ex
from qteach.papers import hyperdrive as hd

LABEL = "ex-hyperdrive-{}"


def border_closed_form(height, width, rows, cols, halo):
    return 2 * halo * ((rows - 1) * width + (cols - 1) * height) + 4 * halo**2 * (rows - 1) * (cols - 1)


def border_by_library(height, width, rows, cols, halo):            # another correct answer
    return float(hd.border_pixels(height, width, (rows, cols), halo))


def test_check_1_passes(capsys):
    assert ex.check_1(border_closed_form).startswith("✅ " + LABEL.format(1))
    assert ex.check_1(border_by_library).startswith("✅")
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda h, w, m, n, r: 2 * r * ((m - 1) * w + (n - 1) * h), "diagonal neighbours"),
    (lambda h, w, m, n, r: r * ((m - 1) * w + (n - 1) * h) + r * r * (m - 1) * (n - 1), "count every cut twice"),
    (lambda h, w, m, n, r: 2 * r * (m * w + n * h) + 4 * r * r * m * n, "M - 1 cuts"),
    (lambda h, w, m, n, r: 0, "count per cut"),
    (lambda h, w, m, n, r: "many", "should be an int"),
])
def test_check_1_fails_with_hints(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def wrong_outputs(height, width, rows, cols, kernel):
    return 4 * (kernel // 2) ** 2 * (rows - 1) * (cols - 1)


def test_check_2_passes(capsys):
    assert ex.check_2(wrong_outputs).startswith("✅ " + LABEL.format(2))
    assert ex.check_2(lambda h, w, m, n, k: ex.corner_dependent_outputs(h, w, (m, n), k)).startswith("✅")


@pytest.mark.parametrize("wrong, hint", [
    (lambda h, w, m, n, k: (k // 2) ** 2 * (m - 1) * (n - 1), "four chips"),
    (lambda h, w, m, n, k: 4 * k * k * (m - 1) * (n - 1), "r = k // 2"),
    (lambda h, w, m, n, k: 4 * (m - 1) * (n - 1), "not one"),
    (lambda h, w, m, n, k: 4 * (k // 2) ** 2 * m * n, r"\(M - 1\)\(N - 1\)"),
    (lambda h, w, m, n, k: h * w, "crosses a horizontal and a vertical cut"),
])
def test_check_2_fails_with_hints(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_checks_reject_non_callables():
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_1(3)
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_2(None)
