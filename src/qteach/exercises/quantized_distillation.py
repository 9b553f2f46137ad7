"""Self-checks of the quantized distillation chapter (notebooks/2018/quantized_distillation.ipynb).

Each check calls the student's function on fixed inputs, compares with :mod:`qteach.papers.quantized_distillation`
(or a closed form), and either prints the success line or raises ``AssertionError`` with a hint that names the
likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, expect_tensor_like, fail, passed, self_check
from qteach.papers import quantized_distillation as qd

_SLUG = "quantized_distillation"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _vectors():
    g = torch.Generator().manual_seed(11)
    return [torch.randn(37, generator=g), 3.0 * torch.rand(5, 4, generator=g) - 1.0, torch.full((6,), 0.25)]


def _same(a, b) -> bool:
    return isinstance(a, torch.Tensor) and a.shape == b.shape and bool(torch.all(torch.isfinite(a))) \
        and torch.allclose(a.detach().double(), b.double(), atol=1e-5)


def _grid(v, bits):
    beta = v.min()
    alpha = v.max() - beta
    return beta, torch.where(alpha < 1e-10, torch.ones_like(alpha), alpha)


# --- exercise 1: the uniform quantization of one bucket -------------------------------------------------------


@self_check
def check_1(quantize_bucket) -> str:
    """Check ``quantize_bucket(v, bits)`` -> the paper's deterministic uniform quantization of the whole tensor
    ``v`` as one bucket, with 2**bits points."""
    label = _label(1)
    expect(callable(quantize_bucket), label, "pass your function itself, e.g. check_1(quantize_bucket)")
    for v in _vectors():
        for bits in (1, 2, 3, 4):
            got = quantize_bucket(v.clone(), bits)
            expect_tensor_like(got, v, label, "the quantized tensor")
            ref = qd.uniform_quantize(v, bits)
            if _same(got, ref):
                continue
            if not bool(torch.all(torch.isfinite(got))):
                fail(label, "NaN or infinity: a bucket whose values are all equal has range 0; use a range of 1 "
                            "there (as the official code does), which leaves the values unchanged.")
            beta, alpha = _grid(v, bits)
            x = (v - beta) / alpha
            for steps, hint in ((2**bits, "that grid has 2**bits + 1 points: 2**bits points make s = 2**bits - 1 "
                                          "steps (the official code subtracts one)."),):
                if _same(got, torch.round(x * steps) / steps * alpha + beta):
                    fail(label, hint)
            s = 2**bits - 1
            if _same(got, torch.floor(x * s) / s * alpha + beta):
                fail(label, "that rounds down (floor): the deterministic quantizer rounds to the nearest point.")
            if _same(got, torch.round(x * s) / s) or _same(got, torch.round(x * s)):
                fail(label, "scale back: multiply by the range alpha and add the minimum beta, so the result lives "
                            "where v lives.")
            fail(label, f"at {bits} bits the result differs from the paper's Q(v): scale to [0, 1] with "
                        "(v - min) / (max - min), round x * s with s = 2**bits - 1, divide by s, scale back.")
    return passed(label, "your quantizer matches the paper's uniform quantization at 1 to 4 bits, constant bucket "
                         "included")


# --- exercise 2: stochastic rounding, the paper's variant ----------------------------------------------------


@self_check
def check_2(stochastic_quantize) -> str:
    """Check ``stochastic_quantize(v, bits, u)`` -> the paper's stochastic uniform quantization of ``v`` (one
    bucket), rounding up where the uniform sample ``u`` falls below the remainder."""
    label = _label(2)
    expect(callable(stochastic_quantize), label, "pass your function itself, e.g. check_2(stochastic_quantize)")
    g = torch.Generator().manual_seed(12)
    for v in _vectors()[:2]:
        for bits in (1, 2, 4):
            u = torch.rand(v.shape, generator=g)
            got = stochastic_quantize(v.clone(), bits, u.clone())
            expect_tensor_like(got, v, label, "the quantized tensor")
            beta, alpha = _grid(v, bits)
            s = 2**bits - 1
            scaled = (v - beta) / alpha * s
            low = torch.floor(scaled)
            up = low + (u < scaled - low).to(v.dtype)
            if _same(got, up / s * alpha + beta):
                continue
            if _same(got, (low + (u > scaled - low).to(v.dtype)) / s * alpha + beta):
                fail(label, "that rounds up with probability 1 - remainder: round up where u < remainder, so a "
                            "value close to the upper point goes up most of the time.")
            if _same(got, torch.round(scaled) / s * alpha + beta):
                fail(label, "that is deterministic rounding: use u to round up with probability equal to the "
                            "remainder x*s - floor(x*s).")
            if _same(got, (low + (u < scaled - low).to(v.dtype)) / 2**bits * alpha + beta):
                fail(label, "2**bits points make s = 2**bits - 1 steps: divide by s = 2**bits - 1.")
            fail(label, f"at {bits} bits the result differs: floor(x*s) + (u < x*s - floor(x*s)), divided by "
                        "s = 2**bits - 1 and scaled back with the bucket's range and minimum.")
    return passed(label, "your stochastic rounding matches the paper's Bernoulli rule on fixed uniform samples")


# --- exercise 3: the effective weight of the official distillation term -----------------------------------


@self_check
def check_3(effective_weight) -> str:
    """Check ``effective_weight(teacher_weight, temperature, num_classes)`` -> the factor that multiplies the
    per-sample KL divergence (summed over classes, averaged over the batch) in the official loss."""
    label = _label(3)
    expect(callable(effective_weight), label, "pass your function itself, e.g. check_3(effective_weight)")
    for w, t, c in ((0.7, 2.0, 10), (0.5, 4.0, 100), (0.9, 1.0, 3)):
        got = as_number(effective_weight(w, t, c), label, "the effective weight")
        ref = w * t**2 / c
        if math.isclose(got, ref, rel_tol=1e-6):
            continue
        if math.isclose(got, w * t**2, rel_tol=1e-6):
            fail(label, "nn.KLDivLoss() of PyTorch 0.3 averages over all N x C entries, not over the N samples: "
                        "divide by the number of classes.")
        if math.isclose(got, w / c, rel_tol=1e-6):
            fail(label, "the official code multiplies the KL term by temperature**2 (cnn_models/help_fun.py, lines 124-139).")
        if math.isclose(got, w * t / c, rel_tol=1e-6):
            fail(label, "the factor is temperature squared, not temperature.")
        if math.isclose(got, (1 - w) * t**2 / c, rel_tol=1e-6):
            fail(label, "teacher_weight multiplies the distillation term; 1 - teacher_weight multiplies the "
                        "cross-entropy.")
        fail(label, f"for w = {w}, T = {t}, C = {c} expected {ref:.4g}, got {got:.4g}.")
    return passed(label, "w T^2 / C: at the official w = 0.7, T = 2 and 10 classes the KL term weighs 0.28 "
                         "per sample, against 0.3 for the cross-entropy")
