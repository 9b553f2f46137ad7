"""Self-checks of the chapter "Binary-memristor BNN accelerator" (2020).

Each check calls the student's function on several inputs, compares with a reference, and either prints the
success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import binary_memristor_accelerator as bm

_SLUG = "binary_memristor_accelerator"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the differential-pair mapping ------------------------------------------------------------------

def _cases_1():
    g = torch.Generator().manual_seed(0)
    cases = [(torch.tensor([[1.0, 0.0, 1.0]]), torch.tensor([[1.0, -1.0, 1.0], [-1.0, -1.0, 1.0]]), 10.0)]
    for n, k, m, r in ((4, 7, 3, 10.0), (2, 64, 5, 3.0), (3, 1, 1, 100.0), (5, 33, 8, 2.5)):
        u = (torch.rand(n, k, generator=g) < 0.5).float()
        w = torch.where(torch.rand(m, k, generator=g) < 0.5, -1.0, 1.0)
        cases.append((u, w, r))
    return cases


@self_check
def check_1(differential_dot) -> str:
    """Check ``differential_dot(u, w, on_off)``: u (N, K) in {0, 1}, w (M, K) in +-1, read with two cells per
    weight (G+ = programmed w, G- = programmed -w); returns s (N, M) = u @ w.T."""
    label = _label(1)
    expect(callable(differential_dot), label, "pass your function itself, e.g. check_1(differential_dot)")
    cases = _cases_1()
    for u, w, r in cases:
        got = differential_dot(u.clone(), w.clone(), r)
        expect(isinstance(got, torch.Tensor), label, f"return a tensor, got {type(got).__name__}")
        ref = (u @ w.T).double()
        expect(tuple(got.shape) == tuple(ref.shape), label,
               f"the result must be (N, M) = {tuple(ref.shape)}, got {tuple(got.shape)}: one column pair per output")
        got = got.double()
        if torch.allclose(got, ref, atol=1e-6):
            continue
        g_plus, g_minus = bm.program_crossbar(w, r), bm.program_crossbar(-w, r)
        raw = u.double() @ (g_plus - g_minus)
        hint = ("program G+ from w and G- from -w (program_crossbar), drive both with u, subtract the two column "
                "currents and divide by r - 1.")
        if torch.allclose(got, raw, atol=1e-6):
            hint = "the current difference is (r - 1) times the dot product: divide by r - 1."
        elif torch.allclose(got, raw / (2 * (r - 1)), atol=1e-6):
            hint = "G+ - G- is already (r - 1) w: divide by r - 1, not by 2 (r - 1)."
        elif torch.allclose(got, u.double() @ g_plus, atol=1e-6):
            hint = "that is the current of the positive column only: subtract the negative column's current."
        elif torch.allclose(got, (2 * u - 1).double() @ w.T.double(), atol=1e-6):
            hint = "the rows carry u in {0, 1}, not the +-1 signs 2u - 1."
        fail(label, f"differential_dot gives {got.flatten()[:4].tolist()} ... for r = {r}, expected "
                    f"{ref.flatten()[:4].tolist()} ... . {hint}")
    return passed(label, f"your differential pair reads u @ w.T exactly on {len(cases)} crossbars")


# --- exercise 2: how many weights do stuck cells flip? ----------------------------------------------------------

_CASES_2 = [(0.05, 0.05, 0.5), (0.1, 0.0, 0.5), (0.0, 0.2, 0.3), (0.2, 0.1, 0.8), (0.0, 0.0, 0.5), (0.3, 0.3, 1.0),
            (0.15, 0.05, 0.0)]


def flip_rate_reference(stuck_on: float, stuck_off: float, plus_share: float) -> float:
    """A +1 weight (LRS) is read wrong when its cell is stuck at HRS, a -1 weight when stuck at LRS."""
    return plus_share * stuck_off + (1 - plus_share) * stuck_on


@self_check
def check_2(flip_rate) -> str:
    """Check ``flip_rate(stuck_on, stuck_off, plus_share)`` = plus_share * stuck_off + (1 - plus_share) * stuck_on."""
    label = _label(2)
    expect(callable(flip_rate), label, "pass your function itself, e.g. check_2(flip_rate)")
    for on, off, plus in _CASES_2:
        got = as_number(flip_rate(on, off, plus), label, f"flip_rate({on}, {off}, {plus})")
        ref = flip_rate_reference(on, off, plus)
        if abs(got - ref) <= 1e-9 + 1e-6 * abs(ref):
            continue
        hint = "a +1 weight flips when its cell is stuck at HRS (OFF), a -1 weight when stuck at LRS (ON)."
        if abs(got - (on + off)) < 1e-9:
            hint = ("a stuck cell flips its weight only when it is stuck in the *other* state: a +1 weight stuck "
                    "at LRS still reads +1.")
        elif abs(got - (on + off) / 2) < 1e-9:
            hint = "(on + off) / 2 holds only for plus_share = 0.5: weight each rate by the share it can flip."
        elif abs(got - flip_rate_reference(off, on, plus)) < 1e-9:
            hint = "the rates are swapped: stuck-ON (LRS) flips the -1 weights, stuck-OFF (HRS) the +1 weights."
        fail(label, f"flip_rate({on}, {off}, {plus}) = {got:.6g}, expected {ref:.6g}. {hint}")
    return passed(label, f"your flip rate is right on {len(_CASES_2)} cases")
