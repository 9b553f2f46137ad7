"""Self-checks of the FINN-R chapter (notebooks/2018/finn_r.ipynb).

Each check calls the student's function, compares it with :mod:`qteach.papers.finn_r` or a brute force, and either
prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import finn_r as fr

_SLUG = "finn_r"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the fewest lanes that meet a target -----------------------------------------------------------

_CASES_1 = [(fr.Layer("fc6", 512, 256), 16384), (fr.Layer("fc7", 512, 512), 16384), (fr.Layer("c0", 64, 27, 900), 16200),
            (fr.Layer("c1", 64, 576, 784), 5000), (fr.Layer("tiny", 6, 10), 1), (fr.Layer("odd", 7, 13, 3), 20),
            (fr.Layer("c5", 256, 2304), 2000), (fr.Layer("any", 8, 8), 10**6)]


def _lanes(layer, target):
    """The fewest P*S (P | H, S | W) whose cycles are at most ``target``."""
    return min(p * s for p in fr.divisors(layer.mh) for s in fr.divisors(layer.mw)
               if (layer.mh // p) * (layer.mw // s) * layer.pixels <= target)


@self_check
def check_1(min_lanes) -> str:
    """Check ``min_lanes(layer, target)`` -> (pe, simd): legal, at most ``target`` cycles, fewest P*S."""
    label = _label(1)
    expect(callable(min_lanes), label, "pass your function itself, e.g. check_1(min_lanes)")
    for layer, target in _CASES_1:
        got = min_lanes(layer, target)
        expect(isinstance(got, (tuple, list)) and len(got) == 2, label,
               f"min_lanes({layer.name}, {target}) should return a pair (pe, simd), got {got!r}")
        pe, simd = (int(v) for v in got)
        expect(pe >= 1 and simd >= 1 and layer.mh % pe == 0 and layer.mw % simd == 0, label,
               f"({pe}, {simd}) is not a legal fold of {layer.name} ({layer.mh} x {layer.mw}): PE must divide the "
               "rows H and SIMD the columns W.")
        cycles = fr.mvau_cycles(layer.mh, layer.mw, pe, simd, layer.pixels)
        if cycles > target:
            hint = (" Did you forget the output pixels? A convolution takes (H/P)(W/S) cycles per pixel."
                    if (layer.mh // pe) * (layer.mw // simd) <= target else "")
            fail(label, f"({pe}, {simd}) takes {cycles} cycles on {layer.name}, more than the target {target}.{hint}")
        best = _lanes(layer, target)
        if pe * simd > best:
            fail(label, f"({pe}, {simd}) uses {pe * simd} lanes on {layer.name}, but {best} suffice for {target} "
                        "cycles. Search all pairs of divisors, not only SIMD first and then PE (FINN's greedy "
                        "SetFolding is not minimal).")
    return passed(label, f"the fewest lanes found for {len(_CASES_1)} layers and targets")


# --- exercise 2: predict the effect of speeding up the bottleneck ----------------------------------------------


def _doubled_fc_fps() -> float:
    cycles = []
    for layer, pe, simd in fr.CNV_W1A1_PYNQ:
        if layer.name in ("fc6", "fc7"):
            simd *= 2
        cycles.append(fr.mvau_cycles(layer.mh, layer.mw, pe, simd, layer.pixels))
    return fr.pipeline_rate(cycles, fr.CNV_PYNQ_CLOCK_HZ)["fps"]


@self_check
def check_2(new_fps) -> str:
    """Check ``new_fps()``: frames/s of the CNV design after doubling SIMD of fc6 and fc7."""
    label = _label(2)
    expect(callable(new_fps), label, "pass your function itself, e.g. check_2(new_fps)")
    got = as_number(new_fps(), label, "new_fps()")
    expected = _doubled_fc_fps()
    if abs(got - expected) <= 1e-3 * expected:
        return passed(label, f"{expected:.0f} frames/s: the bottleneck moves to conv0, the gain is small")
    clock = fr.CNV_PYNQ_CLOCK_HZ
    if abs(got - clock / 16384) < 1:
        fail(label, "fc6 and fc7 now take 16384 cycles, but the initiation interval is the maximum over ALL "
                    "layers: which layer is now the slowest?")
    if abs(got - clock / 32768) < 1:
        fail(label, "that is the old throughput: doubling SIMD halves the cycles of fc6 and fc7.")
    fail(label, f"expected about {expected:.0f} frames/s: recompute each layer's cycles, take the maximum, and "
                "divide the 100 MHz clock by it.")
