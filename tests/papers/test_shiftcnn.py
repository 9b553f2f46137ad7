"""ShiftCNN: codebooks, Algorithm 1 by hand and against the official script, bit-exact shift-and-add inference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from qteach.data import weight_samples
from qteach.nn import QuantConv2d, QuantLinear
from qteach.papers import shiftcnn as sc


def official_shiftcnn(w: np.ndarray, N: int, B: int) -> np.ndarray:
    """A line-by-line port of gudovskiy/ShiftCNN shiftcnn_quantization.py (the loop body over one layer)."""
    wT = 0.0
    wMax = np.max(np.abs(w))
    r = w / wMax  # normalize
    for n in range(0, N):
        qSgn = np.sign(r)
        qLog = np.log2(abs(r + 1e-32))
        qIdx = np.floor(qLog)
        bLog = qIdx + np.log2(1.5)
        bIdx = qLog > bLog  # border condition
        qIdx[bIdx] = qIdx[bIdx] + 1.0
        q = qSgn * 2 ** (qIdx)
        sIdx = (2 - (n + 1) - qIdx) > (2 ** (B - 1) - 1)  # saturation condition
        q[sIdx] = 0
        wT += q
        r -= q
    return wT * wMax


# ----------------------------------------------------------------------------------------------- codebooks

def test_codebook_b4():
    # M = 2^4 - 1 = 15 entries: 0 and +-2^0 ... +-2^-6 for n = 1 (exponents -n+1 = 0 down to -n-7+2 = -6)
    assert sc.codebook_size(4) == 15
    c1 = sc.codebook(1, 4)
    expected = sorted([0.0] + [s * 2.0**-e for s in (1, -1) for e in range(7)])
    assert c1.tolist() == expected
    # the n-th codebook is the first one scaled by 2^-(n-1)
    assert torch.equal(sc.codebook(2, 4), c1 / 2) and torch.equal(sc.codebook(3, 4), c1 / 4)
    assert sc.codebook_exponents(2, 4) == (-1, -7)


def test_codebook_b2_has_three_entries():
    assert sc.codebook(1, 2).tolist() == [-1.0, 0.0, 1.0]
    assert sc.codebook(2, 2).tolist() == [-0.5, 0.0, 0.5]
    assert sc.max_shift(2, 4) == 7 and sc.max_shift(3, 2) == 2


# -------------------------------------------------------------------------------------- Algorithm 1 by hand

def test_decomposition_by_hand_n2_b4():
    w = torch.tensor([0.8, -0.3, 0.05, 1.0])  # max |w| = 1, so r = w
    code = sc.shift_decompose(w, 2, 4)
    # 0.8: nearest power 1 (0.8 > 0.75 = 1.5 * 2^-1), residual -0.2 -> -0.25 (0.2 > 0.1875): 0.75
    # -0.3: -0.25 (0.3 < 0.375), residual -0.05 -> -0.0625 (0.05 > 0.046875): -0.3125
    # 0.05: 0.0625, residual -0.0125 -> -2^-6 (0.0125 > 0.01171875; 2^-6 is in C_2 = down to 2^-7): 0.046875
    # 1.0: 1, residual 0 -> zero term
    assert code.signs.tolist() == [[1, -1, 1, 1], [-1, -1, -1, 0]]
    assert code.shifts.tolist() == [[0, 2, 4, 0], [2, 4, 6, 0]]
    assert sc.shift_quantize(w, 2, 4).tolist() == [0.75, -0.3125, 0.046875, 1.0]
    assert code.scale.item() == 1.0


def test_saturation_to_zero_with_a_small_codebook():
    w = torch.tensor([0.8, -0.3, 0.05, 1.0])
    # B = 2: C_1 = {0, +-1}, C_2 = {0, +-0.5}; 0.8 -> 1 then -0.2 rounds to 2^-2, below C_2: zero
    assert sc.shift_quantize(w, 2, 2).tolist() == [1.0, 0.0, 0.0, 1.0]


def test_tie_goes_to_the_lower_power_as_in_the_script():
    w = torch.tensor([0.75, 1.0])  # 0.75 = 1.5 * 2^-1 exactly: the script's strict '>' keeps 2^-1
    assert sc.shift_quantize(w, 1, 4).tolist() == [0.5, 1.0]
    assert sc.shift_quantize(w, 2, 4).tolist() == [0.75, 1.0]  # the second term adds the exact 0.25


def test_scale_is_the_layer_max():
    w = torch.tensor([[0.4, -2.0], [1.0, 0.0]])
    code = sc.shift_decompose(w, 2, 4)
    assert code.scale.item() == 2.0
    assert sc.shift_quantize(w, 2, 4)[0, 1].item() == -2.0  # the largest weight is exact
    assert torch.equal(sc.shift_quantize(torch.zeros(3, 3), 2, 4), torch.zeros(3, 3))


# --------------------------------------------------------------------------------------- the official script

@pytest.mark.parametrize("n_terms", [1, 2, 3])
@pytest.mark.parametrize("bits", [2, 3, 4])
def test_matches_the_official_script(n_terms, bits):
    w = weight_samples((64, 100), "gaussian", scale=0.1, seed=n_terms * 10 + bits)
    ours = sc.shift_quantize(w, n_terms, bits).numpy()
    theirs = official_shiftcnn(w.numpy().copy(), n_terms, bits).astype(np.float32)
    # the script takes floor(log2) from a float log2, which can be off by one ulp right at a rounding border;
    # ours reads the exponent exactly (frexp). Everything else must agree exactly.
    mismatch = ours != theirs
    assert mismatch.mean() <= 1e-3
    assert np.array_equal(ours[~mismatch], theirs[~mismatch])


# ------------------------------------------------------------------------------------------------ invariants

@pytest.mark.parametrize("n_terms, bits", [(1, 3), (2, 4), (3, 4), (3, 2)])
def test_every_term_lies_in_its_codebook(n_terms, bits):
    w = weight_samples((40, 30), "laplace", seed=3)
    code = sc.shift_decompose(w, n_terms, bits)
    terms = code.terms()
    for n in range(n_terms):
        book = set(sc.codebook(n + 1, bits).tolist())
        assert set(terms[n].unique().tolist()) <= book
    assert bool((code.shifts >= 0).all()) and bool((code.shifts <= sc.max_shift(n_terms, bits)).all())


def test_error_falls_with_terms_and_bits():
    w = weight_samples(5000, "gaussian", seed=4)
    err = {(n, b): ((sc.shift_quantize(w, n, b) - w) ** 2).mean().item() for n in (1, 2, 3) for b in (2, 3, 4)}
    for b in (2, 3, 4):
        assert err[1, b] > err[2, b] > err[3, b]
    for n in (1, 2, 3):
        assert err[n, 2] > err[n, 3] >= err[n, 4]


# ------------------------------------------------------------------------------------------------ shift-add

def test_shift_add_linear_is_bit_exact():
    w = weight_samples((9, 50), "gaussian", scale=0.05, seed=5)
    code = sc.shift_decompose(w, 2, 4)
    x = torch.randint(0, 256, (6, 50), generator=torch.Generator().manual_seed(0))  # 8-bit activation codes
    acc = sc.shift_add_linear(x, code)
    assert acc.dtype == torch.int64
    # integer reference: x @ (2^E * w_hat / max|w|)^T with E = max_shift
    assert torch.equal(acc, x @ sc.integer_weights(code).T)
    # float reference with the quantized weights, in float64: equal to the last bit
    e = sc.max_shift(2, 4)
    y = code.scale.double() * acc.double() * 2.0**-e
    assert torch.equal(y, F.linear(x.double(), code.dequantize(torch.float64)))


def test_integer_weights_by_hand():
    code = sc.shift_decompose(torch.tensor([[0.8, -0.3, 0.05, 1.0]]), 2, 4)
    # E = 7: 0.75 * 128 = 96, -0.3125 * 128 = -40, 0.046875 * 128 = 6, 1 * 128 = 128
    assert sc.integer_weights(code).tolist() == [[96, -40, 6, 128]]
    assert sc.shift_add_linear(torch.tensor([[1, 2, 3, 4]]), code).tolist() == [[96 - 80 + 18 + 512]]


# ------------------------------------------------------------------------------------------------- quantizer

def test_quantizer():
    q = sc.ShiftQuantizer(n_terms=3, bits=4)
    assert q.precision == 12 and "n_terms=3" in repr(q)
    w = weight_samples((4, 6), seed=6).requires_grad_()
    out = q(w)
    assert torch.equal(out, sc.shift_quantize(w.detach(), 3, 4))
    g = torch.randn(4, 6)
    out.backward(g)
    assert torch.equal(w.grad, g)
    conv = QuantConv2d(2, 3, 3, weight_quantizer=sc.ShiftQuantizer(2, 4))
    x = torch.randn(1, 2, 5, 5)
    assert torch.allclose(conv(x), F.conv2d(x, sc.shift_quantize(conv.weight, 2, 4), conv.bias), atol=1e-6)
    lin = QuantLinear(6, 2, weight_quantizer=sc.ShiftQuantizer())
    assert lin(torch.randn(3, 6)).shape == (3, 2)


# ------------------------------------------------------------------------------------------------- bad input

@pytest.mark.parametrize("kwargs, error, name", [
    (dict(n_terms=0), ValueError, "n_terms"),
    (dict(bits=1), ValueError, "bits"),
    (dict(bits=4.0), TypeError, "bits"),
])
def test_bad_arguments(kwargs, error, name):
    with pytest.raises(error, match=name):
        sc.shift_quantize(torch.randn(3), **kwargs)
    with pytest.raises(error, match=name):
        sc.ShiftQuantizer(**kwargs)


def test_bad_tensors():
    with pytest.raises(TypeError, match="w"):
        sc.shift_decompose(torch.ones(3, dtype=torch.int32))
    with pytest.raises(ValueError, match="w"):
        sc.shift_decompose(torch.tensor([1.0, float("nan")]))
    code = sc.shift_decompose(torch.randn(2, 4))
    with pytest.raises(TypeError, match="x_int"):
        sc.shift_add_linear(torch.randn(1, 4), code)
    with pytest.raises(ValueError, match="x_int"):
        sc.shift_add_linear(torch.ones(1, 5, dtype=torch.int64), code)
    with pytest.raises(TypeError, match="code"):
        sc.shift_add_linear(torch.ones(1, 4, dtype=torch.int64), "code")
