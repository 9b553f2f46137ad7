"""Self-checks of the chapter "daBNN: A Super Fast Inference Framework for Binary Neural Networks on ARM devices".

Each check calls the student's function on several inputs, compares with :mod:`qteach.papers.dabnn`, and either
prints the success line or raises ``AssertionError`` with a hint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from qteach import bitops
from qteach.binary import sign
from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import dabnn as d

_SLUG = "dabnn"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: daBNN's convolution in plain PyTorch -------------------------------------------------------------

def _cases_1():
    g = torch.Generator().manual_seed(7)
    cases = [(torch.randn(1, 3, 5, 5, generator=g), torch.randn(2, 3, 3, 3, generator=g), 1),
             (torch.randn(2, 5, 4, 6, generator=g), torch.randn(3, 5, 3, 3, generator=g), 2),
             (torch.randn(1, 2, 4, 4, generator=g), torch.randn(1, 2, 1, 1, generator=g), 0)]
    zeros = torch.tensor([[[[0.0, -1.0, 2.0], [-0.5, 0.0, 3.0], [1.0, -2.0, 0.0]]]])
    cases.append((zeros, torch.tensor([[[[1.0, -1.0], [0.0, -3.0]]]]), 1))
    return cases


@self_check
def check_1(dabnn_reference) -> str:
    """Check ``dabnn_reference(x, w, padding)``: conv of the signs with the input padded by -1, as daBNN does."""
    label = _label(1)
    expect(callable(dabnn_reference), label, "pass your function itself, e.g. check_1(dabnn_reference)")
    for x, w, p in _cases_1():
        got = dabnn_reference(x.clone(), w.clone(), p)
        expect_type(got, torch.Tensor, label, f"dabnn_reference(x, w, {p})")
        expected = bitops.binary_conv2d(x, w, 1, p, pad_value=-1, method="direct")
        if got.shape != expected.shape:
            fail(label, f"expected shape {tuple(expected.shape)}, got {tuple(got.shape)}: pad by `padding` on "
                        "all four sides and convolve with stride 1.")
        if not torch.equal(got.round().to(torch.int32), expected):
            zero_padded = F.conv2d(sign(x), sign(w), padding=p)
            plus_padded = F.conv2d(F.pad(sign(x), [p] * 4, value=1.0), sign(w))
            if torch.equal(got.round(), zero_padded.round()):
                hint = ("you padded with 0 (F.conv2d's padding). daBNN's binary tensors cannot hold 0: pad.h fills "
                        "the border with 0 bits, which mean -1. Pad the signs with F.pad(..., value=-1).")
            elif torch.equal(got.round(), plus_padded.round()):
                hint = "you padded with +1; daBNN's padding word (all 0 bits) means -1."
            elif bool((x == 0).any()):
                hint = ("the outputs differ on an input with zeros: torch.sign(0) is 0, not a sign. Binarise with "
                        "qteach.binary.sign (sign(0) = +1) as the kernels do.")
            else:
                hint = "the values differ from daBNN's direct convolution: binarise x and w, pad with -1, convolve."
            fail(label, hint)
    return passed(label, "your reference equals daBNN's direct binary convolution on 4 layers, -1 padding included")


# --- exercise 2: how often must the direct convolution reduce its byte counters? ----------------------------------

_CASES_2 = [1, 2, 9, 18, 30, 31, 32, 36, 62, 63, 64, 100, 288, 1000]


@self_check
def check_2(reductions) -> str:
    """Check ``reductions(vectors)``: the fewest ``addv`` so that no 8-bit lane of the accumulator overflows."""
    label = _label(2)
    expect(callable(reductions), label, "pass your function itself, e.g. check_2(reductions)")
    for v in _CASES_2:
        got = reductions(v)
        expect(isinstance(got, int) or (isinstance(got, float) and got.is_integer()), label,
               f"reductions({v}) should be a whole number, got {got!r}")
        expected = -(-v // d.LANE_VECTORS)
        if int(got) != expected:
            if int(got) == -(-v // 32):
                hint = "32 vectors can put 32 * 8 = 256 into one byte lane, which overflows at 255: at most 31 fit."
            elif int(got) == v // d.LANE_VECTORS:
                hint = "round up: a partial group of vectors still needs its own reduction."
            elif int(got) == 1:
                hint = "one addv at the end overflows the byte lanes once more than 31 vectors were added."
            elif int(got) == v:
                hint = "one reduction per vector is what BGEMM does; the direct convolution groups vectors."
            else:
                hint = "cnt writes at most 8 per byte lane and a lane holds at most 255."
            fail(label, f"reductions({v}) = {got!r}, expected {expected}. {hint}")
    return passed(label, f"your reduction count keeps every byte lane below 256 for all {len(_CASES_2)} sizes")
