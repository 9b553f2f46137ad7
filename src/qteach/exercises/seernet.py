"""Self-checks of the SeerNet chapter (notebooks/2019/seernet.ipynb).

Each check calls the student's function, compares it with :mod:`qteach.papers.seernet` or a closed form, and either
prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import as_number, expect, expect_type, fail, passed, self_check
from qteach.papers import seernet

_SLUG = "seernet"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: a bound that needs no extra convolution ------------------------------------------------------


def _bound(w, x_max, bits, step=0.5, levels=None, weight_term=True, window=True):
    codes, scale = seernet.quantize_weights(w, bits)
    eps = (w.double() - scale.view(-1, 1, 1, 1) * codes).abs().flatten(1).amax(1)
    s_x = x_max / ((2**bits - 1) if levels is None else levels)
    l1 = w.double().abs().flatten(1).sum(1)
    k = w[0].numel() if window else 1
    return step * s_x * l1 + (eps * k * x_max if weight_term else 0 * eps)


def _cases():
    g = torch.Generator().manual_seed(5)
    yield torch.randn(4, 3, 3, 3, generator=g) * 0.2, 1.0, 4
    yield torch.randn(6, 8, 3, 3, generator=g) * 0.1, 2.5, 2
    yield torch.randn(2, 1, 5, 5, generator=g), 0.7, 1
    yield torch.randn(3, 2, 1, 1, generator=g), 4.0, 8


@self_check
def check_1(channel_bound) -> str:
    """Check ``channel_bound(w, x_max, bits)`` -> one bound per output channel, valid for every input in
    ``[0, x_max]``: (s_x / 2) ||w_c||_1 + eps_c * K * x_max."""
    label = _label(1)
    expect(callable(channel_bound), label, "pass your function itself, e.g. check_1(channel_bound)")
    for w, x_max, bits in _cases():
        got = channel_bound(w.clone(), x_max, bits)
        expect_type(got, torch.Tensor, label, "channel_bound(...)")
        expect(got.shape == (w.shape[0],), label, f"return one bound per output channel: shape ({w.shape[0]},), "
                                                  f"got {tuple(got.shape)}")
        got = got.detach().double()
        ref = _bound(w, x_max, bits)
        if torch.allclose(got, ref, rtol=1e-5, atol=2 * seernet.FLOAT_SLACK):
            continue
        if torch.allclose(got, _bound(w, x_max, bits, step=1.0), rtol=1e-5, atol=1e-6):
            fail(label, "rounding to the nearest level errs by at most half a step: use s_x / 2, not s_x.")
        if torch.allclose(got, _bound(w, x_max, bits, weight_term=False), rtol=1e-5, atol=1e-6):
            fail(label, "the weights are quantized too: add eps_c times the largest possible window sum of Qx, "
                        "K * x_max with K = C_in * k * k.")
        if torch.allclose(got, _bound(w, x_max, bits, window=False), rtol=1e-5, atol=1e-6):
            fail(label, "the weight error is summed over the whole window: multiply eps_c * x_max by the "
                        "K = C_in * k * k inputs of one output.")
        if torch.allclose(got, _bound(w, x_max, bits, levels=2**bits), rtol=1e-5, atol=1e-6):
            fail(label, "b unsigned bits give 2^b - 1 steps over [0, x_max], so s_x = x_max / (2^b - 1).")
        fail(label, "use s_x = x_max / (2^b - 1), eps_c = max |w_c - Q(w_c)| from seernet.quantize_weights, "
                    "and B_c = (s_x / 2) ||w_c||_1 + eps_c * C_in * k * k * x_max.")
    return passed(label, "your bound holds for every input in [0, x_max] without the box filter over Qx; it is "
                         "looser than the data-dependent one, so it computes more")


# --- exercise 2: when does the prediction pay? ----------------------------------------------------------------


@self_check
def check_2(break_even_fraction) -> str:
    """Check ``break_even_fraction(bits)``: the largest fraction of outputs computed in full precision for which
    the bits x bits predictor plus the sparse 32 x 32 computation costs no more bit operations than dense."""
    label = _label(2)
    expect(callable(break_even_fraction), label, "pass your function itself, e.g. check_2(break_even_fraction)")
    values = {b: as_number(break_even_fraction(b), label, f"break_even_fraction({b})") for b in (1, 2, 4, 8, 16)}

    def all_near(f):
        return all(abs(values[b] - f(b)) <= 1e-6 for b in values)

    if all_near(lambda b: 1 - b * b / 1024):
        return passed(label, "f* = 1 - b^2 / 32^2: a 4-bit predictor costs 1/64 of the dense layer, so the "
                             "prediction pays as soon as more than 1.6 % of the outputs are skipped")
    if all_near(lambda b: 1 - b / 32):
        fail(label, "both operands of the predictor are low-bit: one b x b MAC costs b * b bit operations "
                    "(qteach.hw.bops), so the ratio is b^2 / 32^2, not b / 32.")
    if all_near(lambda b: b * b / 1024):
        fail(label, "b^2 / 1024 is the predictor's cost relative to dense; the sparse part can use what is "
                    "left: f + b^2 / 1024 <= 1.")
    if all_near(lambda b: 1 - b * b / 32):
        fail(label, "a full-precision MAC is 32 x 32 = 1024 bit operations, not 32.")
    fail(label, "write the cost as dense MACs times (f * 32 * 32 + bits * bits) and solve cost <= dense * 32 * 32 "
                "for f.")
