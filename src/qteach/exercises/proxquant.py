"""Self-checks of the ProxQuant chapter (notebooks/2019/proxquant.ipynb).

Each check calls the student's function, compares it with a reference or a closed form, and either prints the
success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import (
    as_number,
    expect,
    expect_tensor_like,
    fail,
    passed,
    self_check,
)

_SLUG = "proxquant"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the prox step toward the ternary set {-1, 0, +1} ---------------------------------------------


def _ternary_reference(theta: torch.Tensor, strength: float) -> torch.Tensor:
    level = theta.clamp(-1, 1).round()
    residual = theta - level
    return level + residual.sign() * (residual.abs() - strength).clamp(min=0)


def _ternary_cases():
    g = torch.Generator().manual_seed(3)
    theta = torch.rand(400, generator=g, dtype=torch.float64) * 3 - 1.5
    theta = theta[((theta.abs() - 0.5).abs() > 1e-3)]  # no weight on a tie between two levels
    hand = torch.tensor([0.2, -0.3, 0.7, -0.9, 1.3, -1.05, 0.0, 1.0, -0.45], dtype=torch.float64)
    for strength in (0.0, 0.05, 0.25, 2.0):
        yield hand, strength
        yield theta, strength


@self_check
def check_1(prox_ternary) -> str:
    """Check ``prox_ternary(theta, strength)``: every weight soft-thresholded by ``strength`` toward its nearest
    level of {-1, 0, +1}, without crossing it."""
    label = _label(1)
    expect(callable(prox_ternary), label, "pass your function itself, e.g. check_1(prox_ternary)")
    for theta, strength in _ternary_cases():
        got = prox_ternary(theta.clone(), strength)
        expect_tensor_like(got, theta, label, "the result")
        expected = _ternary_reference(theta, strength)
        got = got.detach().to(torch.float64)
        if torch.allclose(got, expected, atol=1e-9):
            continue
        if torch.allclose(got, theta.clamp(-1, 1).round(), atol=1e-9):
            fail(label, "you returned the nearest level itself: that is the projection (an infinite strength), "
                        "the prox moves each weight only by `strength` toward it.")
        binary = torch.where(theta >= 0, 1.0, -1.0).to(theta.dtype)
        binary_prox = binary + (theta - binary).sign() * ((theta - binary).abs() - strength).clamp(min=0)
        if torch.allclose(got, binary_prox, atol=1e-9):
            fail(label, "your weights move toward +-1 only: 0 is a level too, the nearest of -1, 0, +1 is the "
                        "target (e.g. round(clamp(theta, -1, 1))).")
        level = theta.clamp(-1, 1).round()
        overshoot = level + (theta - level).sign() * ((theta - level).abs() - strength)
        if torch.allclose(got, overshoot, atol=1e-9):
            fail(label, "some weights cross their level: the step is [|theta - q| - strength]_+, clamp it at 0 "
                        "so that a weight stops on the level.")
        if strength == 0.0:
            fail(label, "with strength 0 the prox must return theta unchanged: move each weight by at most "
                        "`strength`.")
        fail(label, f"with strength {strength} your result differs from the soft-thresholding toward the nearest "
                    "of -1, 0, +1 (q + sign(theta - q) * max(|theta - q| - strength, 0)).")
    return passed(label, "each weight moves by the prox strength toward its nearest ternary level, and stops there")


# --- exercise 2: when does the increasing schedule make a weight binary? -------------------------------------


def _epochs_reference(theta0: float, lr: float, reg_rate: float, steps_per_epoch: int) -> int:
    moved, epoch = 0.0, 0
    while True:
        moved += steps_per_epoch * lr * reg_rate * epoch
        if moved >= 1 - theta0:
            return epoch
        epoch += 1


_EPOCH_CASES = ((0.1, 3e-3, 3.0, 11), (0.1, 3e-3, 1.0, 11), (0.5, 0.01, 0.5, 40), (0.9, 0.05, 2.0, 3),
                (0.02, 1e-3, 10.0, 16), (0.3, 0.01, 1e-2, 100))


@self_check
def check_2(epochs_to_binary) -> str:
    """Check ``epochs_to_binary(theta0, lr, reg_rate, steps_per_epoch)``: the first epoch (counted from 0) at whose
    end a weight starting at ``theta0`` in (0, 1), with no loss gradient, has reached +1."""
    label = _label(2)
    expect(callable(epochs_to_binary), label, "pass your function itself, e.g. check_2(epochs_to_binary)")
    for theta0, lr, reg_rate, steps in _EPOCH_CASES:
        got = as_number(epochs_to_binary(theta0, lr, reg_rate, steps), label, "the epoch")
        expected = _epochs_reference(theta0, lr, reg_rate, steps)
        if got == expected:
            continue
        if got == expected + 1:
            fail(label, "one epoch too late: epochs count from 0 and the last epoch is the one during which the "
                        "weight reaches 1 (sum over t = 0..E of the strengths >= 1 - theta0).")
        if got == expected - 1:
            fail(label, "one epoch too early: lambda_0 = 0, so epoch 0 does not move the weight; the weight is "
                        "binary at the end of the first epoch E with steps * lr * reg_rate * E(E+1)/2 >= "
                        "1 - theta0.")
        if got == _epochs_reference(theta0, lr, reg_rate, 1):
            fail(label, "the prox runs after every optimizer step: multiply by steps_per_epoch.")
        if got == _epochs_reference(theta0, 1.0, reg_rate, steps):
            fail(label, "the prox strength is lr * lambda_t (the step size times the regularization), not "
                        "lambda_t alone.")
        fail(label, f"for theta0={theta0}, lr={lr}, reg_rate={reg_rate}, steps_per_epoch={steps} the answer is "
                    f"not {got:g}: the weight moves by lr * reg_rate * t at each step of epoch t.")
    return passed(label, "the increasing strength makes a weight binary in the predicted epoch")
