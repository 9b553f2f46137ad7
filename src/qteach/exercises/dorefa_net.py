"""Self-checks of the chapter "DoReFa-Net".

Each check calls the student's function on several tensors and bit widths, compares with
:mod:`qteach.papers.dorefa_net`, and either prints the success line or raises ``AssertionError`` with a hint naming
the likely mistake. Values that sit within rounding noise of a tie between two levels are not judged, so an
equivalent formula evaluated in a different order is accepted.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import dorefa_net as dorefa

_SLUG = "dorefa_net"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _near_tie(scaled: torch.Tensor) -> torch.Tensor:
    """Where ``scaled`` (a value times 2^k - 1) is within float noise of a half-integer."""
    return ((scaled - scaled.floor()) - 0.5).abs() < 1e-5


def _compare(got, expected, ties, label, what, hint_of):
    expect_type(got, torch.Tensor, label, what)
    if got.shape != expected.shape:
        fail(label, f"{what} has shape {tuple(got.shape)}, expected {tuple(expected.shape)} (same as the input)")
    got = got.detach().to(torch.float64)
    wrong = ((got - expected).abs() > 1e-5) & ~ties
    if bool(wrong.any()):
        i = int(wrong.flatten().nonzero()[0])
        fail(label, f"{what}: element {i} is {got.flatten()[i].item():.6g}, expected "
                    f"{expected.flatten()[i].item():.6g}. {hint_of(got)}")


# --- exercise 1: quantize_k ---------------------------------------------------------------------------------------

@self_check
def check_1(my_quantize_k) -> str:
    """Check ``my_quantize_k(r, k)`` against eq. 5 on values in [0, 1] for k = 1, 2, 3, 4, 8."""
    label = _label(1)
    expect(callable(my_quantize_k), label, "pass your function itself, e.g. check_1(my_quantize_k)")
    gen = torch.Generator().manual_seed(0)
    r = torch.cat([torch.tensor([0.0, 1.0, 0.1, 0.9]), torch.rand(300, generator=gen, dtype=torch.float64)])
    r = r.to(torch.float64)
    for k in [1, 2, 3, 4, 8]:
        n = 2**k - 1
        expected = dorefa.quantize_k(r, k)

        def hint(got, n=n, k=k):
            if torch.allclose(got, torch.floor(r * n) / n):
                return "that is floor: round to the nearest level (torch.round)."
            if torch.allclose(got, torch.round(r * 2**k) / 2**k):
                return f"use 2^k - 1 = {n} steps, not 2^k = {2**k}: there are 2^k levels from 0 to 1 inclusive."
            if torch.allclose(got, torch.round(r * n)):
                return f"these are the integer codes; divide by 2^k - 1 = {n} to return to [0, 1]."
            return f"r_o = round((2^k - 1) r) / (2^k - 1), here with 2^k - 1 = {n}."

        got = my_quantize_k(r.clone(), k)
        _compare(got, expected, _near_tie(r * n), label, f"my_quantize_k(r, k={k})", hint)
    return passed(label, "eq. 5 matches on 304 values in [0, 1] for k = 1, 2, 3, 4 and 8")


# --- exercise 2: tanh-normalised weights (eq. 9) ------------------------------------------------------------------

@self_check
def check_2(my_tanh_weights) -> str:
    """Check ``my_tanh_weights(w, k)`` against eq. 9 for k = 2, 3, 4 on weights of several shapes and scales."""
    label = _label(2)
    expect(callable(my_tanh_weights), label, "pass your function itself, e.g. check_2(my_tanh_weights)")
    gen = torch.Generator().manual_seed(1)
    cases = [
        torch.randn(50, generator=gen, dtype=torch.float64),
        0.05 * torch.randn(8, 3, 3, generator=gen, dtype=torch.float64),   # small weights: the max matters
        3.0 * torch.randn(16, 10, generator=gen, dtype=torch.float64),     # large weights: tanh saturates
    ]
    for w in cases:
        t = torch.tanh(w)
        for k in [2, 3, 4]:
            n = 2**k - 1
            expected = dorefa.quantize_weights(w, k)
            ties = _near_tie((t / (2 * t.abs().max()) + 0.5) * n)

            def hint(got, w=w, t=t, k=k):
                if float(got.min()) >= -1e-9:
                    return "all values are >= 0: map the quantized [0, 1] back to [-1, 1] with 2 q - 1."
                if torch.allclose(got, 2 * dorefa.quantize_k(t / 2 + 0.5, k) - 1):
                    return "divide tanh(w) by 2 max|tanh(w)|, so the largest weight reaches the ends of [0, 1]."
                if torch.allclose(got, 2 * dorefa.quantize_k(t / (2 * w.abs().max()) + 0.5, k) - 1):
                    return "normalise by the maximum of |tanh(w)|, not of |w|."
                if torch.allclose(got, 2 * dorefa.quantize_k(w / (2 * w.abs().max()) + 0.5, k) - 1):
                    return "apply tanh first: eq. 9 normalises tanh(w), not w."
                return "r_o = 2 quantize_k(tanh(w) / (2 max|tanh(w)|) + 1/2) - 1."

            got = my_tanh_weights(w.clone(), k)
            _compare(got, expected, ties, label, f"my_tanh_weights(w of shape {tuple(w.shape)}, k={k})", hint)
    return passed(label, "eq. 9 matches for k = 2, 3, 4 on small, medium and saturating weights")
