"""Tests of qteach.papers.similarity_reuse_fpga: hand-computed examples, bit-exactness against the plain binary
convolution on random and awkward shapes, the cost models, and bad input.

No official code exists (catalog: code_url null) and only the paper's abstract could be read, so the reuse
equations (R1)-(R4) are our reconstruction; the tests check them against the direct computation they must equal.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import bitops
from qteach.binary import sign
from qteach.papers import similarity_reuse_fpga as sr


def randn(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# A 1x1x3x4 image and a 3x3 kernel, worked by hand in the chapter: windows 0 and 1 differ at taps 1, 3, 5, 7.
IMAGE = torch.tensor([[[[1.0, 1, -1, -1], [1, -1, -1, 1], [-1, -1, 1, 1]]]])
KERNEL = torch.tensor([[[[1.0, -1, 1], [-1, 1, 1], [1, 1, -1]]]])


def test_hand_example_windows_and_outputs():
    u = sr.binary_windows(IMAGE, 3)
    assert u.shape == (1, 9, 1, 2)
    assert u[0, :, 0, 0].tolist() == [1, 1, -1, 1, -1, -1, -1, -1, 1]
    assert u[0, :, 0, 1].tolist() == [1, -1, -1, -1, -1, 1, -1, 1, 1]
    y, ops = sr.input_reuse_conv2d(IMAGE, KERNEL)
    assert y.flatten().tolist() == [-7, 1]          # by hand: 1 - 8 = -7 and 5 - 4 = 1
    assert ops.flatten().tolist() == [9, 4]         # first window direct, then |D| = 4


def test_hand_example_delta_popcount():
    u0, u1 = sr.binary_windows(IMAGE, 3)[0, :, 0].T.float()
    w = KERNEL.flatten(1)
    y1, changed = sr.delta_popcount(torch.tensor([-7]), u0, u1, w)
    # D = {1, 3, 5, 7}, w agrees with u1 on all four: y1 = -7 + 2 * (4 - 2 * 0) = 1
    assert y1.tolist() == [1] and int(changed) == 4


def test_similarity_hand_values():
    a = torch.tensor([1.0, 1, -1, -1])
    assert sr.similarity(a, a).item() == 1.0
    assert sr.similarity(a, -a).item() == 0.0
    assert sr.similarity(a, torch.tensor([1.0, -1, -1, 1])).item() == 0.5
    # zero-padded taps compare as values: 0 equals 0, differs from +-1
    assert sr.similarity(torch.tensor([0, 1, 1]), torch.tensor([0, 1, -1])).item() == pytest.approx(2 / 3)
    batch = sr.similarity(torch.ones(3, 2, 8), -torch.ones(3, 2, 8))
    assert batch.shape == (3, 2) and batch.dtype == torch.float64 and bool((batch == 0).all())


SHAPES = [  # (N, C, H, W, O, kh, kw, stride, padding): square, rectangular, 1x1, kernel = image, odd channel counts
    (2, 3, 7, 9, 4, 3, 3, 1, 1),
    (1, 1, 5, 5, 2, 1, 1, 1, 0),
    (3, 5, 6, 11, 3, 2, 5, 2, 2),
    (1, 2, 4, 4, 1, 4, 4, 1, 0),
    (2, 1, 8, 8, 5, 3, 3, (1, 2), (0, 1)),
    (1, 70, 5, 6, 6, 3, 3, 1, 1),               # more than 64 channels: two packed words in binary_conv2d
    (2, 4, 3, 12, 7, 3, 1, (2, 1), (1, 0)),     # a 3x1 kernel, one output row
]


@pytest.mark.parametrize("shape", SHAPES)
def test_input_reuse_is_bit_exact(shape):
    n, c, h, wd, o, kh, kw, stride, padding = shape
    x, w = randn(n, c, h, wd, seed=1), randn(o, c, kh, kw, seed=2)
    reference = F.conv2d(sign(x), sign(w), stride=stride, padding=padding).to(torch.int64)
    y, ops = sr.input_reuse_conv2d(x, w, stride, padding)
    assert y.dtype == torch.int64 and torch.equal(y, reference)
    assert torch.equal(bitops.binary_conv2d(x, w, stride, padding).to(torch.int64), y)
    k = c * kh * kw
    assert ops.shape == (n, *reference.shape[2:]) and bool((ops[..., 0] == k).all())
    assert bool((ops >= 0).all() & (ops <= k).all())


@pytest.mark.parametrize("shape", SHAPES)
def test_weight_reuse_is_bit_exact_for_every_reference_choice(shape):
    n, c, h, wd, o, kh, kw, stride, padding = shape
    x, w = randn(n, c, h, wd, seed=3), randn(o, c, kh, kw, seed=4)
    reference = F.conv2d(sign(x), sign(w), stride=stride, padding=padding).to(torch.int64)
    k = c * kh * kw
    for ref in (torch.arange(o) - 1, sr.nearest_reference(w), torch.full((o,), -1), torch.zeros(o, dtype=torch.int64)
                .index_fill_(0, torch.tensor([0]), -1)):
        y, ops = sr.weight_reuse_conv2d(x, w, ref, stride, padding)
        assert torch.equal(y, reference)
        differ = (sign(w).flatten(1) != sign(w).flatten(1)[ref.clamp(min=0)]).sum(1)
        assert torch.equal(ops, torch.where(ref < 0, k, differ))


def test_input_reuse_ops_count_the_changed_taps():
    x, w = randn(2, 3, 6, 7, seed=5), randn(4, 3, 3, 3, seed=6)
    u = sr.binary_windows(x, 3, 1, 1)
    _, ops = sr.input_reuse_conv2d(x, w, 1, 1)
    sim = sr.similarity(u[..., 1:].movedim(1, -1), u[..., :-1].movedim(1, -1))
    assert torch.allclose(1 - ops[..., 1:].double() / 27, sim)


def test_constant_input_needs_no_work_after_the_first_window():
    x = torch.ones(1, 2, 5, 9)
    _, ops = sr.input_reuse_conv2d(x, randn(3, 2, 3, 3), 1, 0)
    assert ops[..., 1:].sum() == 0 and bool((ops[..., 0] == 18).all())


def test_delta_popcount_matches_direct_on_batches():
    u_prev, u_new = sign(randn(5, 4, 37, seed=7)), sign(randn(5, 4, 37, seed=8))
    w = sign(randn(6, 37, seed=9))
    y_new, changed = sr.delta_popcount((u_prev @ w.T).long(), u_prev, u_new, w)
    assert torch.equal(y_new, (u_new @ w.T).long())
    assert torch.equal(changed, (u_prev != u_new).sum(-1))


def test_delta_popcount_agrees_with_input_reuse_inside_the_image():
    x, w = randn(1, 4, 5, 8, seed=10), randn(3, 4, 3, 3, seed=11)
    u = sr.binary_windows(x, 3).float()                   # no padding: every tap is +-1
    y, _ = sr.input_reuse_conv2d(x, w)
    wb = sign(w).flatten(1)
    for j in range(1, u.shape[-1]):
        step, _ = sr.delta_popcount(y[0, :, :, j - 1].T, u[0, :, :, j - 1].T, u[0, :, :, j].T, wb)
        assert torch.equal(step, y[0, :, :, j].T)


def test_nearest_reference_picks_the_most_similar_earlier_kernel():
    base = torch.tensor([1.0, 1, 1, 1, -1, -1, -1, -1])
    w = torch.stack([base, -base, base * torch.tensor([1.0, 1, 1, 1, 1, 1, 1, -1]), base.flip(0)])
    ref = sr.nearest_reference(w[:, None, None, :])
    # kernel 1 = -kernel 0 (similarity 0, the only candidate); kernel 2 is 7/8 like kernel 0; kernel 3 is -kernel 0
    # = kernel 1 exactly
    assert ref.tolist() == [-1, 0, 0, 1]


def test_serial_speedup_and_power_models():
    assert sr.serial_speedup(0.8, 0.4, 1.0) == pytest.approx(5.0)
    assert sr.serial_speedup(0.8, 0.4, 0.0) == pytest.approx(1 / 0.6)
    assert sr.serial_speedup(0.0, 0.0, 0.3) == pytest.approx(1.0)
    assert sr.serial_speedup(0.8, 0.4, 0.5) == pytest.approx(2.5)
    assert sr.total_power_reduction(0.5, 0.54) == pytest.approx(0.27)
    p = sr.PAPER_ABSTRACT
    s = p["total_power_reduction"] / p["onchip_power_reduction"]
    assert sr.total_power_reduction(s, p["onchip_power_reduction"]) == pytest.approx(0.17)


def test_bad_input():
    x, w = randn(1, 2, 5, 5), randn(3, 2, 3, 3)
    with pytest.raises(TypeError, match="x"):
        sr.input_reuse_conv2d(x.long(), w)
    with pytest.raises(ValueError, match="x"):
        sr.input_reuse_conv2d(x[0], w)
    with pytest.raises(ValueError, match="channels"):
        sr.input_reuse_conv2d(x, randn(3, 4, 3, 3))
    with pytest.raises(ValueError, match="stride"):
        sr.input_reuse_conv2d(x, w, stride=0)
    with pytest.raises(ValueError, match="larger"):
        sr.weight_reuse_conv2d(x, randn(3, 2, 7, 7), torch.tensor([-1, 0, 1]))
    with pytest.raises(ValueError, match="reference"):
        sr.weight_reuse_conv2d(x, w, torch.tensor([-1, 1, 0]))        # kernel 1 cannot reuse itself
    with pytest.raises(ValueError, match="reference"):
        sr.weight_reuse_conv2d(x, w, torch.tensor([-1, 0]))
    with pytest.raises(TypeError, match="reference"):
        sr.weight_reuse_conv2d(x, w, torch.tensor([-1.0, 0, 1]))
    with pytest.raises(ValueError, match="a must hold"):
        sr.similarity(torch.tensor([0.5, 1.0]), torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match="same shape"):
        sr.similarity(torch.ones(3), torch.ones(4))
    with pytest.raises(TypeError, match="b"):
        sr.similarity(torch.ones(3), [1, 1, 1])
    with pytest.raises(ValueError, match="u_new"):
        sr.delta_popcount(torch.zeros(2, dtype=torch.long), torch.ones(4), torch.ones(5), torch.ones(2, 4))
    with pytest.raises(ValueError, match="y_prev"):
        sr.delta_popcount(torch.zeros(3, dtype=torch.long), torch.ones(4), torch.ones(4), torch.ones(2, 4))
    with pytest.raises(TypeError, match="y_prev"):
        sr.delta_popcount(torch.zeros(2), torch.ones(4), torch.ones(4), torch.ones(2, 4))
    with pytest.raises(ValueError, match="w must hold"):
        sr.delta_popcount(torch.zeros(2, dtype=torch.long), torch.ones(4), torch.ones(4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="w must have"):
        sr.nearest_reference(torch.ones(4))
    with pytest.raises(ValueError, match="compute_share"):
        sr.serial_speedup(0.8, 0.4, 1.5)
    with pytest.raises(TypeError, match="buffer_skipped"):
        sr.serial_speedup(0.8, "0.4", 0.5)
    with pytest.raises(ValueError, match="unbounded"):
        sr.serial_speedup(1.0, 1.0, 0.5)
    with pytest.raises(ValueError, match="onchip_share"):
        sr.total_power_reduction(-0.1, 0.5)
