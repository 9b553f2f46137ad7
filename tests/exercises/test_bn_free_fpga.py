"""The self-checks of the BN-free FPGA chapter: the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import bn_free_fpga as ex
from qteach.papers import bn_free_fpga as bf

LABEL = "ex-bn_free_fpga-{}"


def _b(gamma, beta, mean, var, eps, acc_scale):
    return (beta.double() * torch.sqrt(var.double() + eps) / gamma.double() - mean.double()) / acc_scale


def integer_bias(gamma, beta, mean, var, eps, acc_scale):
    return torch.floor(_b(gamma, beta, mean, var, eps, acc_scale)).to(torch.int64)


def integer_bias_round(gamma, beta, mean, var, eps, acc_scale):
    return torch.round(_b(gamma, beta, mean, var, eps, acc_scale)).to(torch.int64)


def integer_bias_no_sqrt(gamma, beta, mean, var, eps, acc_scale):
    b = (beta.double() * (var.double() + eps) / gamma.double() - mean.double()) / acc_scale
    return torch.floor(b).to(torch.int64)


def integer_bias_no_scale(gamma, beta, mean, var, eps, acc_scale):
    return integer_bias(gamma, beta, mean, var, eps, 1.0)


def integer_bias_negated(gamma, beta, mean, var, eps, acc_scale):
    return torch.floor(-_b(gamma, beta, mean, var, eps, acc_scale)).to(torch.int64)


def integer_bias_float(gamma, beta, mean, var, eps, acc_scale):
    return torch.floor(_b(gamma, beta, mean, var, eps, acc_scale))


def test_check_1_passes_the_solution(capsys):
    line = ex.check_1(integer_bias)
    assert line.startswith("✅ " + LABEL.format(1))
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (integer_bias_round, "Use torch.floor"),
    (integer_bias_no_sqrt, "sqrt(var + eps)"),
    (integer_bias_no_scale, "divide b' by acc_scale"),
    (integer_bias_negated, "sign is turned around"),
    (integer_bias_float, "integer tensor"),
])
def test_check_1_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(info.value) and hint in str(info.value)


def max_weight_bits(layers, bram_bits):
    best = 0
    for bits in range(1, 33):
        total = sum(bf.layer_memory_bits(layer, weight_bits=bits)["total"] for layer in layers)
        if total <= bram_bits:
            best = bits
    return best


def max_weight_bits_by_hand(layers, bram_bits):
    """Another correct form: the weights grow linearly with the bits, the biases stay; divide."""
    weights = sum(layer.fan_in * layer.channels for layer in layers)
    biases = sum(bf.integer_bias_bits(layer.acc_bound) * layer.channels for layer in layers if layer.binarized_output)
    return int(max(0, min(32, (bram_bits - biases) // weights)))


def test_check_2_passes_the_solution(capsys):
    assert ex.check_2(max_weight_bits).startswith("✅ " + LABEL.format(2))
    assert "passed" in capsys.readouterr().out
    ex.check_2(max_weight_bits_by_hand)
    ex.check_2(lambda layers, bram: torch.tensor(max_weight_bits(layers, bram)))


def _with(norm=None, feature_maps=False, extra=0):
    def wrong(layers, bram_bits):
        best = 0
        for bits in range(1, 33):
            total = sum(bf.layer_memory_bits(l, weight_bits=bits, norm=norm or "bn_free")["total"] for l in layers)
            if feature_maps:
                total += 2 * max(l.positions * l.channels for l in layers)
            if total <= bram_bits:
                best = bits
        return min(32, best + extra) if best else best + extra
    return wrong


@pytest.mark.parametrize("wrong, hint", [
    (_with(extra=1), "return the largest width that fits"),
    (_with(norm="none"), "count the BN-free biases too"),
    (_with(norm="batchnorm"), "not four float32 BN parameters"),
    (_with(feature_maps=True), "not the feature maps"),
    (lambda layers, bram: 1, "add weights"),
    (lambda layers, bram: "2", "should return an int"),
])
def test_check_2_rejects_mistakes(wrong, hint):
    with pytest.raises(AssertionError) as info:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(info.value) and hint in str(info.value)


def test_check_2_reference_numbers():
    """The numbers the solution quotes: the CIFAR-size VGG-16 fits the XCZU9EG at 2 bits, the ImageNet one not at 1."""
    cifar, imagenet = bf.vgg16_layers(32, 10, 512), bf.vgg16_layers(224, 1000, 4096)
    assert max_weight_bits(cifar, bf.XCZU9EG_BRAM_BITS) == 2
    assert max_weight_bits(imagenet, bf.XCZU9EG_BRAM_BITS) == 0
    assert max_weight_bits(imagenet, 5 * bf.XCZU9EG_BRAM_BITS) == 1


def test_checks_refuse_non_callables():
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_1(3)
    with pytest.raises(AssertionError, match="pass your function"):
        ex.check_2(None)
