"""Self-checks of the chapter "PA: piecewise approximation".

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.piecewise_approximation`
or a closed form, and either prints the success line or raises ``AssertionError`` with a hint naming the likely
mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import piecewise_approximation as pa

_SLUG = "piecewise_approximation"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the {0, 1} indicator form of the staircase ---------------------------------------------------

_LEVEL_CASES = (
    ("levels [1.5, 3.5, 5.5]", torch.tensor([1.5, 3.5, 5.5], dtype=torch.float64)),
    ("levels [0, 0, 1.5, 3.5] (an empty piece)", torch.tensor([0.0, 0.0, 1.5, 3.5], dtype=torch.float64)),
    ("levels [-1.2, 0.7] (one basis)", torch.tensor([-1.2, 0.7], dtype=torch.float64)),
    ("five levels of Gaussian weights", pa.piece_levels(torch.linspace(-2, 2, 101), torch.tensor(
        [-1.0, -0.3, 0.3, 1.0], dtype=torch.float64))),
)


@self_check
def check_1(indicator_form) -> None:
    """Check ``indicator_form(levels) -> (offset, gammas)`` with x_hat = offset + sum_m gammas[m] * 1[x >= t_m]."""
    label = _label(1)
    expect(callable(indicator_form), label, "pass your function itself, e.g. check_1(indicator_form)")
    for what, levels in _LEVEL_CASES:
        result = indicator_form(levels.clone())
        expect(isinstance(result, (tuple, list)) and len(result) == 2, label,
               "return two things: (offset, gammas), a number and a tensor of M scales")
        offset = as_number(result[0], label, "offset")
        gammas = torch.as_tensor(result[1], dtype=torch.float64).reshape(-1)
        m = len(levels) - 1
        expect(gammas.numel() == m, label, f"on {what}: {gammas.numel()} scales, expected one per basis ({m}): "
                                           "M + 1 levels are M steps")
        b, alpha = pa.coefficients(levels)
        if abs(offset - float(levels[0])) > 1e-9:
            hint = "with every indicator 0 you are in the lowest piece, so the offset is v_0."
            if abs(offset - float(b)) < 1e-9:
                hint = ("that is b of the sign form, the middle of the staircase; an indicator form starts from "
                        "the lowest level v_0, since 1[x >= t] is 0 (not -1) below every point.")
            fail(label, f"on {what}: offset = {offset:.4g}, expected the lowest level. {hint}")
        if not torch.allclose(gammas, 2 * alpha, atol=1e-9):
            hint = "gamma_m is the jump between the levels of pieces m - 1 and m: v_m - v_{m-1}."
            if torch.allclose(gammas, alpha, atol=1e-9):
                hint = ("those are the alphas of the sign form: sign(x - t) jumps by 2 (from -1 to +1), an "
                        "indicator by 1, so gamma_m = 2 alpha_m = v_m - v_{m-1}.")
            fail(label, f"on {what}: gammas = {[round(v, 4) for v in gammas.tolist()]}, expected "
                        f"{[round(v, 4) for v in (2 * alpha).tolist()]}. {hint}")
    passed(label, f"offset v_0 and jumps v_m - v_(m-1) on {len(_LEVEL_CASES)} staircases: the {{0, 1}} form "
                  "is the sign form with gamma = 2 alpha")


# --- exercise 2: how many levels do M bases give? ---------------------------------------------------------------

@self_check
def check_2(distinct_levels) -> None:
    """Check ``distinct_levels(m) -> (pa_levels, residual_levels)``: the most distinct values of M bases."""
    label = _label(2)
    expect(callable(distinct_levels), label, "pass your function itself, e.g. check_2(distinct_levels)")
    for m in range(1, 9):
        result = distinct_levels(m)
        expect(isinstance(result, (tuple, list)) and len(result) == 2, label,
               "return two integers: (pa_levels, residual_levels)")
        got_pa = as_number(result[0], label, "pa_levels")
        got_res = as_number(result[1], label, "residual_levels")
        if got_pa != m + 1:
            hint = "M segment points cut the line into M + 1 pieces, one level each."
            if got_pa == 2**m:
                hint = ("PA's bases are nested thresholds: sign(x - t_1) >= sign(x - t_2) >= ..., so only M + 1 "
                        "of the 2^M sign patterns occur.")
            elif got_pa == m:
                hint = "M points make M + 1 pieces (count the piece below the first point)."
            fail(label, f"M = {m}: PA gives {got_pa:g} levels? {hint}")
        if got_res != 2**m:
            hint = "every residual basis is the sign of a different residual; count the sign patterns."
            if got_res == m + 1:
                hint = ("the residual bases are not nested: sign(R_1) can be -1 where sign(R_0) is +1, so all 2^M "
                        "patterns of M signs occur (e.g. beta_1 + beta_2, beta_1 - beta_2, ...).")
            elif got_res == 2 * m:
                hint = "each basis doubles the number of levels (every level splits in two): 2^M."
            fail(label, f"M = {m}: greedy residual gives {got_res:g} levels? {hint}")
    passed(label, "M + 1 levels for PA (nested thresholds), 2^M for the greedy residual (independent signs), "
                  "M = 1 to 8")
