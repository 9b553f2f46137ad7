"""MeliusNet: the dense and improvement blocks against hand values and the official BMXNet-v2-examples code."""

import pytest
import torch
import torch.nn.functional as F

from qteach import comparison as C
from qteach.papers import meliusnet as M


def _official_improvement(x, body_out, channels, in_channels):
    """Line-by-line transcription of ``ImprovementBlock.hybrid_forward`` (BMXNet-v2-examples,
    ``binary_models/meliusnet.py`` lines 42-62, commit a5cd3be), with ``F.slice_axis`` as tensor slicing."""
    residual = x
    x = body_out
    use_sliced_addition = channels != in_channels  # line 42
    if not use_sliced_addition:
        return x + residual  # lines 51-52
    slices = [0, in_channels - channels, in_channels]  # line 45
    slices_add_x = [False, True]  # line 46
    parts = []
    for add_x, slice_begin, slice_end in zip(slices_add_x, slices[:-1], slices[1:]):  # lines 55-61
        if slice_end - slice_begin == 0:
            continue
        result = residual[:, slice_begin:slice_end]
        if add_x:
            result = result + x
        parts.append(result)
    return torch.cat(parts, dim=1)  # line 62


def test_improve_last_hand_values():
    x = torch.tensor([[[[1.0]], [[2.0]], [[3.0]], [[4.0]]]])  # 4 channels, 1 x 1
    y = torch.tensor([[[[10.0]], [[-20.0]]]])  # 2 channels
    assert M.improve_last(x, y).flatten().tolist() == [1.0, 2.0, 13.0, -16.0]
    # k = c: a plain residual
    assert M.improve_last(x, x).flatten().tolist() == [2.0, 4.0, 6.0, 8.0]


@pytest.mark.parametrize("channels, in_channels", [(8, 24), (3, 3), (1, 5), (5, 6)])
def test_improvement_block_equals_official_transcription(channels, in_channels):
    torch.manual_seed(channels * 10 + in_channels)
    block = M.ImprovementBlock(in_channels, channels, kernel_size=(1, 3)).eval()
    x = torch.randn(3, in_channels, 1, 7)
    body = block.conv(block.bn(x))
    assert torch.equal(block(x), _official_improvement(x, body, channels, in_channels))
    assert block(x).shape == x.shape


def test_improvement_block_keeps_first_channels_exactly():
    block = M.ImprovementBlock(10, 4).eval()
    x = torch.randn(2, 10, 1, 9)
    out = block(x)
    assert torch.equal(out[:, :6], x[:, :6])
    assert not torch.equal(out[:, 6:], x[:, 6:])


def test_dense_layer_concatenates_binary_conv():
    torch.manual_seed(0)
    layer = M.DenseLayer(6, 4, kernel_size=(1, 5)).eval()
    x = torch.randn(2, 6, 1, 11)
    out = layer(x)
    assert out.shape == (2, 10, 1, 11) and layer.out_channels == 10
    assert torch.equal(out[:, :6], x)
    # the new channels are an integer-valued conv of signs: sign(BN(x)) * sign(W), sign(0) = +1
    xs = torch.where(layer.bn(x) >= 0, 1.0, -1.0)
    ws = torch.where(layer.conv.weight >= 0, 1.0, -1.0)
    expected = F.conv2d(xs, ws, padding=(0, 2))
    assert torch.equal(out[:, 6:], expected)
    assert torch.equal(expected, expected.round())


def test_stage_binary_weights_hand_counts():
    # c = 8, k = 8, 1 x 5 kernel: dense 8*8*5 = 320, improvement on 16 channels 16*8*5 = 640
    assert M.stage_binary_weights(8, "DI", 8) == 960
    assert M.stage_binary_weights(8, "DD", 8) == 960  # equal binary operations, 8 more channels
    assert M.stage_binary_weights(8, "D", 8) == 320
    # MeliusNet's default: c = 64 ... growth 64, 3 x 3: dense 64*64*9, improvement 128*64*9
    assert M.stage_binary_weights(64, "DI", 64, (3, 3)) == 64 * 64 * 9 + 128 * 64 * 9


def test_counts_match_hand_counts_and_summary():
    stage = M.melius_stage(16, 8, "DI", 8)
    assert stage.out_channels == 16
    got = M.counts(stage, (16, 1, 20))
    assert got["binary_weights"] == M.stage_binary_weights(8, "DI", 8) == 960
    assert got["binary_ops"] == 960 * 20
    assert got["float_macs"] == 16 * 8 * 20  # the transition's 1 x 1 conv
    assert got["ops"] == 960 * 20 / 64 + 16 * 8 * 20
    dd = M.melius_stage(16, 8, "DD", 8)
    assert dd.out_channels == 24 and M.counts(dd, (16, 1, 20))["binary_ops"] == 960 * 20


def test_comparison_conv_block_fits_protocol():
    block = M.comparison_conv_block(1, 1, 16, 16, (1, 5))
    x = torch.randn(4, 16, 1, 20)
    assert block(x).shape == x.shape
    # binary weights against BNN's block: 5 (8*8 + 16*8) = 960 of 5*16*16 = 1280
    assert M.counts(block, (16, 1, 20))["binary_weights"] == 960
    method = C.Method("MeliusNet", "meliusnet", ((1, 1),), conv_block=M.comparison_conv_block)
    model = C.protocol_cnn(method, 1, 1)
    assert model(torch.randn(3, 40)).shape == (3, 10)
    assert M.counts(model, (40,))["binary_ops"] == 960 * 20 + 960 * 10
    with pytest.raises(ValueError, match="w_bits"):
        M.comparison_conv_block(2, 2, 16, 16, (1, 5))
    with pytest.raises(ValueError, match="growth"):
        M.comparison_conv_block(1, 1, 16, 16, (1, 5), growth=16)


def test_melius_cnn_equal_binary_ops():
    di, dd = M.melius_cnn(("DI", "DI")), M.melius_cnn(("DD", "DD"))
    assert di(torch.randn(2, 40)).shape == dd(torch.randn(2, 40)).shape == (2, 10)
    assert M.counts(di, (40,))["binary_ops"] == M.counts(dd, (40,))["binary_ops"]
    assert M.counts(dd, (40,))["float_params"] > M.counts(di, (40,))["float_params"]


def test_gradients_reach_every_binary_conv():
    model = M.melius_cnn(("DI",), length=8)
    model(torch.randn(5, 8)).sum().backward()
    for module in model.modules():
        if isinstance(module, torch.nn.Conv2d):
            assert module.weight.grad is not None and module.weight.grad.abs().sum() > 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="pattern"):
        M.melius_stage(16, 8, "DX")
    with pytest.raises(TypeError, match="pattern"):
        M.melius_stage(16, 8, 3)
    with pytest.raises(ValueError, match="growth"):
        M.ImprovementBlock(4, 5)
    with pytest.raises(TypeError, match="in_channels"):
        M.DenseLayer(4.0, 2)
    with pytest.raises(TypeError, match="x"):
        M.improve_last([1.0], torch.zeros(1, 1))
    with pytest.raises(ValueError, match="more channels"):
        M.improve_last(torch.zeros(1, 2, 3), torch.zeros(1, 3, 3))
    with pytest.raises(ValueError, match="shape"):
        M.improve_last(torch.zeros(1, 4, 3), torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match="length"):
        M.melius_cnn(length=42)
    with pytest.raises(TypeError, match="patterns"):
        M.melius_cnn(patterns="DI")
    with pytest.raises(ValueError, match="pattern"):
        M.stage_binary_weights(8, "", 8)
    with pytest.raises(TypeError, match="model"):
        M.counts("model", (40,))
