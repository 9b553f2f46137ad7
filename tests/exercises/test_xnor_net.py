"""The self-checks of the XNOR-Net chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach.binary import sign
from qteach.exercises import xnor_net as ex

LABEL = "ex-xnor_net-{}"


def _kernel(kernel):
    return (kernel, kernel) if isinstance(kernel, int) else kernel


# --- exercise 1 ---------------------------------------------------------------------------------------------


def scaling_map(x, kernel_size):
    kh, kw = _kernel(kernel_size)
    a = x.abs().mean(dim=1, keepdim=True)
    return F.conv2d(a, torch.full((1, 1, kh, kw), 1.0 / (kh * kw)))


def k_without_abs(x, kernel_size):
    return F.avg_pool2d(x.mean(dim=1, keepdim=True), _kernel(kernel_size), stride=1)


def k_channel_sum(x, kernel_size):
    return F.avg_pool2d(x.abs().sum(dim=1, keepdim=True), _kernel(kernel_size), stride=1)


def k_is_a(x, kernel_size):
    return x.abs().mean(dim=1, keepdim=True)


def k_window_sum(x, kernel_size):
    return F.conv2d(x.abs().mean(dim=1, keepdim=True), torch.ones(1, 1, *_kernel(kernel_size)))


def test_check_1_passes_on_the_solution(capsys):
    ex.check_1(scaling_map)
    assert "✅ ex-xnor_net-1 passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,hint", [
    (k_without_abs, "absolute value"),
    (k_channel_sum, "divide the sum by the number of channels"),
    (k_is_a, "that is A"),
    (k_window_sum, "divide the window sum"),
    (lambda x, k: x, "shape"),
    (lambda x, k: "K", "should be a Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def binary_filter(w):
    dims = tuple(range(1, w.dim()))
    return w.abs().mean(dim=dims, keepdim=True), sign(w)


def bf_torch_sign(w):
    alpha, _ = binary_filter(w)
    return alpha, torch.sign(w)


def bf_one_alpha(w):
    return w.abs().mean(), sign(w)


def bf_mean_not_abs(w):
    dims = tuple(range(1, w.dim()))
    return w.mean(dim=dims, keepdim=True), sign(w)


def bf_l1_not_divided(w):
    dims = tuple(range(1, w.dim()))
    return w.abs().sum(dim=dims, keepdim=True), sign(w)


def bf_no_keepdim(w):
    dims = tuple(range(1, w.dim()))
    return w.abs().mean(dim=dims), sign(w)


def test_check_2_passes_on_the_solution(capsys):
    ex.check_2(binary_filter)
    assert "✅ ex-xnor_net-2 passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong,hint", [
    (bf_torch_sign, "torch.sign(0) is 0"),
    (bf_one_alpha, "one value per filter"),
    (bf_mean_not_abs, "mean of |W|"),
    (bf_l1_not_divided, "divide the L1 norm by n"),
    (bf_no_keepdim, "keepdim=True"),
    (lambda w: sign(w), "return a pair"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
