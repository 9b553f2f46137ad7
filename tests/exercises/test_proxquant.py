"""The self-checks of the ProxQuant chapter: solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import proxquant as ex
from qteach.papers import proxquant as pq

LABEL = "ex-proxquant-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def prox_ternary(theta, strength):
    q = theta.clamp(-1, 1).round()
    return q + (theta - q).sign() * ((theta - q).abs() - strength).clamp(min=0)


def prox_ternary_where(theta, strength):
    """Another correct answer: nearest level by comparisons, then a clamp between the level and theta."""
    q = torch.where(theta > 0.5, 1.0, torch.where(theta < -0.5, -1.0, 0.0)).to(theta.dtype)
    moved = torch.where(theta > q, theta - strength, theta + strength)
    return torch.where(theta > q, torch.maximum(moved, q), torch.minimum(moved, q))


def test_check_1_passes(capsys):
    ex.check_1(prox_ternary)
    assert f"✅ {LABEL.format(1)} passed" in capsys.readouterr().out
    ex.check_1(prox_ternary_where)


@pytest.mark.parametrize("wrong,hint", [
    (lambda t, s: t.clamp(-1, 1).round(), "projection"),
    (lambda t, s: pq.prox_binary(t, s), "toward \\+-1 only"),
    (lambda t, s: t.clamp(-1, 1).round() + (t - t.clamp(-1, 1).round()).sign()
     * ((t - t.clamp(-1, 1).round()).abs() - s), "strength 0|cross their level"),
    (lambda t, s: t - s * t.sign(), "strength 0|differs"),
    (lambda t, s: t[:3], "shape"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert any(h in str(err.value) for h in hint.replace("\\", "").split("|"))


def test_check_1_overshoot_hint():
    def overshoot(t, s):
        q = t.clamp(-1, 1).round()
        return q + (t - q).sign() * ((t - q).abs() - s) if s > 0 else t.clone()

    with pytest.raises(AssertionError, match="cross their level"):
        ex.check_1(overshoot)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def epochs_to_binary(theta0, lr, reg_rate, steps_per_epoch):
    epoch, moved = 0, 0.0
    while moved < 1 - theta0:
        epoch += 1
        moved += steps_per_epoch * lr * reg_rate * epoch
    return epoch


def epochs_closed_form(theta0, lr, reg_rate, steps_per_epoch):
    """Another correct answer: the smallest E with S lr r E(E+1)/2 >= 1 - theta0, from the quadratic."""
    c = 2 * (1 - theta0) / (steps_per_epoch * lr * reg_rate)
    e = math.ceil((-1 + math.sqrt(1 + 4 * c)) / 2)
    while e > 0 and (e - 1) * e >= c:
        e -= 1
    return torch.tensor(float(e))


def test_check_2_passes(capsys):
    ex.check_2(epochs_to_binary)
    assert f"✅ {LABEL.format(2)} passed" in capsys.readouterr().out
    ex.check_2(epochs_closed_form)


@pytest.mark.parametrize("wrong,hint", [
    (lambda t, lr, r, s: epochs_to_binary(t, lr, r, s) + 1, "too late"),
    (lambda t, lr, r, s: epochs_to_binary(t, lr, r, s) - 1, "too early"),
    (lambda t, lr, r, s: epochs_to_binary(t, lr, r, 1), "every optimizer step"),
    (lambda t, lr, r, s: epochs_to_binary(t, 1.0, r, s), "lr \\* lambda_t"),
    (lambda t, lr, r, s: 3.5, "is not"),
    (lambda t, lr, r, s: "3", "should be a number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint.replace("\\", "") in str(err.value)


def test_check_2_reference_matches_training():
    """The closed form agrees with prox steps applied to a weight that has no loss gradient."""
    theta0, lr, reg_rate, steps = 0.1, 3e-3, 3.0, 11
    w = torch.tensor([theta0], dtype=torch.float64)
    epoch = 0
    while True:
        for _ in range(steps):
            w = pq.prox_binary(w, lr * pq.reg_strength(epoch, reg_rate)).clamp(-1, 1)
        if w.item() == 1.0:
            break
        epoch += 1
    assert epoch == epochs_to_binary(theta0, lr, reg_rate, steps)
