"""The self-checks of the Group-Net chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach import bitops
from qteach.binary import sign
from qteach.exercises import group_net as ex


def group_xnor(x, weights, scales):
    out = 0
    for k in range(weights.shape[0]):
        out = out + scales[k] * bitops.xnor_matmul(x, weights[k]).float()
    return out


def group_xnor_einsum(x, weights, scales):
    """Another correct answer: all branches at once in float."""
    return torch.einsum("k,kro->ro", scales, torch.einsum("rn,kon->kro", sign(x), sign(weights)))


def test_check_1_passes(capsys):
    ex.check_1(group_xnor)
    assert "passed" in capsys.readouterr().out


def test_check_1_accepts_an_alternative(capsys):
    ex.check_1(group_xnor_einsum)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda x, w, s: sum(bitops.xnor_matmul(x, wk).float() for wk in w), "without their scales"),
    (lambda x, w, s: s[0] * bitops.xnor_matmul(x, w[0]).float(), "only the first branch"),
    (lambda x, w, s: sum(sk * (x @ wk.T) for sk, wk in zip(s, w)), "full-precision"),
    (lambda x, w, s: sum(sk * bitops.xnor_matmul(x, wk).float() for sk, wk in zip(s, w)) + 1, "xnor_matmul"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def test_check_1_not_attempted(capsys):
    def stub(x, w, s):
        raise NotImplementedError
    ex.check_1(stub)
    assert "not attempted" in capsys.readouterr().out


def budget(m, n, width):
    return m * n, m * n * width**2, m * width**2


def test_check_2_passes(capsys):
    ex.check_2(budget)
    ex.check_2(lambda m, n, w: [float(m * n), float(m * n * w * w), float(m * w * w)])  # floats, a list
    assert capsys.readouterr().out.count("passed") == 2


@pytest.mark.parametrize("wrong, hint", [
    (lambda m, n, w: (m + n, (m + n) * w * w, m * w * w), "not M \\+ N"),
    (lambda m, n, w: (m * n, m * w * w, m * n * w * w), "swapped"),
    (lambda m, n, w: (m * n, m * n * w * w, m * n * w * w), "computed at run time"),
    (lambda m, n, w: (m * n, w * w, m * w * w), "one per branch"),
    (lambda m, n, w: (m * n, m * n * w * w), "three numbers"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
