"""The self-checks of *Training through a quantizer* pass on the solutions and fail, with a hint, on plausible
mistakes."""

import pytest
import torch

from qteach import binary, quant
from qteach.exercises.training_through_a_quantizer import check_1, check_2

LABEL_1 = "ex-training_through_a_quantizer-1"
LABEL_2 = "ex-training_through_a_quantizer-2"


def make_sign(forward, backward):
    class Sign(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return forward(x)

        @staticmethod
        def backward(ctx, grad_output):
            (x,) = ctx.saved_tensors
            return backward(x, grad_output)

    return Sign.apply


def binary_sign(x):
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))


SOLUTION_1 = make_sign(binary_sign, lambda x, g: g * (x.abs() <= 1).to(g.dtype))


def detach_trick_sign(x):
    clipped = torch.clamp(x, -1, 1)
    return clipped + (binary.sign(x) - clipped).detach()


@pytest.mark.parametrize("solution", [SOLUTION_1, detach_trick_sign, binary.ste_sign])
def test_check_1_passes_on_solution(solution, capsys):
    assert check_1(solution) is None  # prints its line, returns nothing
    assert f"✅ {LABEL_1} passed" in capsys.readouterr().out


class BuggySTESign(torch.autograd.Function):
    """The exercise's buggy code: torch.sign forward, and the mask computed on the saved output."""

    @staticmethod
    def forward(ctx, x):
        q = torch.sign(x)
        ctx.save_for_backward(q)
        return q

    @staticmethod
    def backward(ctx, grad_output):
        (q,) = ctx.saved_tensors
        return grad_output * (q.abs() <= 1).to(grad_output.dtype)


class HalfFixedSTESign(BuggySTESign):
    """The forward bug fixed, the backward bug (mask on the output) left."""

    @staticmethod
    def forward(ctx, x):
        q = binary_sign(x)
        ctx.save_for_backward(q)
        return q


@pytest.mark.parametrize("wrong, hint", [
    (BuggySTESign.apply, "torch.sign(0) is 0"),
    (HalfFixedSTESign.apply, "a mask computed on the output"),
    (make_sign(torch.sign, lambda x, g: g * (x.abs() <= 1).to(g.dtype)), "torch.sign(0) is 0"),
    (make_sign(binary_sign, lambda x, g: g), "plain STE"),
    (make_sign(binary_sign, lambda x, g: g * (x.abs() < 1).to(g.dtype)), "inclusive"),
    (make_sign(binary_sign, lambda x, g: (x.abs() <= 1).to(g.dtype)), "multiply the incoming gradient"),
    (make_sign(binary_sign, lambda x, g: torch.zeros_like(g)), "zero everywhere"),
    (lambda x: binary.sign(x).detach(), "not connected to the input"),
    (make_sign(lambda x: torch.round(x), lambda x, g: g), "+1 where x >= 0"),
])
def test_check_1_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_1(wrong)
    message = str(info.value)
    assert message.startswith(f"{LABEL_1}:")
    assert hint in message


def fake_quantize_ste_solution(x, scale, zero_point, bits):
    q_min, q_max = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    codes = x / scale
    codes = codes + (torch.round(codes) - codes).detach()
    codes = torch.clamp(codes + zero_point, q_min, q_max)
    return (codes - zero_point) * scale


def fake_quantize_ste_library(x, scale, zero_point, bits):
    return quant.fake_quantize(x, scale, zero_point, bits, signed=True)


def fake_quantize_plain_round(x, scale, zero_point, bits):
    q_min, q_max = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return (torch.clamp(torch.round(x / scale) + zero_point, q_min, q_max) - zero_point) * scale


def fake_quantize_whole_detach(x, scale, zero_point, bits):
    return x + (fake_quantize_plain_round(x, scale, zero_point, bits) - x).detach()


def fake_quantize_mask_on_x(x, scale, zero_point, bits):
    q_min, q_max = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    clipped = torch.clamp(x, scale * (q_min - zero_point), scale * (q_max - zero_point))
    return clipped + (fake_quantize_plain_round(x, scale, zero_point, bits) - clipped).detach()


def fake_quantize_unsigned(x, scale, zero_point, bits):
    codes = x / scale
    codes = codes + (torch.round(codes) - codes).detach()
    return (torch.clamp(codes + zero_point, 0, 2**bits - 1) - zero_point) * scale


@pytest.mark.parametrize("solution", [fake_quantize_ste_solution, fake_quantize_ste_library])
def test_check_2_passes_on_solution(solution, capsys):
    assert check_2(solution) is None  # prints its line, returns nothing
    assert f"✅ {LABEL_2} passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (fake_quantize_plain_round, "torch.round has zero gradient"),
    (fake_quantize_whole_detach, "the gradient passes everywhere"),
    (fake_quantize_mask_on_x, "decided on x instead of on the rounded code"),
    (fake_quantize_unsigned, "the codes are signed"),
    (lambda x, scale, zero_point, bits: x, "must not change the forward value"),
    (lambda x, scale, zero_point, bits: fake_quantize_plain_round(x, scale, zero_point, bits).detach(),
     "not connected to the input"),
])
def test_check_2_fails_with_hint(wrong, hint):
    with pytest.raises(AssertionError) as info:
        check_2(wrong)
    message = str(info.value)
    assert message.startswith(f"{LABEL_2}:")
    assert hint in message
