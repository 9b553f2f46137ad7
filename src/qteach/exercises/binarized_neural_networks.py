"""Self-checks of the Binarized Neural Networks chapter (notebooks/2016/binarized_neural_networks.ipynb).

Each check calls the student's function on several inputs, compares with a reference computed independently
(the frequencies of stochastic binarization, an integer matrix product), and either prints the success
line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check

_SLUG = "binarized_neural_networks"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: stochastic binarization --------------------------------------------------------------------

_LEVELS = [-2.0, -1.0, -0.6, -0.2, 0.0, 0.2, 0.5, 0.9, 1.0, 1.5]
_DRAWS = 40_000  # per level: a frequency's standard deviation is at most 0.0025, the tolerance 0.015 is 6 of them


def _frequencies(got) -> torch.Tensor:
    return (got > 0).double().mean(dim=1)


@self_check
def check_1(stochastic_sign) -> str:
    """Check ``stochastic_sign(x, generator)``: +1 with probability clip((x + 1) / 2, 0, 1), else -1, drawn from
    ``generator``; judged on the frequencies of 40,000 draws at each of 10 values of x."""
    label = _label(1)
    expect(callable(stochastic_sign), label, "pass your function itself, e.g. check_1(stochastic_sign)")
    x = torch.tensor(_LEVELS).unsqueeze(1).expand(len(_LEVELS), _DRAWS).contiguous()
    got = stochastic_sign(x.clone(), torch.Generator().manual_seed(0))
    what = f"stochastic_sign(x of shape {tuple(x.shape)}, generator)"
    expect_type(got, torch.Tensor, label, what)
    if got.shape != x.shape:
        fail(label, f"{what} has shape {tuple(got.shape)}, expected {tuple(x.shape)} (one draw per element).")
    got = got.detach().double()
    values = set(got.unique().tolist())
    if not values <= {-1.0, 1.0}:
        if values <= {0.0, 1.0}:
            fail(label, "the result holds 0s and 1s: a binary activation is -1 or +1 (2 b - 1 maps one to the other).")
        fail(label, f"the result should hold only -1 and +1, got values such as {sorted(values)[:4]}.")
    again = stochastic_sign(x.clone(), torch.Generator().manual_seed(0))
    expect(isinstance(again, torch.Tensor) and torch.equal(again.detach().double(), got), label,
           "two calls with generators of the same seed gave different draws: draw the random numbers from the "
           "generator passed in (e.g. torch.rand(x.shape, generator=generator)).")
    levels = torch.tensor(_LEVELS, dtype=torch.float64)
    freq = _frequencies(got)
    expected = ((levels + 1) / 2).clamp(0, 1)
    if bool(((freq - expected).abs() < 0.015).all()):
        return passed(label, "P(+1) = clip((x + 1) / 2, 0, 1) at 10 values of x, within 0.015 over 40,000 draws each")
    candidates = [
        (torch.sigmoid(levels), ("that is the logistic sigmoid; BNN uses the hard sigmoid clip((x + 1) / 2, 0, 1), "
                                 "cheaper and exactly 0 or 1 outside [-1, 1].")),
        (1 - expected, "+1 and -1 are swapped: a large x should give +1 almost always."),
        ((levels >= 0).double(), "these are deterministic signs: draw +1 with probability p, do not threshold at 0."),
        (torch.full_like(levels, 0.5), "P(+1) should depend on x: p = clip((x + 1) / 2, 0, 1)."),
    ]
    for value, hint in candidates:
        if bool(((freq - value).abs() < 0.015).all()):
            fail(label, hint)
    i = int((freq - expected).abs().argmax())
    fail(label, f"at x = {_LEVELS[i]} the frequency of +1 is {freq[i].item():.3f}, expected about "
                f"{expected[i].item():.3f}: return +1 where a uniform draw u < p = clip((x + 1) / 2, 0, 1), else -1.")


# --- exercise 2: the first layer on bit planes --------------------------------------------------------------


def _bitplane_inputs():
    g = torch.Generator().manual_seed(8)
    q1 = torch.randint(0, 256, (5, 16), generator=g)
    w1 = torch.where(torch.rand(3, 16, generator=g) < 0.5, -1.0, 1.0)
    q2 = torch.tensor([[255, 0, 128, 1]])  # every bit set, none set, only the top one, only the bottom one
    w2 = torch.tensor([[1.0, -1.0, -1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]])
    return [(q1, w1), (q2, w2)]


def _bitplane_hint(got, q, w):
    planes = [((q >> n) & 1).double() for n in range(8)]
    wd = w.double()
    candidates = [
        (sum(2 ** (n + 1) * (planes[n] @ wd.T) for n in range(8)),
         "the weights of the planes are 2^(n-1) for n = 1..8: the least significant plane counts 1, not 2."),
        (sum(2**n * (planes[n] @ wd.T) for n in range(7)), "there are 8 planes (n = 1..8): one is missing."),
        (sum(2**n * ((2 * planes[n] - 1) @ wd.T) for n in range(8)),
         "a plane x^n holds 0s and 1s (the bits of q), not -1/+1."),
        (sum(planes[n] @ wd.T for n in range(8)), "weight plane n by 2^(n-1) before adding."),
    ]
    for value, hint in candidates:
        if got.shape == value.shape and torch.allclose(got.double(), value):
            return hint
    return "split q into its 8 bits x^n = (q >> (n-1)) & 1 and add 2^(n-1) * (x^n @ w_b.T)."


@self_check
def check_2(bitplane_dot) -> str:
    """Check ``bitplane_dot(q, w_b)``: 8-bit codes (M, K) times +-1 weights (N, K) on bit planes, (M, N)."""
    label = _label(2)
    expect(callable(bitplane_dot), label, "pass your function itself, e.g. check_2(bitplane_dot)")
    for q, w in _bitplane_inputs():
        got = bitplane_dot(q.clone(), w.clone())
        expect_type(got, torch.Tensor, label, "bitplane_dot(q, w_b)")
        expected = q.double() @ w.double().T
        if got.shape != expected.shape:
            fail(label, f"the result has shape {tuple(got.shape)}, expected {tuple(expected.shape)} = (M, N).")
        if not torch.equal(got.double(), expected):
            fail(label, f"for q = {q[0, :4].tolist()}... the result differs from q @ w_b.T. "
                        f"{_bitplane_hint(got, q, w)}")
    return passed(label, "the bit-plane sum equals the integer product q @ w_b.T exactly on 2 inputs (random codes; "
                         "codes 255, 0, 128 and 1)")
