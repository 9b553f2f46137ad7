"""Binary-weight CNN datapath (Wang, Lin, Wang, TVLSI 2018; our reconstruction from the abstract): the exact
datapath is bit-exact with the integer matmul/conv, the approximate parts have the errors their equations say."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach.papers import binary_weight_cnn_architecture as bwa


def _signs(w):
    return torch.where(w >= 0, 1, -1).to(torch.int64)


def _loa_bit_by_bit(a: int, b: int, k: int, width: int) -> int:
    """Our line-by-line transcription of the lower-part-OR adder (Mahdiani et al. 2010; no official code): OR gates
    on bits 0..k-1, an AND of bits k-1 as carry-in, a ripple of full adders on bits k..W-1."""
    out, carry = 0, ((a >> (k - 1)) & (b >> (k - 1)) & 1) if k else 0
    for i in range(width):
        ai, bi = (a >> i) & 1, (b >> i) & 1
        if i < k:
            out |= (ai | bi) << i
        else:
            out |= (ai ^ bi ^ carry) << i
            carry = (ai & bi) | (ai & carry) | (bi & carry)
    return out


def test_loa_by_hand():
    # a = 01011, b = 00110, k = 2: low bits 11 | 10 = 11; carry-in a1 & b1 = 1; upper 010 + 001 + 1 = 100
    a, b = torch.tensor([0b01011]), torch.tensor([0b00110])
    assert bwa.loa_add(a, b, 2, 5).item() == 0b10011  # 19
    assert (a + b).item() - 19 == -2          # e = a0 b0 - 2 a1 b1 = 0 - 2
    assert bwa.loa_add(a, b, 0, 5).item() == 17


@pytest.mark.parametrize("k", [0, 1, 2, 3, 5, 6])
def test_loa_exhaustive_against_transcription(k):
    width = 6
    v = torch.arange(64)
    got = bwa.loa_add(v[:, None].expand(64, 64), v[None, :].expand(64, 64), k, width)
    want = torch.tensor([[_loa_bit_by_bit(a, b, k, width) for b in range(64)] for a in range(64)])
    assert torch.equal(got, want)


@pytest.mark.parametrize("k", range(9))
def test_loa_error_table(k):
    e = bwa.loa_errors(k)
    assert e.shape == (2**k, 2**k)
    if k == 0:
        assert int(e.abs().max()) == 0
        return
    assert int(e.sum()) * 4 == -(4**k)                    # mean error exactly -1/4
    assert int(e.min()) == -(2 ** (k - 1)) and int(e.max()) == 2 ** (k - 1) - 1
    a, b = torch.meshgrid(torch.arange(2**k), torch.arange(2**k), indexing="ij")
    formula = ((a & b) & ((1 << (k - 1)) - 1)) - (1 << (k - 1)) * ((a >> (k - 1)) & (b >> (k - 1)) & 1)
    assert torch.equal(e, formula)


def test_products_by_hand():
    x, w = torch.tensor([[5, -3]]), torch.tensor([[-1.0, -0.5]])
    assert bwa.bw_products(x, w, 4, "exact").tolist() == [[[11, 3]]]      # -5 = 1011, 3 = 0011
    assert bwa.bw_products(x, w, 4, "ones").tolist() == [[[10, 2]]]       # ~5 = 1010 (-6), ~(-3) = 0010
    assert bwa.bw_products(x, torch.tensor([[0.0, 2.0]]), 4).tolist() == [[[5, 13]]]   # sign(0) = +1


def test_wallace_preserves_the_sum():
    g = torch.Generator().manual_seed(1)
    for k in (1, 2, 3, 4, 7, 64, 100):
        words = torch.randint(0, 2**12, (5, k), generator=g)
        a, b = bwa.wallace_reduce(words, 12)
        assert torch.equal((a + b) % 2**12, words.sum(-1) % 2**12)


@pytest.mark.parametrize("n,m,k", [(1, 1, 1), (3, 4, 2), (5, 6, 3), (2, 3, 5), (7, 5, 64), (4, 4, 577)])
def test_matmul_bit_exact(n, m, k):
    g = torch.Generator().manual_seed(n * 100 + k)
    x, w = torch.randint(-300, 256, (n, k), generator=g), torch.randn(m, k, generator=g)
    ref = x @ _signs(w).T
    for tree in ("compressor", "adder"):
        assert torch.equal(bwa.bw_matmul(x, w, tree=tree), ref)
        assert torch.equal(bwa.bw_matmul(x, w, multiplier="ones", scheme="channel", tree=tree), ref)
        assert torch.equal(bwa.bw_matmul(x.double(), w, tree=tree, width=20), ref)
    negatives = (w < 0).sum(1)
    assert torch.equal(bwa.bw_matmul(x, w, multiplier="ones") - ref, -negatives.expand(n, m))
    layer = bwa.compensation(w, "layer")
    assert torch.equal(bwa.bw_matmul(x, w, multiplier="ones", scheme="layer") - ref, (layer - negatives).expand(n, m))


@pytest.mark.parametrize("stride,padding", [(1, 0), (1, 1), (2, 1), (2, 0)])
def test_conv_bit_exact(stride, padding):
    g = torch.Generator().manual_seed(stride + 10 * padding)
    x, w = torch.randint(0, 256, (2, 3, 7, 6), generator=g), torch.randn(5, 3, 3, 3, generator=g)
    ref = F.conv2d(x.double(), _signs(w).double(), stride=stride, padding=padding).long()
    assert torch.equal(bwa.bw_conv2d(x, w, stride=stride, padding=padding), ref)
    assert torch.equal(bwa.bw_conv2d(x, w, stride=stride, padding=padding, multiplier="ones", scheme="channel"), ref)


def test_compressor_error_is_one_loa():
    g = torch.Generator().manual_seed(3)
    x, w = torch.randint(0, 256, (50, 64), generator=g), torch.randn(8, 64, generator=g)
    ref = x @ _signs(w).T
    for k in (1, 4, 8):
        err = ref - bwa.bw_matmul(x, w, k=k)
        assert int(err.min()) >= -(2 ** (k - 1)) and int(err.max()) <= 2 ** (k - 1) - 1
        tree_err = ref - bwa.bw_matmul(x, w, k=k, tree="adder")
        assert int(tree_err.abs().max()) <= 63 * 2 ** (k - 1)


def test_cost_by_hand():
    assert bwa.datapath_cost(3, 8, 2) == {"full_adders": 8 + 6, "or_gates": 2, "stages": 1, "critical_path": 7}
    c = bwa.datapath_cost(64, 17, 4)
    assert c["stages"] == 10 and c["full_adders"] == 62 * 17 + 13 and c["critical_path"] == 23
    t = bwa.datapath_cost(64, 17, 4, "adder")
    assert t == {"full_adders": 63 * 13, "or_gates": 63 * 4, "stages": 6, "critical_path": 6 * 13}
    assert bwa.datapath_cost(1, 8)["full_adders"] == 8


def test_energy():
    assert bwa.energy_per_inference_nj(1000) == pytest.approx(1.0)          # 2000 ops / 2e12 op/J = 1 nJ
    assert bwa.energy_per_inference_nj(1000, tops_per_watt=1.0, ops_per_mac=1) == pytest.approx(1.0)
    assert bwa.PAPER["tops_per_watt_65nm"] == 2.0 and bwa.PAPER["technology_nm"] == 130


def test_required_width():
    assert bwa.required_width(64, 255) == 17
    assert bwa.required_width(1, 0) == 3


def test_forward_exact_equals_model():
    model = bwa.bw_mlp(hidden=16, seed=0).eval()
    x = torch.rand(20, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(bwa.bw_forward(model, x), model(x))
        assert torch.equal(bwa.bw_forward(model, x, multiplier="ones", scheme="channel"), model(x))


def test_activation_code_straight_through():
    x = torch.tensor([-0.5, 0.2, 0.5, 2.0], requires_grad=True)
    y = bwa.ActivationCode(2)(x)
    assert y.tolist() == [0.0, 1.0, 2.0, 3.0]        # round(3 * clip(x, 0, 1)), 0.6 -> 1, 1.5 -> 2
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 3.0, 3.0, 0.0]


def test_bad_inputs():
    x, w = torch.randint(0, 4, (2, 3)), torch.randn(4, 3)
    with pytest.raises(ValueError, match="x"):
        bwa.bw_matmul(torch.rand(2, 3), w)
    with pytest.raises(ValueError, match="K"):
        bwa.bw_matmul(x, torch.randn(4, 5))
    with pytest.raises(ValueError, match="w"):
        bwa.bw_matmul(x, torch.full((4, 3), float("nan")))
    with pytest.raises(ValueError, match="multiplier"):
        bwa.bw_matmul(x, w, multiplier="booth")
    with pytest.raises(ValueError, match="scheme"):
        bwa.bw_matmul(x, w, scheme="mean")
    with pytest.raises(ValueError, match="tree"):
        bwa.bw_matmul(x, w, tree="wallace")
    with pytest.raises(ValueError, match="k"):
        bwa.bw_matmul(x, w, k=40, width=10)
    with pytest.raises(ValueError, match="width"):
        bwa.bw_matmul(torch.tensor([[100, 1, 1]]), w, width=4)
    with pytest.raises(ValueError, match="width"):
        bwa.loa_add(x, x, 1, 70)
    with pytest.raises(ValueError, match="a"):
        bwa.loa_add(torch.tensor([16]), torch.tensor([1]), 1, 4)
    with pytest.raises(TypeError, match="a"):
        bwa.loa_add(torch.tensor([1.0]), torch.tensor([1]), 1, 4)
    with pytest.raises(TypeError, match="k"):
        bwa.loa_add(x, x, 1.5, 8)
    with pytest.raises(ValueError, match="C"):
        bwa.bw_conv2d(torch.zeros(1, 2, 4, 4), torch.zeros(3, 1, 3, 3))
    with pytest.raises(ValueError, match="operands"):
        bwa.datapath_cost(0, 8)
    with pytest.raises(ValueError, match="tops_per_watt"):
        bwa.energy_per_inference_nj(10, tops_per_watt=0)
    with pytest.raises(ValueError, match="model"):
        bwa.bw_forward(torch.nn.Sequential(torch.nn.Linear(64, 10)), torch.rand(2, 64))
    with pytest.raises(TypeError, match="x"):
        bwa.bw_products([[1]], w, 8)
