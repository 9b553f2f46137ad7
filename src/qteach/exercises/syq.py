"""Self-checks of the SYQ chapter (notebooks/2018/syq.ipynb).

Each check calls the student's function on fixed weights, compares with :mod:`qteach.papers.syq`, and either prints
the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import syq

_SLUG = "syq"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _conv_weights():
    g = torch.Generator().manual_seed(11)
    w1 = torch.randn(6, 4, 3, 3, generator=g) * torch.linspace(0.3, 2.0, 9).view(1, 1, 3, 3)
    w2 = torch.randn(3, 2, 5, 3, generator=g)   # a non-square kernel: kw * i + j, not kh * i + j
    w2[0, 0, 4, 2] = 8.0                        # one large weight: most of its pixel group falls below eta_x
    return [w1, w2]


# --- exercise 1: the per-pixel scales ------------------------------------------------------------------------


@self_check
def check_1(pixel_scales) -> str:
    """Check ``pixel_scales(w, eta)`` -> (kh, kw) tensor: for each kernel position, the mean |W| over the weights
    of that position whose magnitude exceeds eta * max|W| (the layer's threshold)."""
    label = _label(1)
    expect(callable(pixel_scales), label, "pass your function itself, e.g. check_1(pixel_scales)")
    for w in _conv_weights():
        for eta in (0.05, 0.3):
            got = pixel_scales(w.clone(), eta)
            expect_type(got, torch.Tensor, label, "the result")
            kh, kw = w.shape[2:]
            ref = syq.optimal_group_scales(w, "pixel", eta).view(kh, kw)
            if got.numel() != kh * kw:
                if got.numel() == w.shape[0]:
                    fail(label, "one value per output channel is XNOR-Net's grouping; SYQ's pixel groups are the "
                                "kernel positions: reduce over dims 0 and 1 (out, in), keep (kh, kw).")
                fail(label, f"expected kh * kw = {kh * kw} values (one per kernel position), got shape "
                            f"{tuple(got.shape)}.")
            got = got.reshape(kh, kw).to(ref.dtype)
            if torch.allclose(got, ref, rtol=1e-4, atol=1e-5):
                continue
            if torch.allclose(got, w.abs().mean(dim=(0, 1)), rtol=1e-4, atol=1e-5):
                fail(label, "that is the mean |W| over all weights of each position; the weights below the "
                            "threshold are zero in a ternary layer and do not use the scale: average only over "
                            "|W| > eta * max|W|.")
            above_local = w.abs() > eta * w.abs().amax(dim=(0, 1), keepdim=True)
            local = (w.abs() * above_local).sum(dim=(0, 1)) / above_local.sum(dim=(0, 1)).clamp(min=1)
            if torch.allclose(got, local, rtol=1e-4, atol=1e-5):
                fail(label, "the threshold is one for the whole layer, eta * max|W| over all the weights "
                            "(quantize.py:13), not one per kernel position.")
            if torch.allclose(got.flatten(), ref.view(kw, kh).T.flatten(), rtol=1e-4, atol=1e-5):
                fail(label, "rows and columns are swapped: position (i, j) is w[:, :, i, j].")
            fail(label, "for each (i, j): take the weights w[:, :, i, j] with |w| > eta * max|W| and average their "
                        "magnitudes.")
    return passed(label, "the per-pixel scales equal the least-squares optimum on 2 conv weights and 2 thresholds")


# --- exercise 2: the gradient of a learned scale -------------------------------------------------------------


@self_check
def check_2(scale_gradient) -> str:
    """Check ``scale_gradient(w, upstream, eta)`` -> a number: dL/d alpha of one per-layer ternary SYQ scale, where
    ``upstream`` is dL/dQ(W)."""
    label = _label(2)
    expect(callable(scale_gradient), label, "pass your function itself, e.g. check_2(scale_gradient)")
    g = torch.Generator().manual_seed(12)
    for w in [*_conv_weights(), torch.randn(5, 7, generator=g)]:
        for eta in (0.05, 0.4):
            upstream = torch.randn(w.shape, generator=g)
            got = scale_gradient(w.clone(), upstream.clone(), eta)
            try:
                got = float(got)
            except (TypeError, ValueError, RuntimeError):
                fail(label, "return one number (a float or a 0-d tensor): there is one scale per layer.")
            scale = torch.tensor([1.3], requires_grad=True)
            syq.syq_quantize(w, scale, eta, ternary=True, granularity="layer").backward(upstream)
            ref = scale.grad.item()
            if abs(got - ref) <= 1e-4 * max(1.0, abs(ref)):
                continue
            above = w.abs() > eta * w.abs().max()
            if abs(got - (upstream * torch.sign(w)).sum().item()) < 1e-3:
                fail(label, "the weights below eta * max|W| are zero and their masker is 1, not alpha: they do not "
                            "contribute to dL/d alpha.")
            if abs(got - (upstream * above).sum().item()) < 1e-3:
                fail(label, "Q = alpha * sign(W) on the selected weights, so each term is dL/dQ * sign(W): the sign "
                            "is missing.")
            if abs(got - (upstream * torch.sign(w) * above).sum().item() / max(int(above.sum()), 1)) < 1e-3:
                fail(label, "the chain rule gives a sum over the weights that use alpha, not a mean.")
            if abs(got - 1.3 * (upstream * torch.sign(w) * above).sum().item()) < 1e-3:
                fail(label, "dQ/d alpha is sign(W), not alpha * sign(W).")
            fail(label, "sum dL/dQ_i * sign(W_i) over the weights with |W_i| > eta * max|W|.")
    return passed(label, "dL/d alpha equals autograd through syq_quantize on 3 weights and 2 thresholds")
