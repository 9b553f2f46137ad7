"""The self-checks of "Ternary Neural Networks with Fine-Grained Quantization": solutions pass, mistakes get hints."""

from __future__ import annotations

import math

import pytest

from qteach.exercises import fine_grained_ternary as ex
from qteach.papers import fine_grained_ternary as fgq
from qteach.papers import ternary_weight_networks as twn

LABEL = "ex-fine_grained_ternary-{}"


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

def count_multiplications(batch, in_features, out_features, group_size):
    return batch * out_features * math.ceil(in_features / group_size)


def test_check_2_passes_the_solution(capsys):
    line = ex.check_2(count_multiplications)
    assert line.startswith("✅ " + LABEL.format(2)) and "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda b, k, o, n: b * o * k, "one per *group*"),
    (lambda b, k, o, n: b * o * (k // n), "round the number of groups up"),
    (lambda b, k, o, n: b * o * k / n, "whole number"),
    (lambda b, k, o, n: o * math.ceil(k / n), "every sample"),
    (lambda b, k, o, n: b * o * math.ceil(k / n) + 1, "batch * out * ceil"),
    (lambda b, k, o, n: "many", "number"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as error:
        ex.check_2(wrong)
    message = str(error.value)
    assert message.startswith(LABEL.format(2)) and hint in message
