"""The self-checks of the BNN-on-FPGA thesis chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import bnn_on_fpga_thesis as ex
from qteach.papers import bnn_on_fpga_thesis as th

LABEL = "ex-bnn_on_fpga_thesis-{}"


def popcount_tau(t, fan_in):
    return torch.ceil((fan_in + t.double()) / 2).to(torch.int64)


def test_check_1_passes_the_solution(capsys):
    assert ex.check_1(popcount_tau).startswith("✅ " + LABEL.format(1))
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda t, k: torch.floor((k + t.double()) / 2).to(torch.int64), "torch.ceil, not down"),
    (lambda t, k: torch.ceil(t.double() / 2).to(torch.int64), "add K before halving"),
    (lambda t, k: torch.ceil((k - t.double()) / 2).to(torch.int64), "sign of t is turned around"),
    (lambda t, k: torch.ceil(k + t.double()).to(torch.int64), "divide (K + t) by 2"),
    (lambda t, k: torch.ceil((k + t.double()) / 2), "integer tensor"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def ii_lower_bound(shapes, lanes):
    return math.ceil(sum(k * n for k, n in shapes) / lanes)


def test_check_2_passes_the_solution(capsys):
    assert ex.check_2(ii_lower_bound).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out
    ex.check_2(lambda shapes, lanes: -(-sum(k * n for k, n in shapes) // lanes))           # integer ceiling
    ex.check_2(lambda shapes, lanes: float(ii_lower_bound(shapes, lanes)))                  # as a float
    ex.check_2(lambda shapes, lanes: torch.tensor(ii_lower_bound(shapes, lanes)))           # as a tensor


def test_the_bound_holds_for_the_chapter_designs():
    """No folding beats the bound: the balanced search of the chapter and every fold_for_target design."""
    shapes = [(64, 128), (128, 128), (128, 10)]
    for target in (1, 8, 64, 72, 512, 4096):
        folds = [th.fold_for_target(k, n, target) for k, n in shapes]
        lanes = sum(th.layer_resources(f)["xnor"] for f in folds)
        assert th.pipeline_timing(folds, 1.0)["ii"] >= ii_lower_bound(shapes, lanes)
    assert ii_lower_bound(shapes, 384) == 68


@pytest.mark.parametrize("wrong, hint", [
    (lambda shapes, lanes: sum(k * n for k, n in shapes) / lanes, "round W / L up"),
    (lambda shapes, lanes: sum(k * n for k, n in shapes) // lanes, "round up, not down"),
    (lambda shapes, lanes: math.ceil(max(k * n for k, n in shapes) / lanes), "count the work of all layers"),
    (lambda shapes, lanes: max(math.ceil(k * n / lanes) for k, n in shapes), "count the work of all layers"),
    (lambda shapes, lanes: math.ceil(sum(k * n for k, n in shapes) / lanes / len(shapes)), "total over all stages"),
    (lambda shapes, lanes: 1, "count lane-cycles"),
    (lambda shapes, lanes: "68", "number of cycles"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
