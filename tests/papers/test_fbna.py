"""FBNA (Guo et al., FPL 2018): binary padding, its exact offset against zero padding, bit-plane first layer."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import binary, deploy
from qteach.papers import fbna


def test_pad_pattern_by_hand():
    p = fbna.pad_pattern(2, 3, 1, "alternate")
    assert p.tolist() == [[1, -1, 1, -1, 1], [-1, 0, 0, 0, -1], [1, 0, 0, 0, 1], [-1, 1, -1, 1, -1]]
    assert fbna.pad_pattern(1, 1, 1, "plus").tolist() == [[1, 1, 1], [1, 0, 1], [1, 1, 1]]
    assert fbna.pad_pattern(1, 1, 1, "minus").sum().item() == -8
    assert not fbna.pad_pattern(4, 4, 2, "zero").any()
    assert fbna.pad_pattern(3, 3, 0, "plus").abs().sum().item() == 0


@pytest.mark.parametrize("scheme", ["plus", "minus", "alternate"])
def test_binary_padding_keeps_a_sign_map_binary(scheme):
    x = binary.sign(torch.randn(2, 3, 5, 4))
    padded = fbna.binary_pad(x, 2, scheme)
    assert padded.shape == (2, 3, 9, 8)
    assert set(padded.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(padded[..., 2:-2, 2:-2], x)


@pytest.mark.parametrize("shape, padding, stride", [((2, 5, 6, 7), 1, 1), ((1, 70, 3, 3), 1, 1),
                                                    ((3, 1, 5, 5), 2, 2), ((1, 4, 1, 1), 1, 1)])
@pytest.mark.parametrize("scheme", fbna.SCHEMES)
def test_padded_conv_is_bit_exact(shape, padding, stride, scheme):
    g = torch.Generator().manual_seed(sum(shape))
    x, w = torch.randn(*shape, generator=g), torch.randn(4, shape[1], 3, 3, generator=g)
    got = fbna.padded_binary_conv2d(x, w, padding, scheme, stride=stride)
    plain = F.conv2d(fbna.binary_pad(binary.sign(x), padding, scheme), binary.sign(w), stride=stride)
    assert torch.equal(got.long(), plain.round().long())
    zero = fbna.padded_binary_conv2d(x, w, padding, "zero", stride=stride).long()
    delta = fbna.pad_contribution(w, shape[2], shape[3], padding, scheme, stride=stride)
    assert torch.equal(got.long() - zero, delta.expand_as(zero))


def test_pad_contribution_by_hand():
    w = torch.ones(1, 1, 3, 3)                 # every tap +1: the offset counts the padded taps times P
    delta = fbna.pad_contribution(w, 3, 3, 1, "plus")
    assert delta[0].tolist() == [[5, 3, 5], [3, 0, 3], [5, 3, 5]]
    assert fbna.pad_contribution(w, 3, 3, 1, "minus")[0].tolist() == [[-5, -3, -5], [-3, 0, -3], [-5, -3, -5]]
    # alternate: the corner window of a 3x3 map sees border values 1,-1,1 (top) and -1,1 (left column) -> 1
    assert fbna.pad_contribution(w, 3, 3, 1, "alternate")[0].tolist() == [[1, -1, 1], [-1, 0, -1], [1, -1, 1]]
    assert not fbna.pad_contribution(torch.randn(3, 2, 3, 3), 4, 4, 1, "zero").any()


def test_plus_and_minus_are_mirror_images():
    w = torch.randn(5, 3, 3, 3)
    assert torch.equal(fbna.pad_contribution(w, 6, 6, 1, "plus"), -fbna.pad_contribution(w, 6, 6, 1, "minus"))


def test_first_layer_bit_planes_equal_integer_conv():
    g = torch.Generator().manual_seed(0)
    q = torch.randint(0, 256, (2, 3, 6, 6), generator=g)
    w = torch.randn(4, 3, 3, 3, generator=g)
    got = deploy.bitplane_conv2d(q, w, bits=8, padding=1)
    assert torch.equal(got, F.conv2d(q.double(), binary.sign(w).double(), padding=1).round().long())


def test_padded_bnn_runs_and_has_binary_pads():
    model = fbna.padded_bnn("alternate", channels=(4, 8), seed=1)
    same = fbna.padded_bnn("alternate", channels=(4, 8), seed=1)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values()))
    out = model(torch.rand(5, 1, 8, 8))
    assert out.shape == (5, 10)
    pads = [m for m in model.modules() if isinstance(m, fbna.BinaryPad)]
    assert len(pads) == 2 and all(p.scheme == "alternate" for p in pads)


def test_cost_helpers_by_hand():
    ops = fbna.first_layer_binary_ops(3, 128, 3, 32, bits=8)
    assert ops["macs"] == 3 * 128 * 9 * 32 * 32 and ops["binary_macs"] == 8 * ops["macs"]
    # 3x3 map, 3x3 kernel, padding 1: 1-D the taps inside are 2 + 3 + 2 = 7 of 9 -> 1 - (7/9)^2
    assert fbna.padded_tap_fraction(3) == pytest.approx(1 - (7 / 9) ** 2)
    assert fbna.padded_tap_fraction(8, 3, 0) == 0
    assert fbna.padded_tap_fraction(32) < fbna.padded_tap_fraction(8)


@pytest.mark.parametrize("call, error, name", [
    (lambda: fbna.pad_pattern(3, 3, 1, "one"), ValueError, "scheme"),
    (lambda: fbna.pad_pattern(3, 3, -1, "plus"), ValueError, "padding"),
    (lambda: fbna.pad_pattern(0, 3, 1, "plus"), ValueError, "height"),
    (lambda: fbna.pad_pattern(3, 3, 1, 5), TypeError, "scheme"),
    (lambda: fbna.binary_pad(torch.ones(3, 3), 1, "plus"), ValueError, "x"),
    (lambda: fbna.binary_pad(torch.ones(1, 1, 3, 3, dtype=torch.int64), 1, "plus"), TypeError, "x"),
    (lambda: fbna.padded_binary_conv2d(torch.ones(1, 1, 3, 3), torch.ones(1, 1, 3, 3), 1, "odd"), ValueError,
     "scheme"),
    (lambda: fbna.pad_contribution(torch.ones(1, 3, 3), 3, 3, 1, "plus"), ValueError, "w"),
    (lambda: fbna.BinaryPad(1.5, "plus"), TypeError, "padding"),
    (lambda: fbna.padded_bnn("none"), ValueError, "scheme"),
    (lambda: fbna.first_layer_binary_ops(3, 8, 3, 8, bits=0), ValueError, "bits"),
    (lambda: fbna.padded_tap_fraction(2, 5, 0), ValueError, "kernel"),
])
def test_bad_input(call, error, name):
    with pytest.raises(error, match=name):
        call()
