"""The self-checks of the FP-BNN chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import math

import pytest
import torch

from qteach.exercises import fp_bnn as ex
from qteach.papers import fp_bnn as fb

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


def pes_needed(fan_out, pes):
    rounds = -(-fan_out // pes)
    return -(-fan_out // rounds)


def test_check_2_passes_the_solution(capsys):
    assert ex.check_2(pes_needed).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out


def test_check_2_passes_other_correct_forms():
    ex.check_2(lambda n, p: math.ceil(n / math.ceil(n / p)))
    # a search: the fewest PEs with the cycle count that fp_bnn.layer_cycles gives for P
    ex.check_2(lambda n, p: next(q for q in range(1, p + 1)
                                 if fb.layer_cycles(64, n, q, 64) == fb.layer_cycles(64, n, p, 64)))
    ex.check_2(lambda n, p: torch.tensor(pes_needed(n, p)))


def test_check_2_explains_the_table():
    """The table's equal speeds at S = 8 and 16: both designs' PEs need the same rounds and PEs."""
    for simd in (8, 16):
        c = fb.layer_throughput(4096, 4096, 50_000, simd, 150e6, "compressor")
        a = fb.layer_throughput(4096, 4096, 50_000, simd, 150e6, "adder")
        assert c["pes"] > a["pes"] and c["cycles"] == a["cycles"]
        assert pes_needed(4096, c["pes"]) == pes_needed(4096, a["pes"])


@pytest.mark.parametrize("wrong, hint", [
    (lambda n, p: -(-n // p), "number of rounds"),
    (lambda n, p: n // -(-n // p), "round up"),
    (lambda n, p: min(n, p), "not every PE is busy"),
    (lambda n, p: 1, "count the rounds"),
    (lambda n, p: "4", "should return an int"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
