"""Self-checks of the chapter "BinaryConnect" (Courbariaux, Bengio, David, NIPS 2015).

Each check calls the student's function on several inputs (edge cases included), compares with a reference
computed independently (the paper's formulas written out with torch.clamp), and either prints the success line or
raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math
import numbers

import torch

from qteach.checks import expect, fail, passed, self_check

_SLUG = "binaryconnect"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _require_tensor(value, label: str, call: str, shape) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        fail(label, f"{call} should return a torch.Tensor, got {type(value).__name__}")
    if tuple(value.shape) != tuple(shape):
        fail(label, f"{call} returned shape {tuple(value.shape)}, expected {tuple(shape)}")
    if not value.is_floating_point():
        value = value.to(torch.float32)
    return value.detach()


# --- exercise 1: stochastic binarization, eq. 2-3 ----------------------------------------------------------------

def _stochastic_cases():
    g = torch.Generator().manual_seed(4)
    w = torch.linspace(-1.6, 1.6, 33)
    cases = [(w, torch.rand(33, generator=g)) for _ in range(3)]
    # u on a grid that avoids exact ties with p, and weights in the saturated regions
    cases.append((torch.tensor([-3.0, -1.0, 1.0, 2.0, 0.0, 0.5]), torch.tensor([0.01, 0.99, 0.99, 0.01, 0.49, 0.74])))
    cases.append((torch.full((20,), 0.2), torch.linspace(0.025, 0.975, 20)))
    return cases


def _stochastic_reference(w, u):
    p = torch.clamp((w + 1) / 2, 0, 1)
    return torch.where(u < p, 1.0, -1.0)


@self_check
def check_1(stochastic_binarize) -> str:
    """Check ``stochastic_binarize(w, u)``: +1 where u < hard_sigmoid(w), else -1 (u ~ U[0, 1) given)."""
    label = _label(1)
    expect(callable(stochastic_binarize), label, "pass your function itself, e.g. check_1(stochastic_binarize)")
    for w, u in _stochastic_cases():
        call = f"stochastic_binarize(w, u) with w in [{w.min():.2f}, {w.max():.2f}]"
        expected = _stochastic_reference(w, u)
        got = _require_tensor(stochastic_binarize(w.clone(), u.clone()), label, call, expected.shape)
        if torch.equal(got, expected):
            continue
        values = set(got.unique().tolist())
        if values <= {0.0, 1.0} and torch.equal(2 * got - 1, expected):
            fail(label, f"{call} returned 0/1; BinaryConnect's binary weights are -1 and +1 (map 0 -> -1).")
        if torch.equal(got, torch.where(u < torch.sigmoid(w), 1.0, -1.0)):
            fail(label, f"{call} used the logistic sigmoid; eq. 3 is the hard sigmoid clip((w + 1) / 2, 0, 1).")
        if torch.equal(got, torch.where(u > torch.clamp((w + 1) / 2, 0, 1), 1.0, -1.0)) or \
                torch.equal(got, -expected):
            fail(label, f"{call} is reversed: w_b = +1 must have probability p = hard_sigmoid(w), i.e. u < p "
                        "gives +1 (a large positive w should almost always give +1).")
        if torch.equal(got, torch.where(u < (w + 1), 1.0, -1.0)) or \
                torch.equal(got, torch.where(u < torch.clamp(w + 1, 0, 1), 1.0, -1.0)):
            fail(label, f"{call}: the probability is (w + 1) / 2, not w + 1 (w = 0 must give p = 1/2).")
        if torch.equal(got, torch.where(u < w, 1.0, -1.0)):
            fail(label, f"{call}: p is hard_sigmoid(w) = clip((w + 1) / 2, 0, 1), not w itself.")
        fail(label, f"{call} differs from the reference: p = clip((w + 1) / 2, 0, 1), then +1 where u < p, "
                    "-1 elsewhere.")
    return passed(label, "stochastic binarization with the hard sigmoid matches eq. 2-3 on 5 cases, saturated "
                         "weights included")


# --- exercise 2: why the update goes to the real weights (predict, then simulate) ---------------------------------

# (w0, grad, lr, steps with Algorithm 1, steps with the update applied to w_b): no case puts a weight on 0 exactly
# (w0 / (lr * grad) is at least a sixth of a step away from an integer), so float rounding cannot move a flip.
_FLIP_CASES = [
    (0.32, 0.5, 0.1, 7, None),        # the exercise's example: 0.05 per step
    (-0.55, -0.3, 0.2, 10, None),     # negative weight pushed up
    (0.99, 0.0013, 1.0, 762, None),   # tiny steps add up over hundreds of updates
    (0.3, -0.2, 0.5, None, None),     # pushed away from 0: never flips (the clip holds it at 1)
    (0.9, 1.0, 1.5, 1, 1),            # one step larger than 1: both flip at once
    (0.05, 0.4, 3.0, 1, 1),           # the step overshoots and is clipped to -1
]


def _is_never(value) -> bool:
    return value is None or (isinstance(value, float) and math.isinf(value))


def _as_steps(value, label: str, call: str):
    if _is_never(value):
        return None
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point():
        value = int(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(label, f"{call} returned {value!r}; return an int (the step of the first flip) or None (no flip within "
                    "1000 steps)")
    return int(value)


@self_check
def check_2(steps_to_flip) -> str:
    """Check ``steps_to_flip(w0, grad, lr, buggy)``: the first step at which the deterministic binary weight changes
    sign under Algorithm 1 (``buggy=False``) or when the update is applied to ``w_b`` (``buggy=True``)."""
    label = _label(2)
    expect(callable(steps_to_flip), label, "pass your function itself, e.g. check_2(steps_to_flip)")
    for w0, grad, lr, right, wrong_update in _FLIP_CASES:
        for buggy, expected in ((False, right), (True, wrong_update)):
            call = f"steps_to_flip({w0}, {grad}, {lr}, buggy={buggy})"
            got = _as_steps(steps_to_flip(w0, grad, lr, buggy), label, call)
            if got == expected:
                continue
            if not buggy and expected is None:
                hint = ("here the gradient pushes the weight away from 0 (w - lr * grad grows), and the clip holds "
                        "it at +-1: its sign never changes.")
            elif not buggy and got is None:
                hint = ("with Algorithm 1 the real weight keeps every small step, so enough steps in the same "
                        "direction must flip it: simulate up to 1000 steps of w <- clip(w - lr * grad, -1, 1).")
            elif not buggy and abs(got - expected) == 1:
                hint = ("off by one: count the updates from 1, and report the first t at which sign(w_t) differs "
                        "from sign(w0), with sign(0) = +1.")
            elif buggy and got == right and right != expected:
                hint = ("that is Algorithm 1's answer; the buggy version replaces w by clip(sign(w) - lr * grad, -1, 1) "
                        "at every step. Look at where each of its steps starts from.")
            elif buggy:
                hint = ("the buggy version computes w <- clip(sign(w) - lr * grad, -1, 1): every step starts again "
                        "from +1 or -1.")
            else:
                hint = "simulate w <- clip(w - lr * grad, -1, 1) and stop at the first step where the sign changes."
            fail(label, f"{call} returned {got}, expected {expected} (None = no flip within 1000 steps). Hint: {hint}")
    return passed(label, f"flip steps correct for Algorithm 1 and for the update applied to w_b on "
                         f"{len(_FLIP_CASES)} weights, including tiny steps and steps larger than 1")
