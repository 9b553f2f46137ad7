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


# --- exercise 1: the spread of the noisy gradient (eq. 12) ----------------------------------------------------

def _gradient_std(dr: torch.Tensor, k: int) -> torch.Tensor:
    """The exact standard deviation of each component of ``dorefa.quantize_gradient(dr, k)`` for one sample."""
    n = 2**k - 1
    m = dr.abs().max()
    x = (dr / (2 * m) + 0.5) * n                  # in units of one step: the levels are the integers 0..n
    low = x.floor()
    p = x - low                                    # probability of rounding up to low + 1
    return 2 * m * torch.sqrt((p * (1 - p)).clamp(min=0.0)) / n


@self_check
def check_1(gradient_std) -> str:
    """Check ``gradient_std(dr, k)``, the exact per-component standard deviation of the k-bit noisy gradient."""
    label = _label(1)
    expect(callable(gradient_std), label, "pass your function itself, e.g. check_1(gradient_std)")
    gen = torch.Generator().manual_seed(2)
    cases = [
        torch.tensor([0.02, -0.1, 0.3, -1.0], dtype=torch.float64),
        torch.tensor([0.0, 0.5, -2.0, 1.0, 2.0], dtype=torch.float64),      # values right on a level
        0.01 * torch.randn(40, generator=gen, dtype=torch.float64),
    ]
    for dr in cases:
        m = float(dr.abs().max())
        for k in [1, 2, 3, 4, 8]:
            n = 2**k - 1
            expected = _gradient_std(dr, k)
            what = f"gradient_std(dr of {dr.numel()} values, k={k})"
            got = gradient_std(dr.clone(), k)
            expect_type(got, torch.Tensor, label, what)
            if got.shape != dr.shape:
                fail(label, f"{what} has shape {tuple(got.shape)}, expected {tuple(dr.shape)}: one standard "
                            f"deviation per component")
            got = got.detach().to(torch.float64)
            # compared as variances: a standard deviation near 0 is the square root of a tiny number, which a
            # float32 answer legitimately gets wrong in its first digits
            if torch.allclose(got**2, expected**2, rtol=1e-4, atol=1e-6 * m * m):
                continue
            x = dr / (2 * m) + 0.5
            if torch.allclose(got, expected**2, rtol=1e-5, atol=1e-7 * m * m):
                hint = "that looks like the variance: return its square root, the standard deviation."
            elif torch.allclose(got, expected / (2 * m), rtol=1e-5, atol=1e-7) or torch.allclose(
                    got, expected / 2, rtol=1e-5, atol=1e-7 * m):
                hint = ("right shape, wrong scale: eq. 12 maps the rounded value back by 2 max|dr| (q - 1/2); "
                        "the standard deviation scales by the same factor 2 max|dr|.")
            elif torch.allclose(got, torch.full_like(got, 2 * m / (n * 12**0.5)), rtol=1e-4):
                hint = ("that is the spread of the added noise N(k) itself; the output is rounded to one of two "
                        "levels, so its spread depends on where x lies between them.")
            elif torch.allclose(got, 2 * m * torch.sqrt(x * (1 - x)), rtol=1e-5, atol=1e-7 * m):
                hint = (f"with k = {k} the two levels around x are 1/(2^k - 1) = 1/{n} apart, not 0 and 1: the "
                        f"probability of rounding up is measured from the lower level, in steps.")
            elif torch.allclose(got, expected, rtol=0.05, atol=0.02 * m):
                hint = "close, but not exact: compute the standard deviation from the probabilities, do not sample."
            else:
                hint = ("write x = dr / (2 max|dr|) + 1/2; the noise rounds it to one of the two levels around "
                        "it; a value that takes the upper of two levels with probability p has variance "
                        "p (1 - p) times the squared distance between them.")
            i = int((got**2 - expected**2).abs().argmax())
            fail(label, f"{what}: element {i} is {got[i].item():.6g}, expected {expected[i].item():.6g}. {hint}")
    return passed(label, "the exact spread of the k-bit noisy gradient matches for k = 1, 2, 3, 4 and 8")


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
