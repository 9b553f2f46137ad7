"""Dual Path BNN (no source found): our two-path binary layer, its thermometer form, its cost."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from qteach import binary
from qteach import nn as qnn
from qteach.papers import dual_path_bnn as dp


def test_shifted_sign_values_and_gradient():
    q = dp.ShiftedSign(0.5)
    h = torch.tensor([-1.0, 0.4, 0.5, 0.6, 2.0], requires_grad=True)
    y = q(h)
    assert y.tolist() == [-1.0, -1.0, 1.0, 1.0, 1.0]  # sign(0) = +1 at the threshold
    y.sum().backward()
    assert h.grad.tolist() == [0.0, 1.0, 1.0, 1.0, 0.0]  # clipped STE on h - t: |h - 0.5| <= 1
    assert q.precision == 1


def test_hand_computed_dual_path():
    # h = [0.3, -0.8], delta = 0.5: sign(h + d) = [+1, -1], sign(h - d) = [-1, -1]
    h = torch.tensor([[0.3, -0.8]])
    w1 = torch.tensor([[1.0, 1.0], [-1.0, 1.0]])
    w2 = torch.tensor([[1.0, -1.0], [0.5, 0.5]])
    # path 1: [1*1 + (-1)*1, (-1)*1 + (-1)*1] = [0, -2]; path 2: [-1 + 1, -1 - 1] = [0, -2]
    assert dp.dual_path_reference(h, w1, w2, 0.5).tolist() == [[0.0, -4.0]]
    assert dp.dual_path_xnor(h, w1, w2, 0.5).tolist() == [[0, -4]]


@pytest.mark.parametrize("n,k,m", [(1, 1, 1), (5, 7, 3), (9, 64, 4), (3, 65, 130), (2, 200, 1)])
@pytest.mark.parametrize("delta", [0.0, 0.3, 1.0])
def test_xnor_thermometer_form_is_bit_exact(n, k, m, delta):
    g = torch.Generator().manual_seed(n * k + m)
    h = torch.randn(n, k, generator=g)
    h[0, 0] = delta  # awkward values: exactly on a threshold (sign(0) = +1)
    if k > 1:
        h[0, 1] = -delta
    w1, w2 = torch.randn(m, k, generator=g), torch.randn(m, k, generator=g)
    ref = dp.dual_path_reference(h, w1, w2, delta)
    fast = dp.dual_path_xnor(h, w1, w2, delta)
    assert fast.dtype == torch.int32 and torch.equal(fast.double(), ref)


def test_module_equals_the_xnor_form():
    torch.manual_seed(0)
    layer = dp.DualPathLinear(37, 11, delta=0.4)
    h = torch.randn(6, 37)
    out = layer(h)
    expected = dp.dual_path_xnor(h, layer.path1.weight, layer.path2.weight, 0.4)
    assert torch.equal(out, expected.float())
    assert layer.path1.input_quantizer.threshold == -0.4 and layer.path2.input_quantizer.threshold == 0.4


def test_delta_zero_is_a_ternary_weight_layer():
    torch.manual_seed(1)
    layer = dp.DualPathLinear(20, 5, delta=0.0)
    h = torch.randn(4, 20)
    w = binary.sign(layer.path1.weight) + binary.sign(layer.path2.weight)
    assert set(w.unique().tolist()) <= {-2.0, 0.0, 2.0}
    assert torch.equal(layer(h), binary.sign(h) @ w.T)


def test_thermometer_levels():
    # sign(h + d) + sign(h - d) is -2 below -d, 0 in [-d, d), +2 from d on
    h = torch.tensor([-2.0, -0.5, 0.0, 0.49, 0.5, 3.0])
    code = binary.sign(h + 0.5) + binary.sign(h - 0.5)
    assert code.tolist() == [-2.0, 0.0, 0.0, 0.0, 2.0, 2.0]


def test_gradients_reach_both_paths():
    torch.manual_seed(2)
    layer = dp.DualPathLinear(8, 3, delta=0.5)
    layer(torch.randn(16, 8)).pow(2).sum().backward()
    assert layer.path1.weight.grad.abs().sum() > 0 and layer.path2.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("width,paths,expected", [(1, 1, 1), (1, 2, 1), (16, 2, 23), (48, 2, 68), (64, 2, 91),
                                                  (10, 4, 20), (3, 3, 5)])
def test_equal_cost_width(width, paths, expected):
    w = dp.equal_cost_width(width, paths)
    assert w == expected
    target = paths * width * width
    assert abs(w * w - target) <= min(abs((w - 1) ** 2 - target), abs((w + 1) ** 2 - target))


def test_mlp_layout_and_binary_cost():
    single = dp.dual_path_mlp(width=16, paths=1)
    dual = dp.dual_path_mlp(width=16, paths=2)
    assert dp.binary_macs(single) == 2 * 16 * 16
    assert dp.binary_macs(dual) == 2 * dp.binary_macs(single)
    assert dp.binary_macs(dp.dual_path_mlp(width=23, paths=1)) == 2 * 23 * 23
    assert dual(torch.randn(5, 64)).shape == (5, 10)
    assert sum(isinstance(m, dp.DualPathLinear) for m in dual) == 2
    assert sum(type(m) is nn.Linear for m in dual) == 2  # first and last layers real
    binaries = [m for m in single if isinstance(m, qnn.QuantLinear)]
    assert len(binaries) == 2 and all(m.input_quantizer.threshold == 0.0 for m in binaries)


def test_mlp_seed_is_deterministic_and_leaves_global_rng():
    state = torch.random.get_rng_state()
    a, b = dp.dual_path_mlp(seed=3), dp.dual_path_mlp(seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_bad_inputs():
    h, w = torch.randn(2, 3), torch.randn(4, 3)
    with pytest.raises(ValueError, match="delta"):
        dp.dual_path_xnor(h, w, w, -0.1)
    with pytest.raises(ValueError, match="h must be"):
        dp.dual_path_xnor(h, w, torch.randn(4, 2), 0.5)
    with pytest.raises(ValueError, match="h must be"):
        dp.dual_path_reference(torch.randn(2, 5), w, w, 0.5)
    with pytest.raises(TypeError, match="h"):
        dp.dual_path_reference(torch.ones(2, 3, dtype=torch.int64), w, w, 0.5)
    with pytest.raises(TypeError, match="threshold"):
        dp.ShiftedSign("0.5")
    with pytest.raises(TypeError, match="threshold"):
        dp.ShiftedSign(math.inf)
    with pytest.raises(ValueError, match="delta"):
        dp.DualPathLinear(3, 3, delta=-1)
    with pytest.raises(ValueError, match="in_features"):
        dp.DualPathLinear(0, 3)
    with pytest.raises(ValueError, match="paths"):
        dp.dual_path_mlp(paths=3)
    with pytest.raises(ValueError, match="width"):
        dp.equal_cost_width(0)
    with pytest.raises(TypeError, match="model"):
        dp.binary_macs("net")
