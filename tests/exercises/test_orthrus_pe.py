"""The self-checks of the OrthrusPE chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import orthrus_pe as ex
from qteach.papers import orthrus_pe as op

LABEL = "ex-orthrus_pe-{}"


def xor_dot(a_words, w_words, k):
    ones = sum(int(x).bit_count() for x in op.dsp_logic(a_words, w_words, "xor"))
    return k - 2 * ones


def xor_dot_tensor(a_words, w_words, k):                    # another correct answer: bit by bit, a 0-d tensor
    x = op.dsp_logic(a_words, w_words, "xor")
    return k - 2 * sum(((x >> i) & 1).sum() for i in range(48))


def xnor_dot_masked(a_words, w_words, k):                   # a third: XNOR with the lane mask
    x = op.dsp_logic(a_words, w_words, "xnor")
    lanes = [min(48, k - 48 * j) for j in range(len(x))]
    ones = sum((int(v) & ((1 << n) - 1)).bit_count() for v, n in zip(x, lanes))
    return 2 * ones - k


def xor_dot_sign_flipped(a_words, w_words, k):
    return -xor_dot(a_words, w_words, k)


def xor_popcount_only(a_words, w_words, k):
    return sum(int(x).bit_count() for x in op.dsp_logic(a_words, w_words, "xor"))


def xnor_unmasked(a_words, w_words, k):
    ones = sum(int(x).bit_count() for x in op.dsp_logic(a_words, w_words, "xnor"))
    return 2 * ones - k


@pytest.mark.parametrize("answer", [xor_dot, xor_dot_tensor, xnor_dot_masked])
def test_check_1_passes_correct_answers(answer, capsys):
    assert ex.check_1(answer).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (xor_dot_sign_flipped, "DISagreements"),
    (xor_popcount_only, "agreements minus disagreements"),
    (xnor_unmasked, "k - 2 \\* that count"),
    (lambda a, w, k: torch.zeros(2), "single number"),
])
def test_check_1_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def fixed_share(in_channels, kernel, weight_bases, activation_bases):
    pairs = weight_bases * activation_bases
    words = -(-in_channels * kernel**2 // 48)
    return (pairs + 1) / (pairs * words + pairs + 1)


def fixed_share_module(in_channels, kernel, weight_bases, activation_bases):
    c = op.layer_instructions(in_channels, 7, kernel, 5, weight_bases, activation_bases)
    return c["fixed_instructions"] / (c["binary_instructions"] + c["fixed_instructions"])


@pytest.mark.parametrize("answer", [fixed_share, fixed_share_module])
def test_check_2_passes_correct_answers(answer, capsys):
    assert ex.check_2(answer).startswith("✅ " + LABEL.format(2))


@pytest.mark.parametrize("wrong, hint", [
    (lambda c, k, m, n: 1 / (-(-c * k * k // 48) + 1), "Batch normalization"),
    (lambda c, k, m, n: (m * n + 1) / (m * n * c * k * k / 48 + m * n + 1), "ceil"),
    (lambda c, k, m, n: (m * n + 1) / (m * n * -(-c * k * k // 48)), "fixed / \\(fixed \\+ binary\\)"),
    (lambda c, k, m, n: 0.5, "M N \\+ 1"),
    (lambda c, k, m, n: "0.1", "number"),
])
def test_check_2_rejects_wrong_answers(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)


def test_stubs_print_not_attempted(capsys):
    def stub(*args):
        raise NotImplementedError("Exercise 1")
    assert "not attempted" in ex.check_1(stub)
    assert "not attempted" in ex.check_2(stub)
