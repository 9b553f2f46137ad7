"""The self-checks of "From Hashing to CNNs": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest

from qteach import binary
from qteach.exercises import hashing_to_cnns as ex
from qteach.papers import hashing_to_cnns as hh

LABEL = "ex-hashing_to_cnns-{}"


def _fails(check, wrong, hint, n):
    with pytest.raises(AssertionError) as error:
        check(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(n)) and hint in message, message


def data_aware_alpha(x, w, b):
    xw, xb = x @ w.T, x @ b.T
    return (xb * xw).sum(0) / (xb * xb).sum(0)


def test_check_1_passes_the_solution(capsys):
    ex.check_1(data_aware_alpha)
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out
    ex.check_1(lambda x, w, b: hh.optimal_scales(w, b, hh.input_gram(x)))


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, w, b: w.abs().mean(1), "data-free"),
    (lambda x, w, b: (b * w).sum(1) / (b * b).sum(1), "ignores X"),
    (lambda x, w, b: ((x @ b.T) * (x @ w.T)).sum(0) / (x @ w.T).pow(2).sum(0), "binary side"),
    (lambda x, w, b: data_aware_alpha(x, w, b)[:1].repeat(2), "one per filter"),
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
