"""Self-checks of the integer-arithmetic-only chapter (notebooks/2018/integer_arithmetic_only.ipynb).

Each check calls the student's function on fixed inputs, compares with a reference (:func:`qteach.nn.fold_batch_norm`,
exact rational rounding in Python integers) and either prints the success line or raises ``AssertionError`` with a
hint naming the likely mistake.
"""

from __future__ import annotations

import torch
from torch import nn

from qteach import bitops
from qteach import nn as qnn
from qteach.checks import expect, expect_type, fail, passed, self_check

_SLUG = "integer_arithmetic_only"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: fold a batch norm into the conv before it (eq. 14 and its bias) ------------------------------


def _bn_cases():
    g = torch.Generator().manual_seed(11)
    cases = []
    for out_channels, with_bias in ((4, True), (3, False)):
        w = torch.randn(out_channels, 2, 3, 3, generator=g)
        b = torch.randn(out_channels, generator=g) if with_bias else None
        bn = nn.BatchNorm2d(out_channels, eps=0.1)   # a large eps, so that forgetting it shows
        with torch.no_grad():
            bn.weight.copy_(torch.rand(out_channels, generator=g) + 0.5)
            bn.bias.copy_(torch.randn(out_channels, generator=g))
            bn.running_mean.copy_(torch.randn(out_channels, generator=g))
            bn.running_var.copy_(torch.rand(out_channels, generator=g) * 3 + 0.2)
        cases.append((w, b, bn))
    return cases


@self_check
def check_1(fold) -> str:
    """Check ``fold(w, b, gamma, beta, mean, var, eps)`` -> ``(w_fold, b_fold)`` against fold_batch_norm."""
    label = _label(1)
    expect(callable(fold), label, "pass your function itself, e.g. check_1(fold)")
    for w, b, bn in _bn_cases():
        args = (bn.weight.detach(), bn.bias.detach(), bn.running_mean.clone(), bn.running_var.clone(), bn.eps)
        bias_in = torch.zeros(w.shape[0]) if b is None else b
        try:
            result = fold(w.clone(), bias_in.clone(), *[a.clone() if isinstance(a, torch.Tensor) else a for a in args])
        except NotImplementedError:     # the stub (a RuntimeError): self_check reports "not attempted"
            raise
        except RuntimeError as error:   # a broadcasting error: per-channel factors against (O, C, kh, kw)
            fail(label, f"{error}. The per-channel factor gamma / sqrt(var + eps) has shape (O,): reshape it to "
                        "the shape (O, 1, 1, 1) so that it scales dim 0 of w.")
        expect(isinstance(result, tuple) and len(result) == 2, label, "return a pair (w_fold, b_fold)")
        w_fold, b_fold = result
        expect_type(w_fold, torch.Tensor, label, "w_fold")
        expect_type(b_fold, torch.Tensor, label, "b_fold")
        ref_w, ref_b = qnn.fold_batch_norm(w, b, bn)
        gamma, beta, mean, var, eps = args
        if w_fold.shape != w.shape:
            fail(label, f"w_fold should have the shape {tuple(w.shape)} of w: scale each output channel (dim 0) "
                        "by gamma / sqrt(var + eps), reshaped to (O, 1, 1, 1).")
        if not torch.allclose(w_fold, ref_w, atol=1e-5):
            factor = (gamma / var.sqrt()).reshape(-1, 1, 1, 1)
            if torch.allclose(w_fold, w * factor, atol=1e-5):
                fail(label, "w_fold forgets eps: divide by sqrt(var + eps), as batch norm does.")
            if torch.allclose(w_fold, w * (gamma / (var + eps)).reshape(-1, 1, 1, 1), atol=1e-5):
                fail(label, "divide by the standard deviation sqrt(var + eps), not by the variance.")
            fail(label, "w_fold should be gamma * w / sqrt(var + eps) for each output channel (eq. 14).")
        if b_fold.shape != (w.shape[0],) or not torch.allclose(b_fold, ref_b, atol=1e-5):
            std = (var + eps).sqrt()
            if b_fold.shape == (w.shape[0],):
                if torch.allclose(b_fold, beta + bias_in - mean, atol=1e-5) or torch.allclose(
                        b_fold, beta + (bias_in - mean) / std, atol=1e-5):
                    fail(label, "b_fold must be scaled like the weights: beta + gamma (b - mean) / sqrt(var + eps).")
                if torch.allclose(b_fold, gamma * (bias_in - mean) / std, atol=1e-5):
                    fail(label, "b_fold forgets beta, the batch norm's shift.")
                if torch.allclose(b_fold, beta - gamma * mean / std, atol=1e-5):
                    fail(label, "b_fold forgets the conv's own bias b, which batch norm also shifts and scales.")
            fail(label, "b_fold should be beta + gamma * (b - mean) / sqrt(var + eps), one value per channel.")
    return passed(label, "w_fold and b_fold equal qteach.nn.fold_batch_norm on two conv layers (with and without "
                         "a bias, eps = 0.1)")


# --- exercise 2: a requantizer that rounds once -------------------------------------------------------------


_CASES = [(1972752227, -3), (1789569707, -1), (2**30, -1), (1500000000, -7), (1234567890, 0)]


def _accumulators():
    g = torch.Generator().manual_seed(5)
    acc = torch.cat([torch.arange(-300, 301), torch.randint(-2**20, 2**20, (400,), generator=g),
                     torch.tensor([13, -13, 2**24 + 1])])
    return acc.to(torch.int32)


def _exact_neighbours(acc: torch.Tensor, m0: int, shift: int):
    """The nearest integer(s) of acc * m0 / 2^(31 - shift), in Python integers: (floor_choice, ceil_choice)."""
    k = 31 - shift
    low, high = [], []
    for a in acc.tolist():
        num = a * m0
        q, r = divmod(num, 2**k)          # num = q 2^k + r, 0 <= r < 2^k
        if 2 * r < 2**k:
            low.append(q), high.append(q)
        elif 2 * r > 2**k:
            low.append(q + 1), high.append(q + 1)
        else:                             # an exact tie: either neighbour is a correct rounding
            low.append(q), high.append(q + 1)
    return torch.tensor(low), torch.tensor(high)


@self_check
def check_2(requantize_once) -> str:
    """Check ``requantize_once(acc, m0, shift)``: acc * m0 * 2^(shift - 31) rounded to nearest, in one rounding."""
    label = _label(2)
    expect(callable(requantize_once), label, "pass your function itself, e.g. check_2(requantize_once)")
    acc = _accumulators()
    for m0, shift in _CASES:
        out = requantize_once(acc.clone(), m0, shift)
        expect_type(out, torch.Tensor, label, "the result")
        expect(out.shape == acc.shape, label, f"return one value per accumulator: shape {tuple(acc.shape)}")
        expect(not out.is_floating_point(), label, "return integers (an integer dtype), not floats: the point is "
                                                   "an integer-only rescale")
        out = out.to(torch.int64)
        low, high = _exact_neighbours(acc, m0, shift)
        ok = (out >= low) & (out <= high)
        if bool(ok.all()):
            continue
        tflite = bitops.requantize(acc, m0, shift).to(torch.int64)
        if torch.equal(out, tflite):
            fail(label, "this is TFLite's rule, bitops.requantize: it rounds twice (the high multiply, then the "
                        "shift). Multiply in int64 and round acc * m0 once, by adding 2^(k-1) and shifting right "
                        "by k = 31 - shift.")
        k = 31 - shift
        floor = torch.div(acc.to(torch.int64) * m0, 2**k, rounding_mode="floor")
        trunc = torch.div(acc.to(torch.int64) * m0, 2**k, rounding_mode="trunc")
        if torch.equal(out, floor) or torch.equal(out, trunc):
            fail(label, "you truncate (shift without rounding): add half, 2^(k-1), before shifting by k.")
        if bool(((out - low).abs() > 2**10).any()):
            fail(label, "the values are far off: the multiplier is m0 * 2^(shift - 31), so shift right by "
                        "31 - shift bits (shift is usually negative).")
        bad = int((~ok).nonzero()[0])
        fail(label, f"acc = {int(acc[bad])}, m0 = {m0}, shift = {shift}: got {int(out[bad])}, expected "
                    f"{int(low[bad])}. Round acc * m0 / 2^(31 - shift) to nearest, once, in int64 (float32 "
                    "loses bits for large accumulators).")
    return passed(label, f"one rounding to nearest on {acc.numel()} accumulators x {len(_CASES)} multipliers, "
                         "including acc = 13 where TFLite's double rounding gives 2 instead of 1")
