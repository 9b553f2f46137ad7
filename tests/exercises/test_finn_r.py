"""The self-checks of the FINN-R chapter: the solutions pass, other correct answers pass, mistakes fail with a
hint."""

from __future__ import annotations

import pytest

from qteach.exercises import finn_r as ex
from qteach.papers import finn_r as fr

LABEL = "ex-finn_r-{}"


def min_lanes(layer, target):
    best = None
    for pe in fr.divisors(layer.mh):
        for simd in fr.divisors(layer.mw):
            fits = fr.mvau_cycles(layer.mh, layer.mw, pe, simd, layer.pixels) <= target
            if fits and (best is None or pe * simd < best[0] * best[1]):
                best = (pe, simd)
    return best


def min_lanes_prefer_pe(layer, target):
    """Another correct answer: ties broken towards more PEs, returned as a list."""
    pairs = [(p, s) for p in fr.divisors(layer.mh) for s in fr.divisors(layer.mw)
             if (layer.mh // p) * (layer.mw // s) * layer.pixels <= target]
    p, s = min(pairs, key=lambda ps: (ps[0] * ps[1], -ps[0]))
    return [p, s]


def min_lanes_no_pixels(layer, target):
    pairs = [(p, s) for p in fr.divisors(layer.mh) for s in fr.divisors(layer.mw)
             if (layer.mh // p) * (layer.mw // s) <= target]
    return min(pairs, key=lambda ps: ps[0] * ps[1])


def min_lanes_greedy(layer, target):
    return fr.set_folding(layer, target + 1, wwidth_max=10**6)


def test_check_1_passes_solutions(capsys):
    assert ex.check_1(min_lanes).startswith("✅ " + LABEL.format(1))
    ex.check_1(min_lanes_prefer_pe)
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (min_lanes_no_pixels, "output pixels"),
    (min_lanes_greedy, "SetFolding is not minimal"),
    (lambda layer, target: (3, 1), "not a legal fold"),
    (lambda layer, target: 5, "should return a pair"),
    (lambda layer, target: (1, 1), "more than the target"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def new_fps():
    cycles = []
    for layer, pe, simd in fr.CNV_W1A1_PYNQ:
        if layer.name in ("fc6", "fc7"):
            simd *= 2
        cycles.append(fr.mvau_cycles(layer.mh, layer.mw, pe, simd, layer.pixels))
    return 100e6 / max(cycles)


def test_check_2_passes_solutions(capsys):
    assert ex.check_2(new_fps).startswith("✅ " + LABEL.format(2))
    ex.check_2(lambda: 100e6 / 32400)            # the closed form
    ex.check_2(lambda: round(100e6 / 32400, 1))  # rounded
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda: 100e6 / 16384, "maximum over ALL"),
    (lambda: 100e6 / 32768, "old throughput"),
    (lambda: 42.0, "expected about"),
    (lambda: "3086", "should be a number"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)
