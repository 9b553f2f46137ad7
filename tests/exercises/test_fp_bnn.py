"""The self-checks of the FP-BNN chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import fp_bnn as ex

LABEL = "ex-fp_bnn-{}"


def stage_heights(heights):
    new = [0] * (len(heights) + 2)
    for w, h in enumerate(heights):
        full, rest = divmod(h, 6)
        groups = [6] * full + ([rest] if rest >= 3 else [])
        new[w] += len(groups) + (rest if rest < 3 else 0)
        new[w + 1] += len(groups)
        new[w + 2] += sum(1 for g in groups if g >= 4)
    return new                                     # trailing zeros are allowed


def stage_heights_no_remainder(heights):
    new = [0] * (len(heights) + 2)
    for w, h in enumerate(heights):
        full, rest = divmod(h, 6)
        new[w] += full + rest
        new[w + 1] += full
        new[w + 2] += full
    return new


def stage_heights_always_s2(heights):
    new = [0] * (len(heights) + 2)
    for w, h in enumerate(heights):
        full, rest = divmod(h, 6)
        groups = full + (1 if rest >= 3 else 0)
        new[w] += groups + (rest if rest < 3 else 0)
        new[w + 1] += groups
        new[w + 2] += groups
    return new


def stage_heights_no_carry(heights):
    return [h // 6 + (1 if h % 6 >= 3 else h % 6) for h in heights]


def test_check_1_passes_the_solution(capsys):
    assert ex.check_1(stage_heights).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (stage_heights_no_remainder, "remainder of 3, 4 or 5"),
    (stage_heights_always_s2, "s2 output is always 0"),
    (stage_heights_no_carry, "heavier columns"),
    (lambda h: 5, "should be a list or tuple"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def ap2(s):
    return torch.sign(s) * torch.exp2(torch.round(torch.log2(s.abs())))


def shift_bn(x, gamma, beta, mean, var, eps):
    return (x - mean) * ap2(gamma / torch.sqrt(var + eps)) + beta


def shift_bn_floor(x, gamma, beta, mean, var, eps):
    s = gamma / torch.sqrt(var + eps)
    return (x - mean) * torch.sign(s) * torch.exp2(torch.floor(torch.log2(s.abs()))) + beta


def shift_bn_no_sign(x, gamma, beta, mean, var, eps):
    s = gamma / torch.sqrt(var + eps)
    return (x - mean) * torch.exp2(torch.round(torch.log2(s.abs()))) + beta


def shift_bn_exact(x, gamma, beta, mean, var, eps):
    return (x - mean) * gamma / torch.sqrt(var + eps) + beta


def shift_bn_gamma_only(x, gamma, beta, mean, var, eps):
    return (x - mean) * ap2(gamma) / torch.sqrt(var + eps) + beta


def test_check_2_passes_the_solution(capsys):
    assert ex.check_2(shift_bn).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (shift_bn_floor, "do not floor"),
    (shift_bn_no_sign, "keep the sign"),
    (shift_bn_exact, "ordinary batch norm"),
    (shift_bn_gamma_only, "not gamma alone"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
