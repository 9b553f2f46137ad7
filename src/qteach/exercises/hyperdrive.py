"""Self-checks of the chapter "Hyperdrive" (Andri, Cavigelli, Rossi, Benini, IEEE JETCAS 2019).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.hyperdrive` (or an
exact enumeration), and either prints the success line or raises ``AssertionError`` with a hint naming the likely
mistake.
"""

from __future__ import annotations

from qteach.checks import expect, fail, passed, self_check
from qteach.papers import hyperdrive as hd

_SLUG = "hyperdrive"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _as_int(value, label: str, what: str) -> int:
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    expect(isinstance(value, int) and not isinstance(value, bool), label,
           f"{what} should be an int (a number of pixels), got {type(value).__name__}")
    return value


# --- exercise 1: the border exchange in closed form ---------------------------------------------------------------

# (height, width, (rows, cols), halo): every tile at least `halo` pixels wide, so only direct neighbours exchange.
_CASES_1 = [(6, 6, (2, 2), 1), (9, 11, (2, 3), 1), (56, 56, (2, 2), 1), (56, 56, (4, 4), 1), (112, 112, (3, 5), 3),
            (224, 224, (1, 1), 3), (10, 7, (1, 3), 2), (10, 7, (4, 1), 1), (28, 28, (7, 7), 2), (13, 17, (3, 4), 0)]


@self_check
def check_1(border_pixels) -> str:
    """Check ``border_pixels(height, width, rows, cols, halo)``: pixels per channel received from other chips."""
    label = _label(1)
    expect(callable(border_pixels), label, "pass your function itself, e.g. check_1(border_pixels)")
    for height, width, (m, n), r in _CASES_1:
        got = _as_int(border_pixels(height, width, m, n, r), label, f"border_pixels({height}, {width}, {m}, {n}, {r})")
        ref = hd.border_pixels(height, width, (m, n), r)
        if got == ref:
            continue
        sides = 2 * r * ((m - 1) * width + (n - 1) * height)
        hint = ("count per cut between two rows of chips: both chips at the cut receive r rows of width W; the same "
                "for the cuts between columns; then the r x r corners from the diagonal neighbours.")
        if got == sides:
            hint = ("the edges are right, but the diagonal neighbours also send an r x r corner: four per crossing "
                    "of a horizontal and a vertical cut, i.e. 4 r^2 (M - 1)(N - 1).")
        elif got == sides // 2 + r * r * (m - 1) * (n - 1):
            hint = "both chips on either side of a cut receive a border from the other: count every cut twice."
        elif got == 2 * r * (m * width + n * height) + 4 * r * r * m * n:
            hint = ("there are M - 1 cuts between M rows of chips (and N - 1 between N columns); the image edge "
                    "is zero padding, not exchanged.")
        fail(label, f"border_pixels({height}, {width}, {m}, {n}, {r}) = {got}, expected {ref}. {hint}")
    return passed(label, f"your closed form equals the tile-by-tile count on {len(_CASES_1)} meshes")


# --- exercise 2: the forgotten corners -----------------------------------------------------------------------------

def corner_dependent_outputs(height: int, width: int, grid, kernel: int) -> int:
    """Output pixels (per output channel) whose k x k window reaches into a *diagonal* neighbour's tile: the
    pixels a border exchange without corners gets wrong. Exact enumeration over the tiles."""
    r = kernel // 2
    rows, cols = hd.tile_bounds(height, grid[0]), hd.tile_bounds(width, grid[1])
    near = lambda p, lo, hi, first, last: (p - r < lo and not first, p + r >= hi and not last)
    count = 0
    for i, (r0, r1) in enumerate(rows):
        for j, (c0, c1) in enumerate(cols):
            for y in range(r0, r1):
                up, down = near(y, r0, r1, i == 0, i == len(rows) - 1)
                for x in range(c0, c1):
                    left, right = near(x, c0, c1, j == 0, j == len(cols) - 1)
                    count += (up or down) and (left or right)
    return count


# (height, width, (rows, cols), kernel): every tile at least k - 1 pixels wide.
_CASES_2 = [(42, 48, (3, 4), 7), (8, 8, (2, 2), 3), (9, 11, (2, 3), 3), (20, 20, (2, 2), 5), (32, 32, (4, 4), 3), (30, 40, (3, 4), 5),
            (24, 24, (1, 3), 3), (24, 24, (3, 1), 7), (56, 56, (4, 4), 7), (16, 16, (2, 2), 1)]


@self_check
def check_2(wrong_outputs) -> str:
    """Check ``wrong_outputs(height, width, rows, cols, kernel)``: outputs per channel that a border exchange
    without corners gets wrong."""
    label = _label(2)
    expect(callable(wrong_outputs), label, "pass your function itself, e.g. check_2(wrong_outputs)")
    for height, width, (m, n), k in _CASES_2:
        got = _as_int(wrong_outputs(height, width, m, n, k), label, f"wrong_outputs({height}, {width}, {m}, {n}, {k})")
        ref = corner_dependent_outputs(height, width, (m, n), k)
        if got == ref:
            continue
        r, crossings = k // 2, (m - 1) * (n - 1)
        hint = ("an output is wrong when its k x k window crosses a horizontal and a vertical cut at the same time: "
                "count such outputs around every crossing of cuts.")
        if got == r * r * crossings:
            hint = "each crossing of cuts touches four chips, and each of them has r x r wrong outputs in its corner."
        elif got == k * k * crossings * 4 or got == (k - 1) ** 2 * crossings * 4:
            hint = "the border is r = k // 2 pixels wide (r = 1 for a 3x3 kernel), not k or k - 1."
        elif got == crossings or got == 4 * crossings:
            hint = "a missing r x r corner spoils r x r outputs of the chip, not one."
        elif got == 4 * r * r * m * n:
            hint = "only crossings of two cuts between chips matter: (M - 1)(N - 1) of them, not M N."
        fail(label, f"wrong_outputs({height}, {width}, {m}, {n}, {k}) = {got}, expected {ref}. {hint}")
    return passed(label, f"your count of corner-dependent outputs is right on {len(_CASES_2)} meshes")
