"""Self-checks of the WAGEUBN chapter (notebooks/2020/wageubn_int8_training.ipynb).

Each check calls the student's function, compares it with :mod:`qteach.papers.wageubn_int8_training` or a closed
form, and either prints the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.papers import wageubn_int8_training as w

_SLUG = "wageubn_int8_training"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: how much of an error tensor a fixed grid rounds away ----------------------------------------------


def _cases():
    gen = torch.Generator().manual_seed(11)
    yield torch.randn(200, generator=gen) * 1e-3, 8
    yield torch.randn(40, 30, generator=gen) * 0.05, 8
    yield torch.randn(500, generator=gen) * 0.02, 4
    sparse = torch.randn(300, generator=gen) * 0.01
    sparse[::3] = 0.0  # zeros are not counted
    yield sparse, 8


def _underflow(e, mode, bits):
    nonzero = e != 0
    return float((w.error_quantize(e, mode, bits)[nonzero] == 0).float().mean())


@self_check
def check_1(underflow_fraction) -> str:
    """Check ``underflow_fraction(e, mode, bits)`` -> the fraction of the non-zero entries of ``e`` that
    ``error_quantize(e, mode, bits)`` sets to zero."""
    label = _label(1)
    expect(callable(underflow_fraction), label, "pass your function itself, e.g. check_1(underflow_fraction)")
    for e, bits in _cases():
        for mode in ("direct", "shift", "flag"):
            value = as_number(underflow_fraction(e.clone(), mode, bits), label, "underflow_fraction(e, mode, bits)")
            target = _underflow(e, mode, bits)
            if math.isclose(value, target, abs_tol=1e-6):
                continue
            if math.isclose(value, 100 * target, abs_tol=1e-4) and target > 0:
                fail(label, "return a fraction between 0 and 1, not a percentage.")
            if math.isclose(value, 1 - target, abs_tol=1e-6):
                fail(label, "that is the fraction that survives; the exercise asks for the fraction set to zero.")
            all_entries = float((w.error_quantize(e, mode, bits) == 0).float().mean())
            if math.isclose(value, all_entries, abs_tol=1e-6):
                fail(label, "count only the entries that were non-zero before quantization (e != 0).")
            fail(label, f"with mode={mode!r}, bits={bits}: quantize e with w.error_quantize(e, mode, bits) and count "
                        "the non-zero entries of e that became exactly zero.")
    return passed(label, "the direct grid (no shift) rounds most small errors to zero; the shift and flag "
                         "quantizers keep them")


# --- exercise 2: the largest step that a constant-quantized gradient can take --------------------------------------


@self_check
def check_2(max_step) -> str:
    """Check ``max_step(lr, bits, g_scale)`` -> the largest |lr * G| of constant quantization (W5)."""
    label = _label(2)
    expect(callable(max_step), label, "pass your function itself, e.g. check_2(max_step)")
    for lr, bits, g_scale in ((0.5, 8, 128.0), (1.0, 8, 32.0), (0.05, 6, 128.0), (2.0, 8, 8.0)):
        value = as_number(max_step(lr, bits, g_scale), label, f"max_step({lr}, {bits}, {g_scale})")
        target = lr * (g_scale - 1) / (128 * 2 ** (bits - 1))
        if math.isclose(value, target, rel_tol=1e-6):
            continue
        if math.isclose(value, lr * g_scale / (128 * 2 ** (bits - 1)), rel_tol=1e-6):
            fail(label, "n is clipped to g_scale - 1, not g_scale.")
        if math.isclose(value, target / lr, rel_tol=1e-6):
            fail(label, "multiply by the learning rate: the step is lr * G.")
        if math.isclose(value, lr * (g_scale - 1) / 2 ** (bits - 1), rel_tol=1e-6):
            fail(label, "G divides n by 128 * 2**(bits - 1), not by 2**(bits - 1) alone.")
        fail(label, f"max_step({lr}, {bits}, {g_scale}): the largest n is g_scale - 1 and G = n / (128 * 2**(bits-1)).")
    gen = torch.Generator().manual_seed(0)
    g = torch.randn(1000, generator=gen) * 1e-3
    observed = float(w.constant_quantize(g, 8, generator=gen).abs().max()) * 0.5
    expect(observed <= max_step(0.5, 8, 128.0) + 1e-12, label, "the constant quantizer exceeded your bound.")
    return passed(label, "the largest constant-quantized step is lr * (g_scale - 1) / (128 * 2**(bits - 1)), "
                         "whatever the gradient's scale")
