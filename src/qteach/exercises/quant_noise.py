"""Self-checks of the Quant-Noise chapter (notebooks/2020/quant_noise.ipynb).

Each check calls the student's function on fixed inputs, compares it with the closed form, and either prints the
success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check

_SLUG = "quant_noise"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the noise with its straight-through gradient --------------------------------------------------


def _case(seed: int):
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(4, 6, generator=g)
    quantized = torch.round(weight * 2) / 2
    mask = torch.rand(4, 6, generator=g) < 0.5
    mask[0, 0], mask[0, 1] = True, False  # both kinds present
    return weight, quantized, mask


@self_check
def check_1(psi) -> str:
    """Check ``psi(weight, quantized, mask)``: ``quantized`` where ``mask``, ``weight`` elsewhere, gradient 1."""
    label = _label(1)
    expect(callable(psi), label, "pass your function itself, e.g. check_1(psi)")
    for seed in (0, 1, 2):
        weight, quantized, mask = _case(seed)
        w = weight.clone().requires_grad_(True)
        got = psi(w, quantized.clone(), mask.clone())
        expect_type(got, torch.Tensor, label, "psi(weight, quantized, mask)")
        expect(got.shape == weight.shape, label, f"the result should have the weight's shape {tuple(weight.shape)}")
        expected = torch.where(mask, quantized, weight)
        if torch.allclose(got.detach(), torch.where(mask, weight, quantized), atol=1e-6):
            fail(label, "the roles are swapped: mask marks the blocks that are quantized (J = 1), the others stay "
                        "float.")
        expect(torch.allclose(got.detach(), expected, atol=1e-6), label,
               "the forward value should be quantized where mask is True and weight elsewhere "
               "(torch.where(mask, quantized, weight)).")
        expect(got.requires_grad, label, "no gradient reaches the weight: keep weight in the graph, e.g. "
                                         "weight + (distorted - weight).detach().")
        grad, = torch.autograd.grad(got.sum(), w)
        if torch.allclose(grad, (~mask).float()):
            fail(label, "the quantized blocks get no gradient: that is the proxy's dropout, not Quant-Noise's STE. "
                        "Add the distortion as a detached difference: weight + (distorted - weight).detach().")
        expect(torch.allclose(grad, torch.ones_like(grad)), label,
               "the straight-through estimator passes the gradient unchanged to every weight (all ones here).")
    return passed(label, "the selected blocks are quantized in the forward pass, every weight gets its gradient")


# --- exercise 2: the storage of product quantization ----------------------------------------------------------


_CASES = ((64, 40, 2, 5, 16), (128, 128, 4, 16, 32), (128, 128, 8, 256, 32), (10, 6, 3, 1, 32))


def _pq_bits(m, n, d, k, b):
    return m * n // d * (k - 1).bit_length() + k * d * b


@self_check
def check_2(pq_storage_bits) -> str:
    """Check ``pq_storage_bits(m, n, d, k, codebook_bits)``: the bits of a PQ layer (indices + codebook)."""
    label = _label(2)
    expect(callable(pq_storage_bits), label, "pass your function itself, e.g. check_2(pq_storage_bits)")
    for m, n, d, k, b in _CASES:
        got = pq_storage_bits(m, n, d, k, b)
        if isinstance(got, torch.Tensor):
            got = got.item()
        expect(isinstance(got, (int, float)) and not isinstance(got, bool), label,
               f"return a number of bits, got {type(got).__name__}")
        expected = _pq_bits(m, n, d, k, b)
        if abs(got - expected) < 1e-6:
            continue
        if abs(got - m * n // d * (k - 1).bit_length()) < 1e-6:
            fail(label, "the codebook is missing: k centroids of d numbers, codebook_bits bits each, are stored too.")
        if k == 1 and abs(got - (m * n // d * 1 + k * d * b)) < 1e-6:
            fail(label, "with a single centroid the index carries no information: ceil(log2 1) = 0 bits.")
        if abs(got - (m * n // d * k + k * d * b)) < 1e-6:
            fail(label, "an index into k centroids takes ceil(log2 k) bits, not k bits.")
        if abs(got - (m * n * (k - 1).bit_length() + k * d * b)) < 1e-6:
            fail(label, "there is one index per block of d weights (m n / d of them), not one per weight.")
        fail(label, f"for m={m}, n={n}, d={d}, k={k}: expected (m n / d) ceil(log2 k) + k d codebook_bits = "
                    f"{expected} bits, got {got}.")
    return passed(label, "m n / d indices of ceil(log2 k) bits plus a k x d codebook")
