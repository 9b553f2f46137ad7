"""The self-checks of the chapter on circulant binary convolutional networks: solutions pass, plausible mistakes
fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import circulant_bcn as ex
from qteach.papers import circulant_bcn as cb

LABEL = "ex-circulant_bcn-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def four_cifs(w):
    return torch.stack([torch.rot90(w, -k, dims=(-2, -1)) for k in range(4)])


def four_cifs_counter_clockwise(w):
    """Another correct answer: the other turning direction."""
    return torch.stack([torch.rot90(w, k, dims=(-2, -1)) for k in range(4)])


def four_cifs_ring(w):
    """Another correct answer: the module's ring shift."""
    return cb.circulant_filters(w, 4)


@pytest.mark.parametrize("answer", [four_cifs, four_cifs_counter_clockwise, four_cifs_ring])
def test_check_1_passes(answer, capsys):
    ex.check_1(answer)
    assert "✅ ex-circulant_bcn-1 passed" in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [
    (lambda w: torch.stack([w.transpose(-2, -1) if k % 2 else w for k in range(4)]), "mirror image"),
    (lambda w: torch.stack([w] * 4), "k quarter turns"),
    (lambda w: torch.stack([torch.flip(w, dims=(-1,)) if k else w for k in range(4)]), "quarter turns"),
    (lambda w: torch.cat([torch.rot90(w, k, dims=(-2, -1)) for k in range(4)]), "new first dimension"),
    (lambda w: torch.stack([torch.rot90(w, k * k, dims=(-2, -1)) for k in range(4)]), "k quarter turns"),
])
def test_check_1_fails_with_hint(answer, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(answer)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def learned_filter_grad(grad_cifs):
    return sum(torch.rot90(grad_cifs[k], k, dims=(-2, -1)) for k in range(4))


def learned_filter_grad_autograd(grad_cifs):
    """Another correct answer: let autograd run back through the module's circulant_filters."""
    w = torch.zeros(grad_cifs.shape[1:], requires_grad=True)
    (cb.circulant_filters(w, 4) * grad_cifs).sum().backward()
    return w.grad


@pytest.mark.parametrize("answer", [learned_filter_grad, learned_filter_grad_autograd])
def test_check_2_passes(answer, capsys):
    ex.check_2(answer)
    assert "✅ ex-circulant_bcn-2 passed" in capsys.readouterr().out


@pytest.mark.parametrize("answer, hint", [
    (lambda g: g.sum(0), "without turning them back"),
    (lambda g: sum(torch.rot90(g[k], -k, dims=(-2, -1)) for k in range(4)), "the other way"),
    (lambda g: learned_filter_grad(g) / 4, "sums the four"),
    (lambda g: g[0], "turn grad_cifs"),
    (lambda g: g, "shape of one filter bank"),
])
def test_check_2_fails_with_hint(answer, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(answer)
