"""The circulant filters of CBCN (our reconstruction, R1-R4 in the module): hand-computed shifts, exact rotations,
circulant back-propagation against autograd, the CBConv layer against a plain convolution, bad inputs."""

from __future__ import annotations

import pytest
import torch

from qteach import binary
from qteach.papers import circulant_bcn as cb
from qteach.papers import xnor_net


def test_transfer_matrix_by_hand():
    c = torch.arange(1.0, 10.0)  # [[1,2,3],[4,5,6],[7,8,9]]
    # one clockwise step of the ring 1,2,3,6,9,8,7,4: the top-left now holds 4, the centre stays
    assert (cb.circulant_transfer_matrix(1) @ c).tolist() == [4, 1, 2, 7, 5, 3, 8, 9, 6]
    m = cb.circulant_transfer_matrix(1)
    assert torch.equal(torch.linalg.matrix_power(m, 8), torch.eye(9))
    assert torch.equal(m @ m.T, torch.eye(9))  # a permutation: its transpose is its inverse
    assert torch.equal(cb.circulant_transfer_matrix(3), torch.linalg.matrix_power(m, 3))
    assert torch.equal(cb.circulant_transfer_matrix(-1), m.T)


def test_two_steps_are_a_clockwise_quarter_turn():
    w = torch.randn(5, 4, 3, 3)
    cifs = cb.circulant_filters(w, 4)
    for k in range(4):
        assert torch.equal(cifs[k], torch.rot90(w, -k, dims=(-2, -1)))


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_cifs_are_permutations_of_the_filter(n):
    w = torch.randn(3, 2, 3, 3)
    cifs = cb.circulant_filters(w, n)
    assert cifs.shape == (n, 3, 2, 3, 3)
    assert torch.equal(cifs[0], w)
    for k in range(n):
        assert torch.equal(cifs[k].flatten(-2).sort(-1).values, w.flatten(-2).sort(-1).values)
        assert torch.equal(cifs[k][..., 1, 1], w[..., 1, 1])
        # binarization commutes with the permutation: sign of a CiF is the CiF of the sign
        assert torch.equal(binary.sign(cifs[k]), cb.circulant_filters(binary.sign(w), n)[k])


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_circulant_backprop_equals_autograd(n):
    w = torch.randn(4, 3, 3, 3, requires_grad=True)
    g = torch.randn(n, 4, 3, 3, 3)
    (cb.circulant_filters(w, n) * g).sum().backward()
    assert torch.allclose(cb.circulant_backprop(g), w.grad, atol=1e-6)


def test_cbconv_equals_plain_convolution_with_stacked_cifs():
    torch.manual_seed(0)
    layer = cb.CirculantBinaryConv2d(3, 5, orientations=4, fuse="concat")
    x = torch.randn(2, 3, 7, 6)
    cifs = cb.circulant_filters(layer.weight.detach(), 4).flatten(0, 1)
    alpha = cifs.abs().mean(dim=(1, 2, 3), keepdim=True)
    reference = torch.nn.functional.conv2d(binary.sign(x), alpha * binary.sign(cifs), padding=1)
    out = layer(x)
    assert out.shape == (2, 20, 7, 6)
    assert torch.allclose(out, reference, atol=1e-5)
    # alpha is the same for every CiF of one filter (a permutation keeps mean |w|)
    assert torch.allclose(alpha.view(4, 5), alpha.view(4, 5)[:1].expand(4, 5))
    layer.fuse = "max"
    assert torch.allclose(layer(x), reference.view(2, 4, 5, 7, 6).amax(1), atol=1e-5)


def test_max_fusion_is_equivariant_to_quarter_turns():
    """With every orientation max-pooled, turning the (binary) input turns the output: exact in integers."""
    torch.manual_seed(1)
    layer = cb.CirculantBinaryConv2d(2, 3, orientations=4, fuse="max")
    x = binary.sign(torch.randn(1, 2, 8, 8))
    with torch.no_grad():
        turned = layer(torch.rot90(x, 1, dims=(-2, -1)))
        assert torch.allclose(turned, torch.rot90(layer(x), 1, dims=(-2, -1)), atol=1e-5)


def test_gradient_reaches_the_learned_filter_through_all_cifs():
    layer = cb.CirculantBinaryConv2d(2, 3, orientations=8)
    layer(torch.randn(4, 2, 5, 5)).square().sum().backward()
    assert layer.weight.grad is not None and layer.weight.grad.abs().sum() > 0


def test_binary_cnn_shapes_and_costs():
    plain = cb.binary_cnn("plain", channels=16, seed=0)
    circ = cb.binary_cnn("circulant", channels=4, orientations=4, seed=0)
    x = torch.randn(3, 1, 8, 8)
    assert plain(x).shape == circ(x).shape == (3, 10)
    # equal binary work, a quarter of the learned binary weights
    macs_p, params_p = cb.xnor_ops(plain)
    macs_c, params_c = cb.xnor_ops(circ)
    assert macs_p == 16 * 8 * 9 * 64 + 16 * 16 * 9 * 16  # 8 real maps in, then 16 maps in
    assert macs_c == macs_p
    assert params_c * 4 == params_p == 16 * 8 * 9 + 16 * 16 * 9  # the second block sees 16 maps in both
    assert isinstance(plain[4], xnor_net.XNORConv2d)
    assert torch.equal(cb.binary_cnn("circulant", seed=3)[4].weight, cb.binary_cnn("circulant", seed=3)[4].weight)


def test_bad_inputs():
    with pytest.raises(ValueError, match="orientations"):
        cb.circulant_filters(torch.randn(2, 3, 3), 3)
    with pytest.raises(ValueError, match="w"):
        cb.circulant_filters(torch.randn(2, 5, 5), 4)
    with pytest.raises(TypeError, match="w"):
        cb.circulant_filters([[1.0]], 4)
    with pytest.raises(TypeError, match="shift"):
        cb.circulant_transfer_matrix(1.5)
    with pytest.raises(ValueError, match="grad_cifs"):
        cb.circulant_backprop(torch.randn(3, 3))
    with pytest.raises(ValueError, match="orientations"):
        cb.circulant_backprop(torch.randn(3, 2, 3, 3))
    with pytest.raises(ValueError, match="fuse"):
        cb.CirculantBinaryConv2d(2, 3, fuse="sum")
    with pytest.raises(ValueError, match="x"):
        cb.CirculantBinaryConv2d(2, 3)(torch.randn(1, 3, 5, 5))
    with pytest.raises(ValueError, match="filters"):
        cb.binary_cnn("dense")
    with pytest.raises(TypeError, match="model"):
        cb.xnor_ops("net")
