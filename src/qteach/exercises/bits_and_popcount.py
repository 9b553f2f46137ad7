"""Self-checks of the Foundations chapter "Bits and popcount".

Each check calls the student's function on several inputs (edge cases included), compares with a reference
computed independently (:mod:`qteach.bitops` or ``torch.nn.functional.conv2d``), and either prints the success
line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import numbers

import torch
import torch.nn.functional as F

from qteach import bitops
from qteach.checks import expect, fail, passed, self_check

_SLUG = "bits_and_popcount"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _as_int(value, label: str, what: str) -> int:
    """A Python int from an int or a one-element integer tensor; fail otherwise."""
    if isinstance(value, torch.Tensor) and value.numel() == 1 and not value.is_floating_point() \
            and value.dtype != torch.bool:
        return int(value.item())
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        fail(label, f"{what} should be an int, got {type(value).__name__} ({value!r})")
    return int(value)


# --- exercise 1: the +-1 dot product from packed bits ---------------------------------------------------------

def _dot_cases():
    generator = torch.Generator().manual_seed(11)
    cases = []
    for k in (1, 7, 8, 13, 64, 100, 200):
        a = torch.randn(k, generator=generator)
        b = torch.randn(k, generator=generator)
        a[::5] = 0.0  # zeros binarize to +1
        cases.append((a, b))
    cases.append((torch.full((10,), -1.0), torch.ones(10)))   # all disagree: -K
    cases.append((torch.zeros(12), torch.zeros(12)))           # all agree (+1): +K
    return cases


_DOT_MISTAKES = [  # (wrong formula of (k, mismatches, n_bytes), hint)
    (lambda k, m, nb: m, "that is popcount(a XOR b), the number of disagreements; the dot product is "
                         "K - 2 * popcount."),
    (lambda k, m, nb: k - m, "each disagreement turns a +1 into a -1, so it costs 2, not 1: K - 2 * popcount."),
    (lambda k, m, nb: 8 * nb - 2 * m, "use the true length K, not 8 x the number of bytes: the padding bits of the "
                                      "last byte are not elements."),
    (lambda k, m, nb: 2 * m - k, "the sign is flipped: popcount(XOR) counts disagreements, so the result is "
                                 "K - 2 * popcount(XOR) (or 2 * popcount(XNOR) - K)."),
    (lambda k, m, nb: 2 * (8 * nb - m) - k, "the XNOR of the padding bits counted as agreements: count the XOR "
                                            "(disagreements), whose padding bits are 0, or mask the padding."),
]


@self_check
def check_1(packed_dot) -> str:
    """Check ``packed_dot(pa, pb, k)`` against :func:`qteach.bitops.xnor_matmul`."""
    label = _label(1)
    expect(callable(packed_dot), label, "pass your function itself, e.g. check_1(packed_dot)")
    cases = _dot_cases()
    results = []  # (k, mismatches, n_bytes, expected, got)
    for a, b in cases:
        k = len(a)
        pa, pb = bitops.pack_bits(a), bitops.pack_bits(b)
        expected = int(bitops.xnor_matmul(a[None], b[None])[0, 0])
        got = _as_int(packed_dot(pa.clone(), pb.clone(), k), label, f"packed_dot(..., k={k})")
        results.append((k, (k - expected) // 2, pa.numel(), expected, got))
    wrong = [r for r in results if r[4] != r[3]]
    if wrong:
        k, _, _, expected, got = wrong[0]
        hint = next((hint for formula, hint in _DOT_MISTAKES
                     if all(formula(k_, m, nb) == g for k_, m, nb, _, g in results)),
                    "XOR the bytes, count the set bits of every byte (all 8 bits), and return K - 2 * popcount.")
        fail(label, f"packed_dot for K = {k} returned {got}, expected {expected} (= sign(a) @ sign(b)); "
                    f"{len(wrong)} of {len(results)} cases are wrong. {hint}")
    return passed(label, f"packed dot product equals xnor_matmul on {len(cases)} vector pairs, K from 1 to 200, "
                         "with zeros and padding bits")


# --- exercise 2: padded taps of a convolution ------------------------------------------------------------------

_TAP_CASES = [(10, 10, 3, 1), (5, 7, 3, 1), (6, 6, 5, 2), (4, 4, 1, 0), (6, 5, 3, 0), (3, 3, 3, 2), (8, 9, 5, 1)]


def _taps_reference(h, w, kernel, padding):
    outside = F.pad(torch.zeros(1, 1, h, w), [padding] * 4, value=1.0)
    return F.conv2d(outside, torch.ones(1, 1, kernel, kernel))[0, 0].round().to(torch.int64)


@self_check
def check_2(padded_taps) -> str:
    """Check ``padded_taps(h, w, kernel, padding)`` against a convolution of the padding mask."""
    label = _label(2)
    expect(callable(padded_taps), label, "pass your function itself, e.g. check_2(padded_taps)")
    for h, w, kernel, padding in _TAP_CASES:
        call = f"padded_taps({h}, {w}, {kernel}, {padding})"
        expected = _taps_reference(h, w, kernel, padding)
        got = padded_taps(h, w, kernel, padding)
        if not isinstance(got, torch.Tensor):
            fail(label, f"{call} should return a torch.Tensor, got {type(got).__name__}")
        if got.is_floating_point() or got.dtype == torch.bool:
            fail(label, f"{call} returned dtype {got.dtype}; return integer counts (torch.int64).")
        if tuple(got.shape) != tuple(expected.shape):
            fail(label, f"{call} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}: with stride 1 the "
                        "output is (h + 2p - k + 1) x (w + 2p - k + 1).")
        got = got.to(torch.int64)
        if torch.equal(got, expected):
            continue
        if torch.equal(got, kernel * kernel - expected):
            hint = "these are the taps inside the image; count the ones in the padding (k*k minus yours)."
        else:
            hint = ("output (i, j) with tap (dy, dx) reads input (i + dy - p, j + dx - p); the tap is padded when "
                    "that row or column is outside [0, h) x [0, w).")
        fail(label, f"{call} is wrong at {int((got != expected).sum())} positions; first row {got[0].tolist()}, "
                    f"expected {expected[0].tolist()}. {hint}")
    return passed(label, f"padded-tap counts equal a convolution of the padding mask on {len(_TAP_CASES)} shapes, "
                         "including no padding and 1x1 kernels")


# --- exercise 3: bit-serial dot product with signed (two's-complement) weights --------------------------------

def _serial_cases():
    generator = torch.Generator().manual_seed(12)
    cases = []
    for a_bits, b_bits, k in [(2, 2, 10), (1, 2, 64), (3, 2, 7), (4, 4, 100), (2, 3, 1), (2, 1, 9)]:
        a = torch.randint(0, 2**a_bits, (k,), generator=generator).tolist()
        b = torch.randint(-(2 ** (b_bits - 1)), 2 ** (b_bits - 1), (k,), generator=generator).tolist()
        cases.append((a, b, a_bits, b_bits))
    cases.append(([3, 3, 3, 3, 3], [-2, -2, -2, -2, -2], 2, 2))   # the most negative weight everywhere
    cases.append(([7, 5, 1], [-1, -1, -1], 3, 3))                 # -1: every bit set
    cases.append(([0, 0, 0], [-4, 3, -1], 1, 3))                  # a is all zero
    return cases


def _plane(values, i: int) -> int:
    """Plane ``i`` as a Python int: bit ``k`` is bit ``i`` of element ``k`` (two's complement for negatives)."""
    return sum(((v >> i) & 1) << k for k, v in enumerate(values))


def _serial(a, b, p, q, weight_a, weight_b):
    return sum(weight_a(i, p) * weight_b(j, q) * (_plane(a, i) & _plane(b, j)).bit_count()
               for i in range(p) for j in range(q))


def _unsigned(i, bits):
    return 2**i


def _twos(i, bits):
    return -(2**i) if i == bits - 1 else 2**i


_SERIAL_MISTAKES = [  # (wrong formula of (a, b, a_bits, b_bits), hint)
    (lambda a, b, p, q: _serial(a, b, p, q, _unsigned, _unsigned),
     "this is the unsigned formula: it reads b's top bit as +2**(B-1), but in two's complement the top bit "
     "weighs -2**(B-1), so its plane's popcounts must be subtracted."),
    (lambda a, b, p, q: _serial(a, b, p, q - 1, _unsigned, _unsigned),
     "do not drop b's top (sign) plane: it carries the weight -2**(B-1)."),
    (lambda a, b, p, q: _serial(a, b, p, q, _twos, _twos),
     "a is unsigned (activations after a ReLU): only b's top plane is negative, a's top plane weighs +2**(A-1)."),
    (lambda a, b, p, q: -_serial(a, b, p, q, _unsigned, _twos),
     "the sign is flipped: only the terms with b's top plane are negative."),
    (lambda a, b, p, q: _serial([abs(v) for v in a], [abs(v) for v in b], p, q, _unsigned, _unsigned),
     "the planes of a negative number are its two's-complement bits ((v >> j) & 1 in Python gives them); "
     "taking abs() loses the sign."),
]


@self_check
def check_3(signed_bitserial_dot) -> str:
    """Check ``signed_bitserial_dot(a, b, a_bits, b_bits)`` (``a`` unsigned, ``b`` two's complement) against the
    integer dot product."""
    label = _label(3)
    expect(callable(signed_bitserial_dot), label, "pass your function itself, e.g. check_3(signed_bitserial_dot)")
    cases = _serial_cases()
    results = []  # (a, b, a_bits, b_bits, expected, got)
    for a, b, a_bits, b_bits in cases:
        expected = int(torch.tensor(a) @ torch.tensor(b))
        got = _as_int(signed_bitserial_dot(list(a), list(b), a_bits, b_bits), label,
                      f"signed_bitserial_dot(..., {a_bits}, {b_bits})")
        results.append((a, b, a_bits, b_bits, expected, got))
    wrong = [r for r in results if r[5] != r[4]]
    if wrong:
        a, b, a_bits, b_bits, expected, got = wrong[0]
        hint = next((hint for formula, hint in _SERIAL_MISTAKES
                     if all(formula(a_, b_, p, q) == g for a_, b_, p, q, _, g in results)),
                    "add 2**i * w_j * popcount(a_i & b_j) over all plane pairs, with w_j = 2**j for the lower planes "
                    "of b and w_j = -2**(B-1) for its top plane.")
        fail(label, f"signed_bitserial_dot(a={a[:6]}{'...' if len(a) > 6 else ''}, b={b[:6]}"
                    f"{'...' if len(b) > 6 else ''}, {a_bits}, {b_bits}) returned {got}, expected {expected} (= the "
                    f"integer dot product); {len(wrong)} of {len(results)} cases are wrong. {hint}")
    return passed(label, f"the signed bit-serial dot product equals the integer dot product on {len(cases)} vector "
                         "pairs (unsigned a of 1 to 4 bits, two's-complement b of 1 to 4 bits, most negative values "
                         "included)")
