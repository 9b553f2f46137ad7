"""Self-checks for the exercises of the Foundations chapter *Training through a quantizer*.

- ``check_1(ste_sign_fn)``: the corrected clipped straight-through sign (a find-the-bug exercise), forward and
  backward, against :func:`qteach.binary.ste_sign`.
- ``check_2(my_fake_quantize_ste)``: signed fake quantization with the straight-through gradient written with the
  detach trick, forward and backward, against :func:`qteach.quant.fake_quantize`.
"""

from __future__ import annotations

import torch

from qteach import binary, quant
from qteach.checks import expect, expect_type, fail, passed, self_check

_SLUG = "training_through_a_quantizer"


def _forward_backward(fn, x: torch.Tensor, upstream: torch.Tensor, label: str, *args):
    """Run ``fn(x, *args)`` on a leaf copy of ``x`` and back-propagate ``upstream``; return (output, input grad)."""
    leaf = x.detach().clone().requires_grad_(True)
    out = fn(leaf, *args)
    expect_type(out, torch.Tensor, label, "the result")
    expect(out.shape == x.shape, label, f"the result has shape {tuple(out.shape)}; expected {tuple(x.shape)}, the "
                                        "shape of the input")
    if not out.requires_grad:
        fail(label, "the result is not connected to the input in the autograd graph (it does not require grad), so "
                    "no gradient can flow back. Did you call .detach(), .item(), or build a new tensor from "
                    "Python numbers?")
    out.backward(upstream)
    grad = leaf.grad if leaf.grad is not None else torch.zeros_like(leaf)
    return out.detach(), grad


@self_check
def check_1(ste_sign_fn) -> None:
    """Check a clipped straight-through sign (e.g. ``MySTESign.apply``) against ``binary.ste_sign(x, clip=1)``."""
    label = f"ex-{_SLUG}-1"
    expect(callable(ste_sign_fn), label, "pass the function to test, e.g. check_1(MySTESign.apply)")
    generator = torch.Generator().manual_seed(0)
    edges = torch.tensor([0.0, 1.0, -1.0, 0.9999, -0.9999, 1.0001, -1.0001, 1e-8, -1e-8])
    x = torch.cat([edges, 3 * torch.randn(300, generator=generator)])
    upstream = torch.randn(x.shape, generator=generator)
    out, grad = _forward_backward(ste_sign_fn, x, upstream, label)

    expected_out = binary.sign(x)
    if not torch.equal(out, expected_out):
        if torch.equal(out, torch.sign(x)):
            fail(label, "the forward pass gives 0 at x = 0: torch.sign(0) is 0, which is not a binary value. Use "
                        "+1 where x >= 0 and -1 elsewhere, e.g. torch.where(x >= 0, 1, -1)")
        bad = int((out != expected_out).nonzero()[0])
        fail(label, f"the forward pass gives {out[bad].item():g} at x = {x[bad].item():g}; expected "
                    f"{expected_out[bad].item():g}. It should return +1 where x >= 0 and -1 elsewhere")

    leaf = x.clone().requires_grad_(True)
    binary.ste_sign(leaf, clip=1.0).backward(upstream)
    expected_grad = leaf.grad
    if not torch.allclose(grad, expected_grad, atol=1e-6):
        inside = (x.abs() <= 1).to(x.dtype)
        if torch.count_nonzero(grad) == 0:
            hint = ("the gradient is zero everywhere, the true derivative of sign. The straight-through estimator "
                    "replaces it: return grad_output * (|x| <= 1) from backward")
        elif torch.allclose(grad, upstream, atol=1e-6):
            hint = ("the gradient passes everywhere (the plain STE). The clipped STE cancels it where |x| > 1: "
                    "multiply by (x.abs() <= 1), computed on the input x saved in forward (a mask computed on the "
                    "output, which is always +-1, is always 1)")
        elif torch.allclose(grad, upstream * (x.abs() < 1).to(x.dtype), atol=1e-6):
            hint = "the window is closed at |x| = 1 itself: use |x| <= 1 (inclusive), the derivative of Htanh"
        elif torch.allclose(grad, inside, atol=1e-6):
            hint = ("backward returns the mask alone: multiply the incoming gradient grad_output by the mask "
                    "(chain rule)")
        else:
            hint = "backward should return grad_output * (x.abs() <= 1), using the x saved in forward"
        fail(label, f"the gradient differs from qteach.binary.ste_sign's. Hint: {hint}")
    passed(label, "forward equals binary.sign (sign(0) = +1) and the gradient equals the clipped STE's "
                         f"on {len(x)} inputs, including 0 and |x| = 1")


def _signed_cases():
    """(scale tensor, zero point tensor, bits, x_min, x_max): symmetric and affine signed grids."""
    cases = []
    for (x_min, x_max), bits, symmetric in [((-1.0, 1.0), 8, True), ((-1.0, 1.0), 3, True),
                                            ((-0.4, 2.0), 4, False), ((-0.3, 1.2), 2, False),
                                            ((-2.5, 0.5), 5, False)]:
        scale, zero_point = quant.qparams(x_min, x_max, bits, signed=True, symmetric=symmetric)
        cases.append((scale, zero_point, bits, x_min, x_max))
    return cases


@self_check
def check_2(my_fake_quantize_ste) -> None:
    """Check ``my_fake_quantize_ste(x, scale, zero_point, bits)`` (signed) against :func:`quant.fake_quantize`,
    forward value and straight-through gradient."""
    label = f"ex-{_SLUG}-2"
    expect(callable(my_fake_quantize_ste), label, "pass your function itself, e.g. check_2(my_fake_quantize_ste)")
    generator = torch.Generator().manual_seed(1)
    cases = _signed_cases()
    for scale_t, zero_point_t, bits, x_min, x_max in cases:
        scale, zero_point = scale_t.item(), int(zero_point_t)
        q_min, q_max = quant.qrange(bits, signed=True)
        low, top = scale * (q_min - zero_point), scale * (q_max - zero_point)
        # Random values across and beyond the range, plus points a little beyond the outer levels: 0.3 steps
        # beyond rounds back to the end code (gradient passes), 0.7 steps beyond is clipped (no gradient).
        near_ends = torch.tensor([top + 0.3 * scale, top + 0.7 * scale, low - 0.3 * scale, low - 0.7 * scale, 0.0])
        x = torch.cat([near_ends, 1.5 * (x_max - x_min) * torch.randn(400, generator=generator)])
        upstream = torch.randn(x.shape, generator=generator)
        case = f"for {bits} signed bits with scale {scale:.4g} and zero point {zero_point}"

        out, grad = _forward_backward(my_fake_quantize_ste, x, upstream, label, scale, zero_point, bits)
        out = out.to(torch.float32)
        leaf = x.clone().requires_grad_(True)
        expected_out = quant.fake_quantize(leaf, scale_t, zero_point_t, bits, signed=True)
        expected_out.backward(upstream)
        expected_grad = leaf.grad
        expected_out = expected_out.detach()

        # A value exactly on a rounding boundary may round differently with x / s and x * (1 / s): allow one.
        wrong = (out - expected_out).abs() > 1e-5 * max(1.0, abs(x_min), abs(x_max))
        if int(wrong.sum()) > 1:
            unsigned = scale * (torch.clamp(torch.round(x / scale) + zero_point, 0, 2**bits - 1) - zero_point)
            if torch.allclose(out, unsigned, atol=1e-5):
                hint = "the codes are signed here: q_min = -2**(bits - 1) and q_max = 2**(bits - 1) - 1"
            else:
                hint = ("q = clamp(round(x / s) + z, q_min, q_max), then x_hat = (q - z) * s; the detach trick "
                        "must not change the forward value")
            bad = int(wrong.nonzero()[0])
            fail(label, f"the forward value {case} differs from qteach.quant.fake_quantize at {int(wrong.sum())} "
                        f"of {len(x)} inputs, e.g. x = {x[bad].item():.4f} gives {out[bad].item():.4f} instead of "
                        f"{expected_out[bad].item():.4f}. Hint: {hint}")

        if not torch.allclose(grad, expected_grad, rtol=1e-4, atol=1e-5):
            real_range = ((x >= low) & (x <= top)).to(x.dtype)
            if torch.count_nonzero(grad) == 0:
                hint = ("the gradient is zero everywhere: torch.round has zero gradient. Round with the detach "
                        "trick, codes + (torch.round(codes) - codes).detach()")
            elif torch.allclose(grad, upstream, rtol=1e-4, atol=1e-5):
                hint = ("the gradient passes everywhere, also where the code is clipped. Apply torch.clamp to the "
                        "rounded code (its gradient is 0 where it clips) instead of putting the whole quantizer "
                        "inside the detach trick")
            elif torch.allclose(grad, upstream * real_range, rtol=1e-4, atol=1e-5):
                hint = ("the mask is decided on x instead of on the rounded code: a value less than half a step "
                        "beyond the outer level rounds to the end code and keeps its gradient. Round first, then "
                        "clamp the code")
            else:
                hint = ("the gradient should be grad_output where round(x / s) + z lies in [q_min, q_max] and 0 "
                        "elsewhere")
            fail(label, f"the gradient {case} differs from qteach.quant.fake_quantize's. Hint: {hint}")
    passed(label, f"forward value and straight-through gradient equal qteach.quant.fake_quantize's for "
                         f"{len(cases)} signed grids (2 to 8 bits), including values just beyond the outer levels")
