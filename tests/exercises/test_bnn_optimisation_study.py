"""The self-checks of the BNN optimisation study chapter: solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qteach.exercises import bnn_optimisation_study as ex
from qteach.papers import bnn_optimisation_study as bo

LABEL = "ex-bnn_optimisation_study-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def lr_schedule(start, finish, epochs):
    rate = (finish / start) ** (1 / epochs)
    return [start * rate ** e for e in range(epochs)]


def lr_schedule_module(start, finish, epochs):
    """Another correct answer: the chapter's function, as a tensor."""
    return torch.tensor([bo.exponential_decay_lr(e, start, finish, epochs) for e in range(epochs)],
                        dtype=torch.float64)


def lr_schedule_logspace(start, finish, epochs):
    """Another correct answer: numpy's geomspace without the end point, as a tuple."""
    return tuple(np.geomspace(start, finish, epochs + 1)[:-1].tolist())


def test_check_1_passes(capsys):
    ex.check_1(lr_schedule)
    assert "✅ ex-bnn_optimisation_study-1 passed" in capsys.readouterr().out
    ex.check_1(lr_schedule_module)
    ex.check_1(lr_schedule_logspace)


@pytest.mark.parametrize("wrong,hint", [
    (lambda s, f, n: [s * (f / s) ** (e / max(n - 1, 1)) for e in range(n)], "divided by N - 1"),
    (lambda s, f, n: [s + (f - s) * e / n for e in range(n)], "linear decay"),
    (lambda s, f, n: [s * (f / s) ** ((e + 1) / n) for e in range(n)], "first epoch uses the start"),
    (lambda s, f, n: [s * (f / s) ** (e / n) for e in range(n + 1)], "one learning rate per epoch"),
    (lambda s, f, n: [s * (s / f) ** (e / n) for e in range(n)], "rate = (finish / start)"),
    (lambda s, f, n: 0.1, "should be a list"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def latent_weight(w0, grads, lr, gradient_clipping, weight_clipping):
    w = w0
    for g in grads:
        if gradient_clipping and abs(w) > 1:
            g = 0.0
        w = w - lr * g
        if weight_clipping:
            w = min(max(w, -1.0), 1.0)
    return w


def latent_weight_torch(w0, grads, lr, gradient_clipping, weight_clipping):
    """Another correct answer: autograd through the chapter's quantizer, torch.optim.SGD, clamp_ - as a tensor."""
    from qteach import nn as qnn

    w = torch.tensor([float(w0)], dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([w], lr=lr)
    q = qnn.SignQuantizer(clip=1.0 if gradient_clipping else None)
    for g in grads:
        opt.zero_grad()
        (q(w) * g).sum().backward()
        opt.step()
        if weight_clipping:
            with torch.no_grad():
                w.clamp_(-1, 1)
    return w.detach()[0]


def test_check_2_passes(capsys):
    ex.check_2(latent_weight)
    assert "✅ ex-bnn_optimisation_study-2 passed" in capsys.readouterr().out
    ex.check_2(latent_weight_torch)


def _variant(test=lambda w: abs(w) > 1, clip_first=False):
    def fn(w0, grads, lr, gradient_clipping, weight_clipping):
        w = w0
        for g in grads:
            if clip_first and weight_clipping:
                w = min(max(w, -1.0), 1.0)
            if gradient_clipping and test(w):
                g = 0.0
            w = w - lr * g
            if weight_clipping and not clip_first:
                w = min(max(w, -1.0), 1.0)
        return w
    return fn


@pytest.mark.parametrize("wrong,hint", [
    (_variant(lambda w: abs(w) >= 1), "at the border itself"),
    (_variant(lambda w: abs(w) <= 1), "OUTSIDE [-1, 1]"),
    (_variant(clip_first=True), "after each update"),
    (lambda w0, grads, lr, gc, wc: w0 - lr * sum(grads), "for each gradient g"),
    (lambda w0, grads, lr, gc, wc: "w", "should be a"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
