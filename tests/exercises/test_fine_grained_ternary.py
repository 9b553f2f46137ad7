"""The self-checks of "Ternary Neural Networks with Fine-Grained Quantization": solutions pass, mistakes get hints."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import fine_grained_ternary as ex
from qteach.papers import fine_grained_ternary as fgq
from qteach.papers import ternary_weight_networks as twn

LABEL = "ex-fine_grained_ternary-{}"


def _fails(check, wrong, hint, n):
    with pytest.raises(AssertionError) as error:
        check(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(n)) and hint in message, message


# --- exercise 1 ---------------------------------------------------------------------------------------------

def group_twn(w, group_size):
    groups = w.reshape(w.shape[0], -1, group_size)
    delta = 0.7 * groups.abs().mean(dim=-1, keepdim=True)
    t = (groups > delta).to(w.dtype) - (groups < -delta).to(w.dtype)
    kept = (t != 0).to(w.dtype)
    alpha = (groups.abs() * kept).sum(-1, keepdim=True) / kept.sum(-1, keepdim=True).clamp(min=1)
    return (alpha * t).reshape(w.shape)


def per_layer(w, group_size):
    w_t, alpha, _ = twn.ternary_weights(w)
    return alpha * w_t


def per_row(w, group_size):
    return fgq.fgq_quantize(w, w.shape[1], rule="twn")


def alpha_over_group(w, group_size):
    groups = w.reshape(w.shape[0], -1, group_size)
    delta = 0.7 * groups.abs().mean(dim=-1, keepdim=True)
    t = (groups > delta).to(w.dtype) - (groups < -delta).to(w.dtype)
    return (groups.abs().mean(-1, keepdim=True) * t).reshape(w.shape)


def no_factor(w, group_size):
    groups = w.reshape(w.shape[0], -1, group_size)
    delta = groups.abs().mean(dim=-1, keepdim=True)
    t = (groups > delta).to(w.dtype) - (groups < -delta).to(w.dtype)
    kept = (t != 0).to(w.dtype)
    alpha = (groups.abs() * kept).sum(-1, keepdim=True) / kept.sum(-1, keepdim=True).clamp(min=1)
    return (alpha * t).reshape(w.shape)


def test_check_1_passes_the_solution(capsys):
    line = ex.check_1(group_twn)
    assert line.startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out
    ex.check_1(lambda w, n: fgq.fgq_quantize(w, n, rule="twn"))


@pytest.mark.parametrize("wrong, hint", [
    (per_layer, "whole layer"),
    (per_row, "one Delta and one alpha per row"),
    (alpha_over_group, "above* the threshold"),
    (no_factor, "factor 0.7"),
    (lambda w, n: fgq.fgq_quantize(w, n), "exact optimal threshold"),
    (lambda w, n: w * 0.5, "per group g"),
    (lambda w, n: w[:, :2], "shape"),
    (lambda w, n: w.tolist(), "Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_1(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(1)) and hint in message


# --- exercise 2 ---------------------------------------------------------------------------------------------

def optimal_ternary(w):
    m = w.abs().sort(descending=True).values
    prefix = m.cumsum(0)
    k = int((prefix**2 / torch.arange(1, w.numel() + 1)).argmax()) + 1
    alpha = prefix[k - 1] / k
    return torch.where(w.abs() >= m[k - 1], alpha * torch.sign(w), torch.zeros_like(w))


def brute_force(w):  # every threshold between two magnitudes, the smallest error wins (ties: the last)
    best, best_q = None, None
    for delta in [-1.0] + w.abs().tolist():
        kept = w.abs() > delta
        alpha = w.abs()[kept].mean() if kept.any() else torch.tensor(0.0)
        q = torch.where(kept, alpha * torch.sign(w), torch.zeros_like(w))
        error = ((w - q) ** 2).sum()
        if best is None or error <= best:
            best, best_q = error, q
    return best_q


def twn_rule(w):
    return fgq.fgq_quantize(w.reshape(1, -1), w.numel(), rule="twn").reshape(w.shape)


def largest_only(w):
    i = w.abs().argmax()
    q = torch.zeros_like(w)
    q[i] = w[i]
    return q


def mean_of_all(w):
    q = optimal_ternary(w)
    return torch.sign(q) * w.abs().mean()


def keep_all(w):
    return torch.sign(w) * w.abs().mean()


def pattern_only(w):
    return torch.sign(optimal_ternary(w))


def nan_on_zeros(w):
    m = w.abs().sort(descending=True).values
    prefix = m.cumsum(0)
    k = int((prefix**2 / torch.arange(1, w.numel() + 1)).argmax()) + 1
    kept = w.abs() >= m[k - 1]
    alpha = (w.abs() * kept).sum() / (w.abs() * kept > 0).sum()
    return torch.where(kept, alpha * torch.sign(w), torch.zeros_like(w))


def test_check_2_passes_the_solutions(capsys):
    ex.check_2(optimal_ternary)
    out = capsys.readouterr().out
    assert "✅ " + LABEL.format(2) + " passed" in out and "the 0.7 rule" in out
    ex.check_2(brute_force)
    ex.check_2(lambda w: fgq.fgq_quantize(w.reshape(1, -1), w.numel()).reshape(w.shape))
    assert capsys.readouterr().out.count("passed") == 2


@pytest.mark.parametrize("wrong, hint", [
    (twn_rule, "rule of thumb"),
    (largest_only, "only the largest weight"),
    (mean_of_all, "not of the whole group"),
    (keep_all, "keeping every weight"),
    (pattern_only, "not the ternary pattern"),
    (nan_on_zeros, "group of zeros"),
    (lambda w: w.clamp(-0.5, 0.5), "one scale"),
    (lambda w: optimal_ternary(w).reshape(1, -1), "shape"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    _fails(ex.check_2, wrong, hint, 2)
