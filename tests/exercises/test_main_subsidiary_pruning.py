"""The self-checks of the main/subsidiary pruning chapter: solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import itertools

import pytest
import torch

from qteach.binary import ste_sign
from qteach.exercises import main_subsidiary_pruning as ex
from qteach.papers import main_subsidiary_pruning as ms

LABEL = "ex-main_subsidiary_pruning-{}"


# --- exercise 1 ---------------------------------------------------------------------------------------------


def mask_from_scores(s):
    return (ste_sign(s, clip=1.0) + 1) / 2


class _Heaviside(torch.autograd.Function):
    @staticmethod
    def forward(ctx, s):
        ctx.save_for_backward(s)
        return (s >= 0).to(s.dtype)

    @staticmethod
    def backward(ctx, g):
        (s,) = ctx.saved_tensors
        return g * 0.5 * (s.abs() <= 1).to(g.dtype)


def mask_custom_function(s):
    """Another correct answer: a custom autograd function."""
    return _Heaviside.apply(s)


def mask_detach_trick(s):
    """Another correct answer: the soft (Htanh + 1) / 2 with the forward replaced by the hard step."""
    soft = (s.clamp(-1, 1) + 1) / 2
    return soft + ((s >= 0).float() - soft).detach()


def test_check_1_passes(capsys):
    ex.check_1(mask_from_scores)
    assert "✅ ex-main_subsidiary_pruning-1 passed" in capsys.readouterr().out
    ex.check_1(mask_custom_function)
    ex.check_1(mask_detach_trick)
    ex.check_1(ms.heaviside_ste)


@pytest.mark.parametrize("wrong,hint", [
    (lambda s: (torch.sign(s) + 1) / 2, "exactly 0"),
    (lambda s: (s >= 0).float(), "no gradient"),
    (lambda s: ste_sign(s, clip=1.0), "H(s) = (sign(s) + 1) / 2"),
    (lambda s: ste_sign(s, clip=1.0) / 2 + 0.5 + 0.5 * (s.clamp(-1, 1) - s.clamp(-1, 1).detach()), "factor 1/2"),
    (lambda s: (ste_sign(s, clip=None) + 1) / 2, "never vanishes"),
    (lambda s: [1.0] * len(s), "should be a Tensor"),
])
def test_check_1_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(1)) as err:
        ex.check_1(wrong)
    assert hint in str(err.value)


# --- exercise 2 ---------------------------------------------------------------------------------------------


def binary_macs_after_pruning(widths, pruned_fraction):
    kept = [ms.keep_count(w, pruned_fraction) for w in widths]
    return sum(a * b for a, b in itertools.pairwise(kept))


def macs_by_building(widths, pruned_fraction):
    """Another correct answer: build the masked network, fix random masks, count kept pairs (a float)."""
    model = ms.MaskedBinaryMLP(8, tuple(widths))
    for layer in range(len(widths)):
        ms.select_filters(model, layer, ms.keep_count(widths[layer], pruned_fraction), "random")
    kept = model.kept_filters()
    return float(sum(a * b for a, b in itertools.pairwise(kept)))


def test_check_2_passes(capsys):
    ex.check_2(binary_macs_after_pruning)
    assert "✅ ex-main_subsidiary_pruning-2 passed" in capsys.readouterr().out
    ex.check_2(macs_by_building)


def _full(widths):
    return sum(a * b for a, b in itertools.pairwise(widths))


@pytest.mark.parametrize("wrong,hint", [
    (lambda w, p: _full(w) * (1 - p), "(1 - p) twice"),
    (lambda w, p: _full(w) * (1 - p) ** 2, "whole number"),
    (lambda w, p: sum(ms.keep_count(x, p) ** 2 for x in w), "not kept_i^2"),
    (lambda w, p: 0, "sum over consecutive"),
])
def test_check_2_fails_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError, match=LABEL.format(2)) as err:
        ex.check_2(wrong)
    assert hint in str(err.value)
