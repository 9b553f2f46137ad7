"""Self-checks of the MetaQuant chapter (notebooks/2019/metaquant.ipynb).

Each check calls the student's function on fixed cases, compares it with the closed form, and either prints the
success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "metaquant"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the one number a linear MultiFC computes ------------------------------------------------------

def _metas():
    from qteach.papers.metaquant import MultiFC

    metas = []
    for seed, hidden, layers in ((0, 100, 2), (1, 7, 2), (2, 5, 3), (3, 20, 4)):
        torch.manual_seed(seed)
        metas.append(MultiFC(hidden=hidden, layers=layers))
    return metas


def _factor(meta) -> float:
    with torch.no_grad():
        return float(meta(torch.ones(1)))


def _sums(meta) -> list:
    return [float(m.weight.detach().sum()) for m in meta.net if isinstance(m, torch.nn.Linear)]


@self_check
def check_1(multifc_factor) -> str:
    """Check ``multifc_factor(meta)``: the c with meta(w) = c * w for a MultiFC without non-linearity."""
    label = _label(1)
    expect(callable(multifc_factor), label, "pass your function itself, e.g. check_1(multifc_factor)")
    for meta in _metas():
        c = as_number(multifc_factor(meta), label, "multifc_factor(meta)")
        expected = _factor(meta)
        if math.isclose(c, expected, rel_tol=1e-4, abs_tol=1e-6):
            continue
        sums = _sums(meta)
        if math.isclose(c, sum(sums), rel_tol=1e-4) or (len(sums) > 2 and math.isclose(c, math.prod(sums),
                                                                                       rel_tol=1e-4)):
            fail(label, "the layers compose: multiply the weight matrices, last one first (W2 @ W1 for two "
                        "layers, a 1 x 1 matrix), rather than summing their entries.")
        if math.isclose(c, sums[0] * sums[-1], rel_tol=1e-4):
            fail(label, "sum_i w2_i * w1_i, not (sum w2)(sum w1): take the matrix product W2 @ W1.")
        fail(label, f"for a MultiFC with {len(sums)} layers you gave {c:.4g}, expected {expected:.4g}: "
                    "multiply all the weight matrices (last first) or evaluate the network at w = 1.")
    return passed(label, "a MultiFC without non-linearity is one learned number c: M = c * g * W~")


# --- exercise 2: how often the linear MultiFC points uphill ----------------------------------------------------

def _w_tildes():
    g = torch.Generator().manual_seed(5)
    bwn = torch.randn(1000, generator=g) * 0.1  # BWN: W~ = W, signed
    dorefa = torch.rand(1000, generator=g)  # DoReFa: W~ in [0, 1]
    dorefa[:10] = 0.0  # the weights that map to W~ = 0 (the most negative)
    bwn[:5] = 0.0
    return bwn, dorefa


def _uphill(c: float, w_tilde: torch.Tensor) -> float:
    return float((c * w_tilde < 0).float().mean())


@self_check
def check_2(uphill_fraction) -> str:
    """Check ``uphill_fraction(c, w_tilde)``: the fraction of weights whose meta gradient c * g * W~ points against
    the STE gradient g (where the STE passes it, |W~| <= 1)."""
    label = _label(2)
    expect(callable(uphill_fraction), label, "pass your function itself, e.g. check_2(uphill_fraction)")
    for w_tilde in _w_tildes():
        for c in (0.8, -0.3):
            got = as_number(uphill_fraction(c, w_tilde.clone()), label, f"uphill_fraction({c}, w_tilde)")
            expected = _uphill(c, w_tilde)
            if math.isclose(got, expected, abs_tol=1e-6):
                continue
            if math.isclose(got, float((c * w_tilde <= 0).float().mean()), abs_tol=1e-6):
                fail(label, "a weight with W~ = 0 gets a zero meta gradient: that is no step at all, not a step "
                            "uphill. Count c * W~ < 0 strictly.")
            if math.isclose(got, float((w_tilde < 0).float().mean()), abs_tol=1e-6):
                fail(label, "the sign of c matters too: the meta gradient is c * g * W~, uphill where c * W~ < 0.")
            if math.isclose(got, expected * len(w_tilde), abs_tol=1e-3):
                fail(label, "return a fraction (between 0 and 1), not a count: divide by the number of weights.")
            if math.isclose(got, float((c * w_tilde > 0).float().mean()), abs_tol=1e-6):
                fail(label, "that is the fraction pointing the same way as the STE; the question asks for the "
                            "opposite one.")
            fail(label, f"for c = {c} you gave {got:.4g}, expected {expected:.4g}: the meta gradient c * g * W~ "
                        "and the STE gradient g agree in sign where c * W~ > 0.")
    return passed(label, "with BWN's signed W~ about half the weights step uphill whatever c is; with DoReFa's "
                         "W~ in [0, 1] none do once c > 0")
