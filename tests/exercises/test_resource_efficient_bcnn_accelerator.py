"""The self-checks of the resource-efficient BCNN accelerator chapter: solutions pass, mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach.exercises import resource_efficient_bcnn_accelerator as ex
from qteach.papers import resource_efficient_bcnn_accelerator as paper

LABEL = "ex-resource_efficient_bcnn_accelerator-{}"


def fc_via_1x1(x, w):
    w4 = w.reshape(w.shape[0], *x.shape[1:])
    total = 0
    for i in range(x.shape[2]):
        for j in range(x.shape[3]):
            total = total + paper.conv1x1(x, w4[:, :, i, j])[:, :, i, j]
    return total


def fc_via_shifted(x, w):          # another correct answer: the chapter's shifted sum
    return paper.fc_on_feature_map(x, w)


def fc_wrong_order(x, w):
    _n, c, h, wd = x.shape
    w4 = w.reshape(w.shape[0], h, wd, c).permute(0, 3, 1, 2)
    return sum(paper.conv1x1(x, w4[:, :, i, j])[:, :, i, j] for i in range(h) for j in range(wd))


def fc_whole_map(x, w):
    w4 = w.reshape(w.shape[0], *x.shape[1:])
    return sum(paper.conv1x1(x, w4[:, :, i, j]).sum((2, 3)) for i in range(x.shape[2]) for j in range(x.shape[3]))


def fc_no_sum(x, w):
    w4 = w.reshape(w.shape[0], *x.shape[1:])
    return paper.conv1x1(x, w4[:, :, 0, 0])


def test_check_1_passes(capsys):
    assert ex.check_1(fc_via_1x1).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out
    ex.check_1(fc_via_shifted)


@pytest.mark.parametrize("wrong, hint", [
    (fc_wrong_order, "(O, C, H, W), not (O, H, W, C)"),
    (fc_whole_map, "keep its output at (i, j) only"),
    (fc_no_sum, "should have shape (N, O)"),
    (lambda x, w: 3, "should be a Tensor"),
])
def test_check_1_rejects(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def pool_bits(bits, flip, pool):
    f = flip.to(bits.dtype).reshape(1, -1, 1, 1)
    return f * F.max_pool2d(f * bits, pool)


def pool_bits_loop(bits, flip, pool):        # another correct answer: OR / AND channel by channel
    out = []
    for c in range(bits.shape[1]):
        ch = bits[:, c:c + 1]
        out.append(F.max_pool2d(ch, pool) if flip[c] > 0 else -F.max_pool2d(-ch, pool))
    return torch.cat(out, 1)


def test_check_2_passes(capsys):
    assert ex.check_2(pool_bits).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out
    ex.check_2(pool_bits_loop)
    ex.check_2(lambda b, f, p: paper.binary_pool(b, f, p))


@pytest.mark.parametrize("wrong, hint", [
    (lambda b, f, p: F.max_pool2d(b, p), "plain max-pool (OR) is right only where flip = +1"),
    (lambda b, f, p: -F.max_pool2d(-b, p), "min-pool (AND) is right only where flip = -1"),
    (lambda b, f, p: F.avg_pool2d(b, p).sign(), "OR (max) over each window where flip = +1"),
    (lambda b, f, p: b, "should have shape"),
])
def test_check_2_rejects(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
