"""Self-checks of the chapter on batch normalization in binary training
(notebooks/2020/bn_in_binary_training.ipynb).

Each check calls the student's function, compares it with a closed form, and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "bn_in_binary_training"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: how many layers until the gradient norm has grown a millionfold -------------------------------


def _p(n, clip):
    if clip is None:
        return 1.0
    return sum(math.comb(n, k) for k in range(n + 1) if abs(2 * k - n) <= clip) / 2 ** n


def _layers(growth_per_layer, factor=1e6):
    return math.floor(math.log(factor) / math.log(growth_per_layer)) + 1


_CASES = ((16, 1.0), (64, 1.0), (256, 1.0), (63, 1.0), (64, None), (256, None), (100, 3.0))


@self_check
def check_1(layers_to_millionfold) -> str:
    """Check ``layers_to_millionfold(n, clip)``: the fewest layers L with g ** L > 1e6, g = sqrt(n * p)."""
    label = _label(1)
    expect(callable(layers_to_millionfold), label, "pass your function itself, e.g. check_1(layers_to_millionfold)")
    got = [as_number(layers_to_millionfold(n, c), label, f"layers_to_millionfold({n}, {c})") for n, c in _CASES]

    def matches(gain):
        return all(g == _layers(gain(n, c)) for g, (n, c) in zip(got, _CASES))

    if matches(lambda n, c: math.sqrt(n * _p(n, c))):
        return passed(label, "the norm grows by sqrt(n p) per layer: a few layers of width 256 already explode it")
    if matches(lambda n, c: n * _p(n, c)):
        fail(label, "n p multiplies the SQUARED norm; the norm itself grows by g = sqrt(n p) per layer.")
    if matches(lambda n, c: math.sqrt(n)):
        fail(label, "with the clipped STE only the units with |h| <= clip pass the gradient: multiply n by the "
                    "exact probability p = P(|S_n| <= clip).")
    if matches(lambda n, c: math.sqrt(n * (1.0 if c is None else math.sqrt(2 / (math.pi * n))))):
        fail(label, "p ~ sqrt(2 / (pi n)) is only the Gaussian approximation for clip = 1; count the binomial "
                    "outcomes k with |2k - n| <= clip exactly.")
    if all(g == _layers(math.sqrt(n * _p(n, c))) - 1 for g, (n, c) in zip(got, _CASES)):
        fail(label, "off by one: return the FIRST L with g ** L > 1e6 (strictly), e.g. floor(log(1e6) / log(g)) + 1.")
    fail(label, "g = sqrt(n * p) with p = sum of comb(n, k) / 2**n over k with |2k - n| <= clip (p = 1 for "
                "clip None); return the smallest integer L with g ** L > 1e6.")


# --- exercise 2: the weight-gradient ratio N(0, 1) / Glorot at initialisation ---------------------------------


def _kept(clip):
    return math.erf(clip / math.sqrt(2))


_CLIPS = (0.5, 1.0, 2.0, 3.0)


@self_check
def check_2(gradient_ratio) -> str:
    """Check ``gradient_ratio(clip)``: sqrt(P(|z| <= clip)) for z ~ N(0, 1)."""
    label = _label(2)
    expect(callable(gradient_ratio), label, "pass your function itself, e.g. check_2(gradient_ratio)")
    got = [as_number(gradient_ratio(c), label, f"gradient_ratio({c})") for c in _CLIPS]

    def near(f, tol=2e-3):
        return all(abs(g - f(c)) <= tol for g, c in zip(got, _CLIPS))

    if near(lambda c: math.sqrt(_kept(c))):
        return passed(label, "N(0, 1) only loses the weights with |w| > clip; its forward pass and every other "
                             "gradient equal Glorot's")
    if near(_kept):
        fail(label, "P(|z| <= clip) is the fraction of gradient ENTRIES kept; a norm is the square root of a sum "
                    "of squares, so the ratio of norms is its square root.")
    if near(lambda c: math.sqrt(1 - _kept(c))) or near(lambda c: 1 - _kept(c)):
        fail(label, "the clipped STE keeps the gradient where |w| <= clip and cuts it outside: use P(|z| <= clip), "
                    "not the fraction cut.")
    if near(lambda c: 1.0):
        fail(label, "the forward passes are identical, but the weight STE (clip at |w| <= 1) cuts the gradient of "
                    "N(0, 1) weights outside [-clip, clip]; Glorot's small weights are never cut.")
    fail(label, "the ratio is sqrt(P(|z| <= clip)) for a standard Gaussian z: sqrt(erf(clip / sqrt(2))).")
