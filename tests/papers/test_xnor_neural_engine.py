"""XNOR Neural Engine (Conti et al., TCAD 2018): the datapath model is bit-exact, the cost model follows the
abstract's numbers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import bitops, deploy, hw
from qteach.papers import xnor_neural_engine as xne


def _threshold(m, generator):
    gamma = torch.randn(m, generator=generator, dtype=torch.float64)
    beta = torch.randn(m, generator=generator, dtype=torch.float64)
    mean = 3 * torch.randn(m, generator=generator, dtype=torch.float64)
    var = torch.rand(m, generator=generator, dtype=torch.float64) + 0.5
    return (gamma, beta, mean, var), deploy.bn_sign_threshold(gamma, beta, mean, var)


def _bn_sign(s, params, eps=1e-5):
    gamma, beta, mean, var = (p.reshape((1, -1) + (1,) * (s.dim() - 2)) for p in params)
    y = gamma * (s.double() - mean) / torch.sqrt(var + eps) + beta
    return torch.where(y >= 0, 1.0, -1.0).float()


def test_accumulator_by_hand():
    x = torch.tensor([[1.0, -1.0, 1.0, 1.0, -1.0]])
    w = torch.tensor([[1.0, 1.0, -1.0, 1.0, -1.0]])
    # agreements at positions 0, 3, 4 -> popcount 3; dot = 2*3 - 5 = 1 = 1 - 1 - 1 + 1 + 1
    for tp in (1, 2, 3, 5, 8):
        assert xne.xne_popcount_accumulate(x, w, tp).tolist() == [[3]]


def test_zero_is_plus_one():
    x, w = torch.zeros(1, 4), torch.ones(1, 4)
    assert xne.xne_popcount_accumulate(x, w, 2).item() == 4


@pytest.mark.parametrize("n,m,k,tp", [(1, 1, 1, 128), (3, 5, 7, 2), (4, 6, 64, 64), (5, 3, 300, 128),
                                      (2, 9, 129, 128), (3, 4, 1000, 32)])
def test_dense_bit_exact_with_xnor_matmul(n, m, k, tp):
    g = torch.Generator().manual_seed(k + tp)
    x, w = torch.randn(n, k, generator=g), torch.randn(m, k, generator=g)
    acc = xne.xne_popcount_accumulate(x, w, tp)
    assert torch.equal(2 * acc - k, bitops.xnor_matmul(x, w).long())
    assert torch.equal(2 * acc - k, bitops.xnor_matmul_reference(x, w).long())
    signs = torch.where(x >= 0, 1.0, -1.0).double() @ torch.where(w >= 0, 1.0, -1.0).double().T
    assert torch.equal(2 * acc - k, signs.long())


@pytest.mark.parametrize("tp", [1, 16, 128, 1024])
def test_dense_with_threshold_equals_float_bn_sign(tp):
    g = torch.Generator().manual_seed(tp)
    x, w = torch.randn(20, 150, generator=g), torch.randn(12, 150, generator=g)
    params, thr = _threshold(12, g)
    s = bitops.xnor_matmul(x, w)
    assert torch.equal(xne.xne_dense(x, w, thr, tp), _bn_sign(s, params))


@pytest.mark.parametrize("shape,kernel,stride", [((2, 3, 6, 6), 3, 1), ((1, 16, 9, 7), 3, 2), ((3, 5, 4, 4), 1, 1),
                                                 ((1, 70, 5, 5), 5, 1)])
def test_conv_bit_exact(shape, kernel, stride):
    g = torch.Generator().manual_seed(sum(shape))
    x = torch.randn(*shape, generator=g)
    w = torch.randn(6, shape[1], kernel, kernel, generator=g)
    params, thr = _threshold(6, g)
    s = bitops.binary_conv2d(x, w, stride=stride)
    assert torch.equal(s, F.conv2d(torch.where(x >= 0, 1.0, -1.0), torch.where(w >= 0, 1.0, -1.0),
                                   stride=stride).int())
    assert torch.equal(xne.xne_conv2d(x, w, thr, 32, stride), _bn_sign(s, params))


def test_bad_inputs():
    x, w = torch.randn(2, 8), torch.randn(3, 8)
    with pytest.raises(ValueError, match="x and w"):
        xne.xne_popcount_accumulate(x, torch.randn(3, 7))
    with pytest.raises(ValueError, match="tp"):
        xne.xne_popcount_accumulate(x, w, 0)
    with pytest.raises(TypeError, match="x"):
        xne.xne_popcount_accumulate(x.int(), w)
    with pytest.raises(ValueError, match="x"):
        xne.xne_popcount_accumulate(torch.full((2, 8), float("nan")), w)
    with pytest.raises(TypeError, match="threshold"):
        xne.xne_dense(x, w, None)
    with pytest.raises(ValueError, match="kernel"):
        xne.xne_conv2d(torch.randn(1, 2, 2, 2), torch.randn(1, 2, 3, 3), deploy.Threshold(
            flip=torch.ones(1, dtype=torch.int8), tau=torch.zeros(1, dtype=torch.int64)))
    with pytest.raises(ValueError, match="fj_per_op"):
        xne.tops_per_watt(0)
    with pytest.raises(ValueError, match="macs"):
        xne.layer_energy_fj(-1)
    with pytest.raises(ValueError, match="reuse"):
        xne.energy_split(0)
    with pytest.raises(ValueError, match="level"):
        xne.memory_fj_per_bit("cache")


def test_cost_model_by_hand():
    assert xne.tops_per_watt(21.6) == pytest.approx(46.296, rel=1e-4)      # 1000 / 21.6
    assert xne.tops_per_watt(1000.0) == pytest.approx(1.0)                 # 1 pJ/op = 1 TOPS/W
    assert xne.layer_energy_fj(1000) == pytest.approx(2 * 1000 * 21.6)
    assert xne.memory_fj_per_bit("sram_32kb") == pytest.approx(20.0 * 1000 / 64)
    compute, memory = xne.energy_split(4, "sram_8kb")
    assert compute == pytest.approx(43.2) and memory == pytest.approx(2 * 10_000 / 64 / 4)
    # the abstract's ResNet-34 numbers: power <= 2.2 mJ x 8.9 fps = 19.58 mW
    assert xne.RESNET34_MJ_PER_FRAME * xne.RESNET34_FPS == pytest.approx(19.58)


def test_resnet34_macs():
    layers = xne.resnet34_conv_layers()
    assert len(layers) == 1 + 2 * 16 + 3 + 1          # conv1, 16 basic blocks, 3 shortcuts, fc
    macs = xne.resnet34_macs()
    assert macs["first"] == 3 * 64 * 49 * 112 * 112
    assert macs["last"] == 512 * 1000
    assert 3.6e9 < macs["total"] < 3.7e9               # the usual "3.6 GFLOPs" (MACs) of ResNet-34
    assert macs["total"] == macs["first"] + macs["binary"] + macs["last"]
    assert hw.conv2d_macs(64, 64, 3, 56, 56) == layers[1][1] * layers[1][2] * 9 * layers[1][4] ** 2
