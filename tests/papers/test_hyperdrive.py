"""Hyperdrive (Andri et al., JETCAS 2019): tiled binary-weight convolution with border exchange, and its I/O model."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from qteach import hw
from qteach.papers import hyperdrive as hd


def _binary(shape, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 2, shape, generator=g).float() * 2 - 1


# --- tiling and border exchange ---------------------------------------------------------------------------------

def test_tile_bounds_by_hand():
    assert hd.tile_bounds(10, 3) == [(0, 4), (4, 7), (7, 10)]
    assert hd.tile_bounds(6, 2) == [(0, 3), (3, 6)]
    assert hd.tile_bounds(5, 5) == [(i, i + 1) for i in range(5)]
    assert hd.tile_bounds(7, 1) == [(0, 7)]


def test_split_tiles_covers_the_map():
    x = torch.arange(2 * 7 * 9).float().reshape(2, 7, 9)
    tiles = hd.split_tiles(x, (3, 2))
    assert sorted(tiles) == [(i, j) for i in range(3) for j in range(2)]
    rows = [torch.cat([tiles[i, j] for j in range(2)], dim=2) for i in range(3)]
    assert torch.equal(torch.cat(rows, dim=1), x)


def test_extend_tile_equals_the_padded_window():
    # chip (i, j) with its border must see exactly the zero-padded image around its tile
    x = torch.arange(1, 1 + 3 * 10 * 11).float().reshape(3, 10, 11)
    for grid, halo in (((2, 3), 1), ((3, 3), 2), ((1, 2), 3)):
        tiles = hd.split_tiles(x, grid)
        padded = F.pad(x, (halo,) * 4)
        rb, cb = hd.tile_bounds(10, grid[0]), hd.tile_bounds(11, grid[1])
        for (i, j) in tiles:
            (r0, r1), (c0, c1) = rb[i], cb[j]
            assert torch.equal(hd.extend_tile(tiles, i, j, halo), padded[:, r0:r1 + 2 * halo, c0:c1 + 2 * halo])


def test_extend_tile_without_corners_leaves_only_the_corners_zero():
    x = torch.ones(1, 6, 6)
    tiles = hd.split_tiles(x, (2, 2))
    ext = hd.extend_tile(tiles, 0, 0, 1, exchange_corners=False)[0]
    assert ext[4, 4] == 0 and ext[4, 3] == 1 and ext[3, 4] == 1       # the south-east corner is missing
    assert hd.extend_tile(tiles, 0, 0, 1)[0][4, 4] == 1


# --- the functional model equals F.conv2d -------------------------------------------------------------------------

@pytest.mark.parametrize("c_in, height, width, c_out, k, grid", [
    (3, 9, 11, 4, 3, (2, 3)), (2, 10, 10, 3, 5, (3, 3)), (1, 7, 5, 2, 1, (7, 5)), (4, 16, 16, 8, 3, (1, 1)),
    (3, 12, 13, 2, 7, (3, 4)), (5, 8, 8, 1, 3, (8, 8)), (2, 5, 17, 3, 3, (1, 4)), (1, 1, 1, 1, 1, (1, 1))])
def test_systolic_conv_is_bit_exact(c_in, height, width, c_out, k, grid):
    g = torch.Generator().manual_seed(height * width + k)
    x = torch.randint(-128, 129, (c_in, height, width), generator=g).float()      # exact sums in float32
    w = _binary((c_out, c_in, k, k), k)
    y = hd.systolic_binary_conv2d(x, w, grid)
    assert torch.equal(y, F.conv2d(x[None], w, padding=k // 2)[0])


def test_systolic_conv_random_floats_close():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(6, 15, 14, generator=g, dtype=torch.float64)
    w = _binary((5, 6, 3, 3), 2).double()
    y = hd.systolic_binary_conv2d(x, w, (3, 2))
    torch.testing.assert_close(y, F.conv2d(x[None], w, padding=1)[0], rtol=0, atol=1e-12)


def test_stream_binary_conv_by_hand():
    x = torch.tensor([[[1., 2., 3.], [4., 5., 6.], [7., 8., 9.]]])
    w = torch.tensor([[[[1., -1.], [-1., 1.]]]])
    # 1 - 2 - 4 + 5 = 0, and so on: the "valid" window of a 2x2 kernel
    assert hd.stream_binary_conv(x, w).tolist() == [[[0., 0.], [0., 0.]]]
    w = torch.ones(2, 1, 3, 3)
    w[1] = -1
    assert hd.stream_binary_conv(x, w).flatten().tolist() == [45., -45.]


def test_missing_corners_change_only_corner_outputs():
    from qteach.exercises.hyperdrive import corner_dependent_outputs
    x, w = torch.ones(2, 12, 12), torch.ones(3, 2, 3, 3)
    good = hd.systolic_binary_conv2d(x, w, (3, 2))
    bad = hd.systolic_binary_conv2d(x, w, (3, 2), exchange_corners=False)
    wrong = (good != bad).any(0)
    assert int(wrong.sum()) == corner_dependent_outputs(12, 12, (3, 2), 3) == 4 * 1 * (3 - 1) * (2 - 1)
    assert wrong[3, 5] and wrong[4, 6] and not wrong[3, 3]


# --- I/O counts -------------------------------------------------------------------------------------------------

def test_border_pixels_closed_form():
    for height, width, (m, n), r in ((6, 6, (2, 2), 1), (224, 224, (4, 4), 3), (30, 40, (3, 5), 2)):
        closed = 2 * r * ((m - 1) * width + (n - 1) * height) + 4 * r * r * (m - 1) * (n - 1)
        assert hd.border_pixels(height, width, (m, n), r) == closed
    assert hd.border_pixels(56, 56, (1, 1), 1) == 0 and hd.border_pixels(56, 56, (4, 4), 0) == 0
    assert hd.border_pixels(6, 6, (2, 2), 1) == 2 * 6 + 2 * 6 + 4     # two cuts of 2 x 6 pixels, four corners


def test_layer_io_bits_by_hand():
    layer = hd.Conv("c", 4, 8, 3, 1, 6, 6)
    io = hd.layer_io_bits(layer, (2, 2))
    assert io["weights"] == 8 * 4 * 9
    assert io["border"] == 4 * 28 * 16
    assert io["fm_streaming"] == (4 * 36 + 8 * 36) * 16 + 288
    assert io["hyperdrive"] == io["weights"] + io["border"]
    assert io["on_chip_per_chip"] == (4 * 9 + 8 * 9) * 16


def test_resnet_shapes():
    r18, r34 = hd.resnet_layers(18), hd.resnet_layers(34)
    assert len(r18) == 17 + 3 and len(r34) == 33 + 3             # convs + 1x1 shortcut convs, no FC
    assert r34[-1].out_height == 7 and r34[-1].c_out == 512
    weights = sum(c.c_in * c.c_out * c.kernel**2 for c in r18)
    assert weights == 11_166_912                                 # ResNet-18 has 11.69M parameters with FC and BN
    assert round(sum(c.macs for c in r18) / 1e9, 2) == 1.81      # the usual 1.8 GMACs


def test_network_io_and_chips():
    layers = hd.resnet_layers(34)
    one = hd.network_io(layers, (1, 1))
    assert one["border"] == 0 and one["weights"] == 21_267_648
    assert one["hyperdrive"] < one["fm_streaming"] / 4
    assert hd.chips_needed(layers, 16 * 2**20) == (1, 1)
    assert hd.chips_needed(layers, 8 * 2**20) == (2, 2)
    sizes = [hd.chips_needed(hd.resnet_layers(34, r), 8 * 2**20)[0] for r in (224, 448, 896)]
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0]


def test_system_efficiency_formula():
    layers = hd.resnet_layers(18)
    out = hd.system_efficiency(layers, (2, 2), {"io_pj_per_bit": 1.0, "link_pj_per_bit": 0.0, "mac_pj": 0.5})
    io = hd.network_io(layers, (2, 2))
    assert out["energy_pj"]["hyperdrive"] == io["macs"] * 0.5 + (io["hyperdrive"] - io["border"])
    assert out["tops_per_w"]["fm_streaming"] == 2 * io["macs"] / (io["macs"] * 0.5 + io["fm_streaming"])
    assert hd.ASSUMED["io_pj_per_bit"] == hw.MEMORY_PJ_PER_64BIT_45NM["dram"] / 64
    assert hd.PAPER["system_tops_per_w"] == 4.3 and hd.PAPER["gain_vs_bwn_sota"] == 3.1


# --- bad input ----------------------------------------------------------------------------------------------------

def test_bad_input():
    x, w = torch.zeros(2, 6, 6), torch.ones(3, 2, 3, 3)
    with pytest.raises(ValueError, match="parts"):
        hd.tile_bounds(3, 4)
    with pytest.raises(TypeError, match="size"):
        hd.tile_bounds(3.0, 1)
    with pytest.raises(ValueError, match="grid"):
        hd.systolic_binary_conv2d(x, w, (2,))
    with pytest.raises(ValueError, match="w must hold only"):
        hd.systolic_binary_conv2d(x, w * 0.5, (1, 1))
    with pytest.raises(ValueError, match="k odd"):
        hd.systolic_binary_conv2d(x, torch.ones(3, 2, 2, 2), (1, 1))
    with pytest.raises(ValueError, match="x must"):
        hd.systolic_binary_conv2d(torch.zeros(1, 2, 6, 6), w, (1, 1))
    with pytest.raises(ValueError, match="halo"):
        hd.systolic_binary_conv2d(torch.zeros(2, 6, 6), torch.ones(1, 2, 5, 5), (6, 1))
    with pytest.raises(TypeError, match="layer"):
        hd.layer_io_bits("conv", (1, 1))
    with pytest.raises(ValueError, match="depth"):
        hd.resnet_layers(50)
    with pytest.raises(ValueError, match="memory_bits"):
        hd.chips_needed(hd.resnet_layers(18), -1)
    with pytest.raises(ValueError, match="no square mesh"):
        hd.chips_needed(hd.resnet_layers(18), 1000, max_side=3)
