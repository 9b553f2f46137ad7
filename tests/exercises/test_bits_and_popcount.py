"""The self-checks of "Bits and popcount": the solutions pass, plausible mistakes fail with a hint."""

from __future__ import annotations

import pytest
import torch

from qteach.exercises import bits_and_popcount as ex

LABEL = "ex-bits_and_popcount-{}"


def _popcount(packed):
    return sum(int(((packed >> i) & 1).sum()) for i in range(8))


# --- exercise 1 ---------------------------------------------------------------------------------------------

def packed_dot(pa, pb, k):
    return k - 2 * _popcount(torch.bitwise_xor(pa, pb))


def packed_dot_ints(pa, pb, k):
    xa = int.from_bytes(bytes(pa.tolist()), "little")
    xb = int.from_bytes(bytes(pb.tolist()), "little")
    return k - 2 * (xa ^ xb).bit_count()


def packed_dot_tensor(pa, pb, k):
    return torch.tensor(packed_dot(pa, pb, k))


@pytest.mark.parametrize("solution", [packed_dot, packed_dot_ints, packed_dot_tensor])
def test_check_1_passes_the_solutions(solution, capsys):
    line = ex.check_1(solution)
    assert line.startswith("✅ " + LABEL.format(1))
    assert "✅ " + LABEL.format(1) + " passed" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, hint", [
    (lambda pa, pb, k: _popcount(pa ^ pb), "number of disagreements"),
    (lambda pa, pb, k: k - _popcount(pa ^ pb), "costs 2, not 1"),
    (lambda pa, pb, k: 8 * pa.numel() - 2 * _popcount(pa ^ pb), "true length K"),
    (lambda pa, pb, k: 2 * _popcount(pa ^ pb) - k, "sign is flipped"),
    (lambda pa, pb, k: 2 * _popcount(~(pa ^ pb)) - k, "padding bits counted as agreements"),
    (lambda pa, pb, k: k - 2 * _popcount((pa ^ pb) & 0x7F), "all 8 bits"),
])
def test_check_1_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_1(wrong)
    assert LABEL.format(1) in str(err.value) and hint in str(err.value)


def test_check_1_rejects_a_float():
    with pytest.raises(AssertionError, match="should be an int"):
        ex.check_1(lambda pa, pb, k: float(packed_dot(pa, pb, k)))


# --- exercise 2 ---------------------------------------------------------------------------------------------

def padded_taps(h, w, kernel, padding):
    out_h, out_w = h + 2 * padding - kernel + 1, w + 2 * padding - kernel + 1
    counts = torch.zeros(out_h, out_w, dtype=torch.int64)
    for i in range(out_h):
        for j in range(out_w):
            for dy in range(kernel):
                for dx in range(kernel):
                    y, x = i + dy - padding, j + dx - padding
                    counts[i, j] += not (0 <= y < h and 0 <= x < w)
    return counts


def padded_taps_vectorized(h, w, kernel, padding):
    out_h, out_w = h + 2 * padding - kernel + 1, w + 2 * padding - kernel + 1
    rows = torch.arange(out_h)[:, None] + torch.arange(kernel)[None, :] - padding
    cols = torch.arange(out_w)[:, None] + torch.arange(kernel)[None, :] - padding
    rows_in = ((rows >= 0) & (rows < h)).sum(1)
    cols_in = ((cols >= 0) & (cols < w)).sum(1)
    return kernel * kernel - rows_in[:, None] * cols_in[None, :]


@pytest.mark.parametrize("solution", [padded_taps, padded_taps_vectorized])
def test_check_2_passes_the_solutions(solution, capsys):
    ex.check_2(solution)
    assert "✅ " + LABEL.format(2) + " passed" in capsys.readouterr().out


def taps_inside(h, w, kernel, padding):
    return kernel * kernel - padded_taps(h, w, kernel, padding)


def taps_no_offset(h, w, kernel, padding):
    out_h, out_w = h + 2 * padding - kernel + 1, w + 2 * padding - kernel + 1
    counts = torch.zeros(out_h, out_w, dtype=torch.int64)
    for i in range(out_h):
        for j in range(out_w):
            for dy in range(kernel):
                for dx in range(kernel):
                    counts[i, j] += not (0 <= i + dy < h and 0 <= j + dx < w)
    return counts


def taps_wrong_shape(h, w, kernel, padding):
    return torch.zeros(h + 2 * padding, w + 2 * padding, dtype=torch.int64)  # forgot - k + 1


@pytest.mark.parametrize("wrong, hint", [
    (taps_inside, "taps inside the image"),
    (taps_no_offset, "i + dy - p"),
    (taps_wrong_shape, "(h + 2p - k + 1)"),
    (lambda *args: padded_taps(*args).float(), "integer counts"),
    (lambda *args: padded_taps(*args).tolist(), "torch.Tensor"),
])
def test_check_2_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_2(wrong)
    assert LABEL.format(2) in str(err.value) and hint in str(err.value)


# --- exercise 3 ---------------------------------------------------------------------------------------------

def _plane(values, i):
    return sum(((v >> i) & 1) << k for k, v in enumerate(values))


def signed_bitserial_dot(a, b, a_bits, b_bits):
    return sum((_plane(a, i) & _plane(b, j)).bit_count() << (i + j) for i in range(a_bits) for j in range(b_bits - 1)) \
        - sum((_plane(a, i) & _plane(b, b_bits - 1)).bit_count() << (i + b_bits - 1) for i in range(a_bits))


def signed_bitserial_dot_offset(a, b, a_bits, b_bits):
    """Another correct answer: shift b to unsigned (b + 2**(B-1)), use the unsigned formula, subtract the offset."""
    shifted = [v + 2 ** (b_bits - 1) for v in b]
    unsigned = sum((_plane(a, i) & _plane(shifted, j)).bit_count() << (i + j)
                   for i in range(a_bits) for j in range(b_bits))
    return unsigned - 2 ** (b_bits - 1) * sum(_plane(a, i).bit_count() << i for i in range(a_bits))


def signed_bitserial_dot_tensor(a, b, a_bits, b_bits):
    """A third, with tensors of planes and a one-element tensor result."""
    ta, tb = torch.tensor(a), torch.tensor(b)
    total = torch.tensor(0)
    for i in range(a_bits):
        for j in range(b_bits):
            weight = -(2 ** (i + j)) if j == b_bits - 1 else 2 ** (i + j)
            total = total + weight * (((ta >> i) & 1) & ((tb >> j) & 1)).sum()
    return total


@pytest.mark.parametrize("solution", [signed_bitserial_dot, signed_bitserial_dot_offset, signed_bitserial_dot_tensor])
def test_check_3_passes_the_solution(solution, capsys):
    ex.check_3(solution)
    assert "✅ " + LABEL.format(3) + " passed" in capsys.readouterr().out


def _unsigned_formula(a, b, A, B):
    return sum((_plane(a, i) & _plane(b, j)).bit_count() << (i + j) for i in range(A) for j in range(B))


@pytest.mark.parametrize("wrong, hint", [
    (_unsigned_formula, "top bit weighs -2**(B-1)"),
    (lambda a, b, A, B: _unsigned_formula(a, b, A, B - 1), "do not drop b's top"),
    (lambda a, b, A, B: sum((-1 if i == A - 1 else 1) * (-1 if j == B - 1 else 1)
                            * ((_plane(a, i) & _plane(b, j)).bit_count() << (i + j)) for i in range(A) for j in range(B)),
     "a is unsigned"),
    (lambda a, b, A, B: -signed_bitserial_dot(a, b, A, B), "the sign is flipped"),
    (lambda a, b, A, B: _unsigned_formula([abs(v) for v in a], [abs(v) for v in b], A, B), "abs()"),
    (lambda a, b, A, B: signed_bitserial_dot(a, b, A, B) + 1, "w_j = -2**(B-1)"),
    (lambda a, b, A, B: 1.5, "should be an int"),
])
def test_check_3_rejects_wrong_answers_with_a_hint(wrong, hint):
    with pytest.raises(AssertionError) as err:
        ex.check_3(wrong)
    assert LABEL.format(3) in str(err.value) and hint in str(err.value)


def test_check_3_does_not_let_the_student_mutate_the_cases():
    def mutating(a, b, a_bits, b_bits):
        result = signed_bitserial_dot(a, b, a_bits, b_bits)
        a.clear()
        return result

    ex.check_3(mutating)
    ex.check_3(signed_bitserial_dot)
