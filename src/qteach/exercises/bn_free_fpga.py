"""Self-checks of the chapter "BN-free binarized CNN on an FPGA" (Yonekawa and Nakahara, 2017).

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.bn_free_fpga`, and
either prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import bn_free_fpga as bf

_SLUG = "bn_free_fpga"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the integer bias of a neuron with gamma > 0 -------------------------------------------------

def _cases_1():
    """(gamma, beta, mean, var, eps, acc_scale): hand-picked cases where floor, round and ceil differ, plus random."""
    f = lambda *v: torch.tensor(v, dtype=torch.float32)  # noqa: E731
    cases = [
        (f(2.0, 1.0, 0.5), f(1.0, 0.7, -0.3), f(3.0, 0.0, 2.0), f(3.0, 0.0, 1.0), 1.0, 1.0),
        (f(1.0, 1.0), f(0.0, 0.4), f(0.5, 0.2), f(0.0, 2.0), 1.0, 1 / 16),
        (f(0.25, 3.0), f(-0.9, 0.1), f(-7.3, 12.6), f(4.0, 0.5), 1e-5, 1.0),
    ]
    g = torch.Generator().manual_seed(7)
    gamma = torch.rand(50, generator=g) * 2 + 0.05
    beta, mean = torch.randn(50, generator=g), 20 * torch.randn(50, generator=g)
    var = torch.rand(50, generator=g) * 30
    cases.append((gamma, beta, mean, var, 1e-5, 1.0))
    return cases


def _b_prime(gamma, beta, mean, var, eps, acc_scale, sqrt=True, use_eps=True):
    g, b, m, v = (t.double() for t in (gamma, beta, mean, var))
    spread = v + (eps if use_eps else 0.0)
    spread = torch.sqrt(spread) if sqrt else spread
    return (b * spread / g - m) / acc_scale


def _hint_1(got, case):
    gamma, beta, mean, var, eps, acc_scale = case
    got = got.double()
    b = _b_prime(*case)
    candidates = [
        (torch.round(b), "rounding to the nearest integer fires one step too early or too late: for an integer x, "
                         "x + b' >= 0 is the same as x + floor(b') >= 0. Use torch.floor."),
        (torch.ceil(b), "ceil gives the right answer only when b' is an integer: x + b' >= 0 <=> x + floor(b') >= 0."),
        (torch.trunc(b), "truncation rounds negative b' towards zero; for an integer x the exact bias is floor(b')."),
        (torch.floor(-b), "the sign is turned around: y >= 0 <=> x >= -b', so the bias is +b' (floored), not -b'."),
        (torch.floor(_b_prime(*case, sqrt=False)), "the standard deviation is sqrt(var + eps), not var + eps."),
        (torch.floor(_b_prime(gamma, beta, mean, var, eps, 1.0)),
         "the accumulator is x_int and the BN input is acc_scale * x_int: divide b' by acc_scale."),
        (torch.floor(_b_prime(gamma, beta, mean, var, eps, acc_scale) * acc_scale * acc_scale),
         "divide by acc_scale (the BN input is acc_scale * x), do not multiply."),
        (torch.floor(beta.double() * gamma.double() / torch.sqrt(var.double() + eps) - mean.double()) ,
         "gamma belongs in the denominator: dividing y by gamma / sqrt(var + eps) leaves beta * sqrt(var + eps) / gamma."),
    ]
    for value, hint in candidates:
        if got.shape == value.shape and torch.equal(got, value):
            return hint
    return ("compute b' = (beta * sqrt(var + eps) / gamma - mean) / acc_scale in float64 and return floor(b') as "
            "an integer tensor.")


@self_check
def check_1(integer_bias) -> str:
    """Check ``integer_bias(gamma, beta, mean, var, eps, acc_scale)`` for gamma > 0 (int64 tensor of biases)."""
    label = _label(1)
    expect(callable(integer_bias), label, "pass your function itself, e.g. check_1(integer_bias)")
    for case in _cases_1():
        got = integer_bias(*case)
        expect_type(got, torch.Tensor, label, "integer_bias(...)")
        if got.shape != case[0].shape:
            fail(label, f"the result has shape {tuple(got.shape)}; expected one bias per neuron, shape "
                        f"{tuple(case[0].shape)}")
        if got.is_floating_point():
            fail(label, "return an integer tensor (e.g. .to(torch.int64)): the hardware stores an integer bias.")
        _, expected = bf.bn_free_bias(*case[:4], eps=case[4], acc_scale=case[5])
        if not torch.equal(got.to(torch.int64), expected):
            wrong = int((got.to(torch.int64) != expected).sum())
            fail(label, f"{wrong} of {expected.numel()} biases differ from the folded BN. {_hint_1(got, case)}")
    return passed(label, "floor(b') matches the folded batch norm on hand-picked and random neurons, "
                         "with and without an accumulator scale")


# --- exercise 2: change the memory budget, predict the precision ---------------------------------------------

def _params_bits(layers, bits, norm="bn_free", feature_maps=False):
    total = sum(bf.layer_memory_bits(layer, weight_bits=bits, norm=norm)["total"] for layer in layers)
    if feature_maps:
        total += 2 * max(layer.positions * layer.channels for layer in layers)
    return total


def max_weight_bits_reference(layers, bram_bits, norm="bn_free", feature_maps=False) -> int:
    """The largest weight width b in 1..32 whose parameters (b-bit weights and BN-free biases) fit ``bram_bits``;
    0 if not even 1-bit weights fit."""
    best = 0
    for bits in range(1, 33):
        if _params_bits(layers, bits, norm, feature_maps) <= bram_bits:
            best = bits
    return best


def _digits_layers():
    return [bf.LayerShape("hidden 1", 64, 128, 1, 64 * 16), bf.LayerShape("hidden 2", 128, 128, 1, 128),
            bf.LayerShape("output", 128, 10, 1, 128, binarized_output=False)]


def _cases_2():
    cifar, imagenet, digits = bf.vgg16_layers(32, 10, 512), bf.vgg16_layers(224, 1000, 4096), _digits_layers()
    bram = bf.XCZU9EG_BRAM_BITS
    return [
        ("CIFAR-size VGG-16, XCZU9EG BRAM", cifar, bram),
        ("ImageNet VGG-16, XCZU9EG BRAM", imagenet, bram),
        ("ImageNet VGG-16, 5 x the XCZU9EG BRAM", imagenet, 5 * bram),
        ("CIFAR-size VGG-16, exactly its 2-bit parameters", cifar, _params_bits(cifar, 2)),
        ("CIFAR-size VGG-16, one bit short of its 2-bit parameters", cifar, _params_bits(cifar, 2) - 1),
        ("the digits BNN, 60,000 bits", digits, 60_000),
        ("the digits BNN, 1 Gb", digits, 2**30),
    ]


@self_check
def check_2(max_weight_bits) -> str:
    """Check ``max_weight_bits(layers, bram_bits)``: the largest weight width in 1..32 whose weights and BN-free
    biases fit in ``bram_bits`` (0 if none)."""
    label = _label(2)
    expect(callable(max_weight_bits), label, "pass your function itself, e.g. check_2(max_weight_bits)")
    cases = _cases_2()
    answers = []
    for what, layers, bram_bits in cases:
        got = max_weight_bits(list(layers), bram_bits)
        if hasattr(got, "item"):
            got = got.item()
        if isinstance(got, float) and got.is_integer():
            got = int(got)
        expect(isinstance(got, int) and not isinstance(got, bool), label,
               f"max_weight_bits should return an int (a number of bits), got {type(got).__name__}")
        answers.append(got)
    refs = [max_weight_bits_reference(layers, bram_bits) for _, layers, bram_bits in cases]
    if answers == refs:
        return passed(label, f"your precision limits are right for {len(cases)} networks and memory budgets")
    mistakes = [
        ([r + 1 if r < 32 else r for r in refs],
         "one of your widths already overflows the budget: return the largest width that fits."),
        ([max_weight_bits_reference(l, m, norm="none") for _, l, m in cases],
         "count the BN-free biases too: each binarized output stores one integer bias (layer_memory_bits)."),
        ([max_weight_bits_reference(l, m, norm="batchnorm") for _, l, m in cases],
         "the network is BN-free: one small integer bias per neuron, not four float32 BN parameters."),
        ([max_weight_bits_reference(l, m, feature_maps=True) for _, l, m in cases],
         "count the parameters only (weights and biases, as in the slider figure), not the feature maps."),
    ]
    hint = next((h for wrong, h in mistakes if answers == wrong),
                "add weights (fan_in * channels * bits) and biases over all layers, and keep the largest bits in "
                "1..32 whose total is <= bram_bits (0 if none).")
    i = next(i for i, (got, ref) in enumerate(zip(answers, refs)) if got != ref)
    what, _, bram_bits = cases[i]
    fail(label, f"on {what} ({bram_bits:,} bits): {answers[i]}, expected {refs[i]}. {hint}")
