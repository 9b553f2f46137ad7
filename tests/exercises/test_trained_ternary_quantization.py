"""The self-checks of "Trained Ternary Quantization": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import trained_ternary_quantization as ex
from qteach.papers import trained_ternary_quantization as ttq

LABEL = "ex-trained_ternary_quantization-{}"


def _fails(check, wrong, hint, n):
    with pytest.raises(AssertionError) as error:
        check(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(n)) and hint in message, message


# --- exercise 1 ---------------------------------------------------------------------------------------------

def ttq_forward(w, w_p, w_n, t):
    delta = t * w.abs().max()
    return w_p * (w > delta).float() - w_n * (w < -delta).float()


def test_check_1_passes_the_solution(capsys):
    ex.check_1(ttq_forward)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out
    ex.check_1(lambda w, p, n, t: ttq.ttq_ternarize(w, p, n, t))


@pytest.mark.parametrize("wrong, hint", [
    (lambda w, p, n, t: p * (w > 0.7 * w.abs().mean()).float() - n * (w < -0.7 * w.abs().mean()).float(), "TWN"),
    (lambda w, p, n, t: p * (w > t * w.abs().max()).float() + n * (w < -t * w.abs().max()).float(), "minus sign"),
    (lambda w, p, n, t: p * (w > t * w.abs().max()).float() - p * (w < -t * w.abs().max()).float(), "own scale"),
    (lambda w, p, n, t: p * (w >= t * w.abs().max()).float() - n * (w <= -t * w.abs().max()).float(), "not w >="),
    (lambda w, p, n, t: ttq_forward(w, p, n, t).flatten(), "shape"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    _fails(ex.check_1, wrong, hint, 1)


# --- exercise 2 ---------------------------------------------------------------------------------------------

def ttq_backward(w, grad, w_p, w_n, t):
    delta = t * w.abs().max()
    pos, neg = w > delta, w < -delta
    scale = torch.where(pos, w_p, torch.where(neg, w_n, 1.0))
    return grad * scale, (grad * pos).sum(), -(grad * neg).sum()


def paper_transcription(w, grad, w_p, w_n, t):
    grad_w, grad_p, grad_n = ttq_backward(w, grad, w_p, w_n, t)
    return grad_w, grad_p, -grad_n


def plain_ste(w, grad, w_p, w_n, t):
    _, grad_p, grad_n = ttq_backward(w, grad, w_p, w_n, t)
    return grad, grad_p, grad_n


def zero_region_blocked(w, grad, w_p, w_n, t):
    grad_w, grad_p, grad_n = ttq_backward(w, grad, w_p, w_n, t)
    delta = t * w.abs().max()
    return grad_w * (w.abs() > delta), grad_p, grad_n


def averaged(w, grad, w_p, w_n, t):
    delta = t * w.abs().max()
    pos, neg = w > delta, w < -delta
    grad_w, _, _ = ttq_backward(w, grad, w_p, w_n, t)
    return grad_w, (grad * pos).sum() / pos.sum(), -(grad * neg).sum() / neg.sum()


def swapped(w, grad, w_p, w_n, t):
    return ttq_backward(w, grad, w_n, w_p, t)[0], *ttq_backward(w, grad, w_p, w_n, t)[1:]


def test_check_2_passes_the_solution(capsys):
    ex.check_2(ttq_backward)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out
    ex.check_2(lambda w, g, p, n, t: ttq.ttq_gradients(g, w, p, n, t))


@pytest.mark.parametrize("wrong, hint", [
    (paper_transcription, "the sign is wrong"),
    (plain_ste, "plain straight-through"),
    (zero_region_blocked, "zero region"),
    (averaged, "do not average"),
    (swapped, "swapped"),
    (lambda w, g, p, n, t: ttq_backward(w, g, p, n, t)[:2], "three things"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    _fails(ex.check_2, wrong, hint, 2)
