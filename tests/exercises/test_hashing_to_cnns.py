"""The self-checks of "From Hashing to CNNs": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach import binary
from qteach.exercises import hashing_to_cnns as ex
from qteach.papers import hashing_to_cnns as hh

LABEL = "ex-hashing_to_cnns-{}"


def _fails(check, wrong, hint, n):
    with pytest.raises(AssertionError) as error:
        check(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(n)) and hint in message, message


def copies(w1, w2):
    exact = w1 + w2
    same_sign = (w1 > 0) == (w2 > 0)
    return (0.0 if same_sign else 1.0), exact / 2


def test_check_1_passes_the_solution(capsys):
    ex.check_1(copies)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out
    ex.check_1(ex.copies_reference)


def test_check_1_passes_a_measured_answer():
    """Another correct way: measure on a sample of inputs with x2 = x1, with the library."""
    def measured(w1, w2):
        x1 = torch.randn(50, generator=torch.Generator().manual_seed(0))
        x = torch.stack([x1, x1], dim=1).double()
        w = torch.tensor([[w1, w2]], dtype=torch.float64)
        a, b = hh.xnor_binarize(w)
        error = hh.inner_product_error(x, w, a, b)
        alpha = hh.optimal_scales(w, torch.ones_like(w), hh.input_gram(x))
        return torch.as_tensor(error), alpha[0]
    ex.check_1(measured)


def test_the_reference_matches_the_page_example():
    """The page's two-input example: XNOR-Net's held-out error near 1, the hashing code's alpha near 0.4."""
    assert ex.copies_reference(1.0, -0.2) == (1.0, 0.4)


@pytest.mark.parametrize("wrong, hint", [
    (lambda w1, w2: (0.0, (w1 + w2) / 2), "the whole signal is lost"),
    (lambda w1, w2: (copies(w1, w2)[0], (abs(w1) + abs(w2)) / 2), "data-free scale"),
    (lambda w1, w2: (copies(w1, w2)[0], w1 + w2), "not x1"),
    (lambda w1, w2: (copies(w1, w2)[0], abs(w1 + w2) / 2), "can be negative"),
    (lambda w1, w2: (0.5, 0.4), "relative error"),
    (lambda w1, w2: 0.4, "return a pair"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    _fails(ex.check_1, wrong, hint, 1)


def update_bit(w, b, alpha, s, j):
    b = b.clone()
    others = b @ s[:, j] - b[:, j] * s[j, j]
    b[:, j] = binary.sign(alpha * (w @ s)[:, j] - alpha**2 * others)
    return b


def test_check_2_passes_the_solution(capsys):
    ex.check_2(update_bit)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


def with_self_term(w, b, alpha, s, j):
    b = b.clone()
    b[:, j] = binary.sign(alpha * (w @ s)[:, j] - alpha**2 * (b @ s[:, j]))
    return b


def no_square(w, b, alpha, s, j):
    b = b.clone()
    b[:, j] = binary.sign(alpha * (w @ s)[:, j] - alpha * (b @ s[:, j] - b[:, j] * s[j, j]))
    return b


def all_bits(w, b, alpha, s, j):
    return hh.update_codes(w, b, alpha, s)


@pytest.mark.parametrize("wrong, hint", [
    (with_self_term, "k = j term"),
    (no_square, "alpha squared"),
    (lambda w, b, a, s, j: -update_bit(w, b, a, s, j), "change only bit j"),
    (all_bits, "change only bit j"),
    (lambda w, b, a, s, j: binary.sign(w), "change only bit j"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    _fails(ex.check_2, wrong, hint, 2)


def test_check_2_sign_flip_hint():
    def flipped(w, b, alpha, s, j):
        out = update_bit(w, b, alpha, s, j)
        out[:, j] = -out[:, j]
        return out

    _fails(ex.check_2, flipped, "sign is flipped", 2)
