"""Self-checks of the chapter "WRPN: Wide Reduced-Precision Networks".

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.wrpn` and
:mod:`qteach.hw`, and either prints the success line or raises ``AssertionError`` with a hint naming the likely
mistake.
"""

from __future__ import annotations

import torch

from qteach import hw
from qteach.checks import expect, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import wrpn

_SLUG = "wrpn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the weight quantizer ----------------------------------------------------------------------------

@self_check
def check_1(wrpn_weights) -> None:
    """Check ``wrpn_weights(w, k)``: clip to [-1, 1], round to 2^(k-1) - 1 steps per unit."""
    label = _label(1)
    expect(callable(wrpn_weights), label, "pass your function itself, e.g. check_1(wrpn_weights)")
    cases = [
        ("the 6 weights of the text, k = 3", torch.tensor([-1.4, -0.45, -0.1, 0.2, 0.52, 0.9]), 3),
        ("Gaussian weights (scale 0.7), k = 2", weight_samples(500, "gaussian", scale=0.7, seed=1), 2),
        ("Gaussian weights (scale 0.7), k = 4", weight_samples((10, 20), "gaussian", scale=0.7, seed=2), 4),
        ("uniform weights on [-2, 2], k = 8", weight_samples(400, "uniform", scale=2.0, seed=3), 8),
    ]
    for what, w, k in cases:
        got = wrpn_weights(w.clone(), k)
        expect(isinstance(got, torch.Tensor), label, f"wrpn_weights should return a tensor, got {type(got).__name__}")
        expect(got.shape == w.shape, label, f"on {what}: shape {tuple(got.shape)}, expected {tuple(w.shape)}")
        ref = wrpn.quantize_weights(w, k)
        got = got.detach().to(ref.dtype)
        if torch.allclose(got, ref, atol=1e-5):
            continue
        steps = 2 ** (k - 1) - 1
        no_sign_bit = torch.round(w.clamp(-1, 1) * (2**k - 1)) / (2**k - 1)
        no_clip = torch.round(w * steps) / steps
        truncated = torch.trunc(w.clamp(-1, 1) * steps) / steps
        hint = "w_q = round((2^(k-1) - 1) * clip(w, -1, 1)) / (2^(k-1) - 1)."
        if torch.allclose(got, no_sign_bit, atol=1e-5):
            hint = ("you used 2^k - 1 steps; one of the k bits is the sign, so the magnitude has k - 1 bits: "
                    "2^(k-1) - 1 steps per unit.")
        elif torch.allclose(got, no_clip, atol=1e-5):
            hint = "clip to [-1, 1] first: values beyond +-1 must saturate at +-1."
        elif torch.allclose(got, truncated, atol=1e-5):
            hint = "round to the nearest level; truncating towards zero (int(), trunc, floor of |x|) is biased."
        elif got.abs().max() > 1 + 1e-6:
            hint = "the result must stay in [-1, 1]: clip, then quantize."
        fail(label, f"on {what}: the quantized weights differ from WRPN's. {hint}")
    passed(label, f"your quantizer matches WRPN's weight scheme on {len(cases)} tensors and k = 2, 3, 4, 8")


# --- exercise 2: bit operations of a widened layer ---------------------------------------------------------------

@self_check
def check_2(layer_bops) -> None:
    """Check ``layer_bops(in_features, out_features, width, w_bits, a_bits)`` for a hidden layer widened by
    ``width`` on both sides: MACs (in * width) * (out * width), times w_bits * a_bits."""
    label = _label(2)
    expect(callable(layer_bops), label, "pass your function itself, e.g. check_2(layer_bops)")
    cases = [(16, 16, 1, 32, 32), (16, 16, 2, 4, 4), (64, 32, 3, 2, 8), (100, 10, 4, 1, 1), (7, 5, 2, 3, 5)]
    for n_in, n_out, width, w_bits, a_bits in cases:
        got = layer_bops(n_in, n_out, width, w_bits, a_bits)
        expect(isinstance(got, (int, float)) and not isinstance(got, bool), label,
               f"layer_bops should return a number, got {type(got).__name__}")
        ref = hw.bops(hw.linear_macs(n_in * width, n_out * width), w_bits, a_bits)
        if got == ref:
            continue
        what = f"layer_bops({n_in}, {n_out}, width={width}, w_bits={w_bits}, a_bits={a_bits})"
        macs = n_in * n_out
        hint = "BOPs = MACs * w_bits * a_bits with MACs = (in * width) * (out * width)."
        if got == macs * width * w_bits * a_bits:
            hint = ("a hidden layer is widened on both sides, its inputs and its outputs: the MACs grow with "
                    "width^2, not width.")
        elif got == macs * width**2 * (w_bits + a_bits):
            hint = "multiply the two widths (w_bits * a_bits), do not add them."
        elif got == macs * width**2:
            hint = "those are the MACs; BOPs multiply them by w_bits * a_bits."
        elif got == macs * w_bits * a_bits:
            hint = "you forgot the width: a widened layer has (in * width) * (out * width) MACs."
        fail(label, f"{what} = {got}, expected {ref}. {hint}")
    passed(label, f"your bit-operation counts are right for {len(cases)} layers, widths 1 to 4")
