"""Self-checks of the chapter "BinaryConnect" (Courbariaux, Bengio, David, NIPS 2015).

Each check calls the student's function on several inputs (edge cases included), compares with a reference
computed independently (the paper's formulas written out with torch.clamp), and either prints the success line or
raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

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


# --- exercise 2: one update of Algorithm 1 ------------------------------------------------------------------------

def _update_cases():
    g = torch.Generator().manual_seed(8)
    cases = [(torch.tensor([0.5, -0.9, 0.95, 0.0]), torch.tensor([1.0, 2.0, -1.0, 0.0]), 0.1)]
    for lr in (0.01, 0.3):
        cases.append((2 * torch.rand(50, generator=g) - 1, torch.randn(50, generator=g), lr))
    cases.append((torch.tensor([1.0, -1.0]), torch.tensor([-5.0, 5.0]), 0.5))  # already on the clip
    cases.append((torch.tensor([1.4, -2.0, 0.3]), torch.tensor([0.2, -0.1, 0.0]), 1.0))  # w outside [-1, 1]
    return cases


_UPDATE_MISTAKES = [  # (wrong formula of (w, g, lr), hint), tried in order; the first one matching every case wins
    (lambda w, g, lr: w - lr * g, "is not clipped: Algorithm 1 clips the real-valued weight to [-1, 1] right after "
                                  "the update (beyond +-1 a weight stops affecting w_b)."),
    (lambda w, g, lr: torch.clamp(w, -1, 1) - lr * g, "clips before the update; clip the result: "
                                                      "clip(w - lr * grad, -1, 1)."),
    (lambda w, g, lr: torch.clamp(w + lr * g, -1, 1), "climbs the gradient: gradient descent subtracts lr * grad."),
    (lambda w, g, lr: torch.where(w - lr * g >= 0, 1.0, -1.0), "returned binary values; the update goes to the "
                                                               "real-valued weight w, which keeps accumulating small "
                                                               "steps. Binarize only in the forward pass."),
]


@self_check
def check_2(bc_update) -> str:
    """Check ``bc_update(w, grad_wb, lr)`` = clip(w - lr * grad_wb, -1, 1)."""
    label = _label(2)
    expect(callable(bc_update), label, "pass your function itself, e.g. check_2(bc_update)")
    results = []  # (w, g, lr, expected, got)
    for w, g, lr in _update_cases():
        call = f"bc_update(w, grad_wb, lr={lr})"
        expected = torch.clamp(w - lr * g, -1, 1)
        got = _require_tensor(bc_update(w.clone(), g.clone(), lr), label, call, expected.shape)
        results.append((w, g, lr, expected, got))
    wrong = [r for r in results if not torch.allclose(r[4], r[3], atol=1e-6)]
    if wrong:
        lr = wrong[0][2]
        hint = next((hint for formula, hint in _UPDATE_MISTAKES
                     if all(torch.allclose(got, formula(w, g, lr_), atol=1e-6) for w, g, lr_, _, got in results)),
                    "differs from clip(w - lr * grad_wb, -1, 1).")
        fail(label, f"bc_update(w, grad_wb, lr={lr}) {hint} ({len(wrong)} of {len(results)} cases are wrong.)")
    return passed(label, f"Algorithm 1's update (step on the real weight, then clip to [-1, 1]) matches on "
                         f"{len(results)} cases")
