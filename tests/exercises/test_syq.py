"""The self-checks of the SYQ chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import syq as ex

LABEL = "ex-syq-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def pixel_scales(w, eta):
    above = (w.abs() > eta * w.abs().max()).float()
    return (w.abs() * above).sum(dim=(0, 1)) / above.sum(dim=(0, 1)).clamp(min=1)


def pixel_scales_loop(w, eta):
    """Another correct answer: a loop over positions, flat, float64."""
    w = w.double()
    t = eta * w.abs().max()
    out = []
    for i in range(w.shape[2]):
        for j in range(w.shape[3]):
            group = w[:, :, i, j].abs()
            kept = group[group > t]
            out.append(kept.mean() if kept.numel() else torch.tensor(0.0, dtype=torch.float64))
    return torch.stack(out)


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(pixel_scales)
    assert "✅ ex-syq-1 passed" in capsys.readouterr().out


def test_check_1_accepts_another_correct_answer():
    ex.check_1(pixel_scales_loop)


@pytest.mark.parametrize("wrong,hint", [
    (lambda w, eta: w.abs().mean(dim=(0, 1)), "average only over"),
    (lambda w, eta: w.abs().mean(dim=(1, 2, 3)), "output channel"),
    (lambda w, eta: pixel_scales(w, eta).T, "swapped"),
    (lambda w, eta: (w.abs() * (w.abs() > eta * w.abs().amax(dim=(0, 1), keepdim=True))).sum(dim=(0, 1))
     / (w.abs() > eta * w.abs().amax(dim=(0, 1), keepdim=True)).sum(dim=(0, 1)).clamp(min=1), "one for the whole"),
    (lambda w, eta: w.abs().mean().expand(3), "expected kh * kw"),
    (lambda w, eta: 2 * pixel_scales(w, eta), "for each (i, j)"),
    (lambda w, eta: 1.0, "should be a Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def scale_gradient(w, upstream, eta):
    above = w.abs() > eta * w.abs().max()
    return (upstream * torch.sign(w) * above).sum()


def scale_gradient_autograd(w, upstream, eta):
    """Another correct answer: let autograd do it, as a float."""
    alpha = torch.tensor(2.0, requires_grad=True)
    t = eta * w.abs().max()
    q = torch.where(w.abs() > t, alpha * torch.sign(w), torch.zeros_like(w))
    (q * upstream).sum().backward()
    return alpha.grad.item()


def test_check_2_passes_on_the_solution(capsys):
    ex.check_2(scale_gradient)
    assert "✅ ex-syq-2 passed" in capsys.readouterr().out


def test_check_2_accepts_another_correct_answer():
    ex.check_2(scale_gradient_autograd)


@pytest.mark.parametrize("wrong,hint", [
    (lambda w, g, eta: (g * torch.sign(w)).sum(), "do not contribute"),
    (lambda w, g, eta: (g * (w.abs() > eta * w.abs().max())).sum(), "sign is missing"),
    (lambda w, g, eta: scale_gradient(w, g, eta) / (w.abs() > eta * w.abs().max()).sum(), "not a mean"),
    (lambda w, g, eta: 1.3 * scale_gradient(w, g, eta), "not alpha * sign"),
    (lambda w, g, eta: -scale_gradient(w, g, eta), "sum dL/dQ_i"),
    (lambda w, g, eta: g * torch.sign(w), "one number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
