import math

import pytest
import torch

from qteach.papers import fixed_point_image_compression as P


def test_fixed_point_hand_values():
    # 8 bits, F = 4: steps of 1/16, codes -128..127 (range -8 .. 7.9375)
    w = torch.tensor([0.03, 0.04, -0.5, 7.99, -9.0, 1.0 / 32])
    got = P.fixed_point(w, 8, 4)
    assert got.tolist() == [0.0, 0.0625, -0.5, 7.9375, -8.0, 0.0]  # 1/32 * 16 = 0.5 rounds to even 0


def test_fixed_point_is_on_the_grid_and_per_channel():
    w = torch.randn(3, 5)
    frac = torch.tensor([[2], [5], [7]])
    q = P.fixed_point(w, 6, frac)
    codes = q * 2.0 ** frac
    assert torch.equal(codes, codes.round())
    assert codes.abs().max() <= 32


def test_fractional_length_hand_values():
    # max|w| = 0.7, 8 bits: 127 / 0.7 = 181.4 -> F = 7 (0.7 * 128 = 89.6 fits in 127)
    assert int(P.fractional_length(torch.tensor([0.7, -0.1]), 8)) == 7
    # max|w| = 1.0: 127 / 1 -> F = 6
    assert int(P.fractional_length(torch.tensor([1.0]), 8)) == 6
    # max|w| = 3: 4 bits, 7 / 3 = 2.33 -> F = 1
    assert int(P.fractional_length(torch.tensor([3.0]), 4)) == 1
    # per channel: one F per output channel, shaped to broadcast
    w = torch.tensor([[0.7, 0.1], [0.05, -0.02], [0.0, 0.0]])
    frac = P.fractional_length(w, 8, "channel")
    assert frac.shape == (3, 1)
    assert frac.flatten().tolist() == [7, 11, 7]  # 127 / 0.05 = 2540 -> 11; all-zero -> B - 1


def test_fractional_length_never_saturates():
    torch.manual_seed(0)
    for bits in (3, 4, 8, 10):
        w = torch.randn(8, 4, 3, 3) * 0.3
        for grouping in P.GROUPINGS:
            q = P.quantize_weight(w, bits, grouping)
            step = 2.0 ** -P.fractional_length(w, bits, grouping).double()
            assert torch.all((q - w).abs() <= step / 2 + 1e-7)


def test_per_channel_error_not_larger_than_per_tensor():
    torch.manual_seed(1)
    w = torch.randn(16, 8, 3, 3) * torch.logspace(-2, 0, 16).reshape(-1, 1, 1, 1)
    for bits in (4, 6, 8):
        e_t = (P.quantize_weight(w, bits, "tensor") - w).pow(2).sum()
        e_c = (P.quantize_weight(w, bits, "channel") - w).pow(2).sum()
        assert e_c <= e_t


def test_nonlinear_codebook_hand_values():
    # 3 bits: M = 4 magnitudes, K = 2: levels 0, 1, 2, 4 (in steps of 2^-F)
    w = torch.tensor([0.4, 0.6, 1.4, 2.9, 3.1, 10.0, -3.1])
    assert P.nonlinear_quantize(w, 3, 0).tolist() == [0.0, 1.0, 1.0, 2.0, 4.0, 4.0, -4.0]
    # 4 bits, F = 1: levels 0..4 step 1 (K = 4), then 6, 8, 10 -> in units of 1/2
    levels = P.nonlinear_quantize(torch.linspace(-6, 6, 2001), 4, 1).unique()
    want = torch.tensor([0, 0.5, 1, 1.5, 2, 3, 4, 5])
    assert torch.equal(levels, torch.cat([-want.flip(0)[:-1], want]))


def test_nonlinear_is_nearest_level():
    # 5 bits: M = 16 magnitudes, K = 8: 0..8 in unit steps, then 10, 12, ..., 22 = 3M/2 - 2
    levels = torch.cat([torch.arange(0.0, 9), torch.arange(10.0, 23, 2)])
    torch.manual_seed(2)
    w = torch.rand(500) * 24
    q = P.nonlinear_quantize(w, 5, 0)
    nearest = levels[(w[:, None] - levels).abs().argmin(dim=1)]
    assert torch.allclose((q - w).abs(), (nearest - w).abs())


def test_nonlinear_gains_a_fractional_bit_on_bell_weights():
    torch.manual_seed(3)
    w = torch.randn(32, 16, 3, 3) * 0.1
    for bits in (4, 5):
        e_lin = (P.quantize_weight(w, bits, "channel", "linear") - w).pow(2).mean()
        e_non = (P.quantize_weight(w, bits, "channel", "nonlinear") - w).pow(2).mean()
        assert e_non < e_lin


def test_psnr_hand_value():
    x = torch.zeros(4, 4)
    y = torch.full((4, 4), 0.1)
    assert P.psnr(x, y) == pytest.approx(20.0)  # 10 log10(1 / 0.01)
    assert P.psnr(x, y, peak=255.0) == pytest.approx(10 * math.log10(255 ** 2 / 0.01))
    assert P.psnr(x, x) == math.inf


def test_latent_entropy_hand_values():
    assert P.latent_entropy(torch.tensor([1.0, 1.0, 1.0])) == 0.0
    assert P.latent_entropy(torch.tensor([0, 1, 2, 3])) == pytest.approx(2.0)
    assert P.latent_entropy(torch.tensor([0.0, 0.0, 1.0, 2.0])) == pytest.approx(1.5)


def test_quantize_codec_equals_per_layer_quantization():
    torch.manual_seed(4)
    model = P.TinyCodec()
    q = P.quantize_codec(model, 6, "channel", "nonlinear")
    conv = model.encoder[0].weight.detach()
    assert torch.equal(q.encoder[0].weight, P.quantize_weight(conv, 6, "channel", "nonlinear"))
    tconv = model.decoder[0].weight.detach()
    want = P.quantize_weight(tconv.transpose(0, 1), 6, "channel", "nonlinear").transpose(0, 1)
    assert torch.equal(q.decoder[0].weight, want)
    assert torch.equal(q.decoder[0].bias, model.decoder[0].bias)  # biases stay in float
    assert model.encoder[0].weight.requires_grad  # the original is untouched
    x = torch.rand(5, 1, 8, 8)
    assert model.eval()(x).shape == (5, 1, 8, 8)
    assert model.symbols(x).shape == (5, 2, 4, 4)


def test_training_learns_and_eight_bits_cost_little():
    torch.manual_seed(0)
    images = torch.rand(64, 1, 8, 8).round()
    model = P.train_codec(images, epochs=2, seed=0)
    with torch.no_grad():
        f = P.psnr(model(images), images)
        q = P.psnr(P.quantize_codec(model, 8, "channel", "nonlinear")(images), images)
    assert abs(f - q) < 0.5


@pytest.mark.parametrize("call, error, name", [
    (lambda: P.fixed_point([1.0], 8, 2), TypeError, "w"),
    (lambda: P.fixed_point(torch.tensor([1]), 8, 2), TypeError, "w"),
    (lambda: P.fixed_point(torch.tensor([float("nan")]), 8, 2), ValueError, "w"),
    (lambda: P.fixed_point(torch.ones(2), 0, 2), ValueError, "bits"),
    (lambda: P.fixed_point(torch.ones(2), 8, 1.5), TypeError, "frac_bits"),
    (lambda: P.fractional_length(torch.ones(2), 8, "row"), ValueError, "grouping"),
    (lambda: P.fractional_length(torch.tensor(1.0), 8, "channel"), ValueError, "channel"),
    (lambda: P.nonlinear_quantize(torch.ones(2), 2, 0), ValueError, "bits"),
    (lambda: P.quantize_weight(torch.ones(2), 8, "tensor", "log"), ValueError, "scheme"),
    (lambda: P.psnr(torch.ones(2), torch.ones(3)), ValueError, "shape"),
    (lambda: P.psnr(torch.ones(2), torch.ones(2), peak=0), ValueError, "peak"),
    (lambda: P.latent_entropy(torch.tensor([])), ValueError, "symbols"),
    (lambda: P.latent_entropy([1, 2]), TypeError, "symbols"),
    (lambda: P.quantize_codec("model", 8), TypeError, "model"),
    (lambda: P.train_codec(torch.rand(4, 64)), ValueError, "images"),
    (lambda: P.TinyCodec(latent_step=0), ValueError, "latent_step"),
])
def test_bad_inputs(call, error, name):
    with pytest.raises(error, match=name):
        call()
