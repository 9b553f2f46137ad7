"""The self-checks of the CI-BCNN chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import channel_wise_interactions as ex

LABEL = "ex-channel_wise_interactions-{}"


# --- exercise 1 -------------------------------------------------------------------------------------------------


def apply_edge(y, src, dst, sign, threshold, strength):
    out = y.clone()
    prior = (y[:, src] >= threshold).to(y.dtype) - (y[:, src] <= -threshold).to(y.dtype)
    out[:, dst] = out[:, dst] + strength * sign * prior
    return out


def apply_edge_where(y, src, dst, sign, threshold, strength):
    """Another correct answer: torch.where, a new tensor built with cat."""
    s = y[:, src]
    step = torch.where(s >= threshold, strength * sign, torch.where(s <= -threshold, -strength * sign, 0))
    chans = [y[:, k] + step if k == dst else y[:, k] for k in range(y.shape[1])]
    return torch.stack(chans, 1).to(y.dtype)


def strict_threshold(y, src, dst, sign, threshold, strength):
    out = y.clone()
    out[:, dst] += strength * sign * ((y[:, src] > threshold).to(y.dtype) - (y[:, src] < -threshold).to(y.dtype))
    return out


def ignores_sign(y, src, dst, sign, threshold, strength):
    return apply_edge(y, src, dst, 1, threshold, strength)


def changes_source(y, src, dst, sign, threshold, strength):
    out = apply_edge(y, src, dst, sign, threshold, strength)
    out[:, src] += 1
    return out


def test_check_1_solutions_pass(capsys):
    ex.check_1(apply_edge)
    ex.check_1(apply_edge_where)
    assert capsys.readouterr().out.count("ex-channel_wise_interactions-1") == 2


@pytest.mark.parametrize("wrong, hint", [
    (strict_threshold, "exactly at the threshold"),
    (ignores_sign, "negative edge"),
    (changes_source, "only the target channel"),
    (lambda y, *a: y, "y_dst should become"),
    (lambda y, *a: y[:, :1], "shape"),
    (lambda y, *a: y.tolist(), "Tensor"),
])
def test_check_1_wrong_answers_fail_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_1(wrong)


def test_check_1_not_attempted(capsys):
    def stub(*a):
        raise NotImplementedError
    ex.check_1(stub)
    assert "not attempted" in capsys.readouterr().out


# --- exercise 2 -------------------------------------------------------------------------------------------------


def predict():
    return [-90, 10, -90], [110, 10, -90]


def predict_tensor():
    src, dst = torch.tensor([-300.0, -50.0, 250.0]), torch.full((3,), 10.0)
    ge, le = (src >= 200).float(), (src <= -200).float()
    return dst - 100 * (ge + le), dst + 100 * -1 * (ge - le)


def test_check_2_solutions_pass():
    ex.check_2(predict)
    ex.check_2(predict_tensor)


@pytest.mark.parametrize("wrong, hint", [
    (lambda: ([110, 10, -90], [-90, 10, -90]), "swapped"),
    (lambda: ([-90, -90, -90], [110, -90, -90]), "-50 is inside"),
    (lambda: ([10, 10, -90], [110, 10, -90]), "official line 103"),
    (lambda: ([-90, 10, -90], [-90, 10, 110]), "symmetric form"),
    (lambda: [1, 2, 3], "pair"),
    (lambda: ([1, 2], [1, 2]), "three"),
])
def test_check_2_wrong_answers_fail_with_hint(wrong, hint):
    with pytest.raises(AssertionError, match=hint):
        ex.check_2(wrong)
