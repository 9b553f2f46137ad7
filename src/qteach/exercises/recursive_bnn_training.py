"""Self-checks of the chapter on recursive binary neural network training
(notebooks/2019/recursive_bnn_training.ipynb).

Each check calls the student's function on several budgets, compares it with a closed form, and either prints
the success line or raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "recursive_bnn_training"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: bits per weight after K rounds, without rounding ----------------------------------------------


def _bits_per_weight(bits: int, rounds: int) -> float:
    return 1 / (1 - (1 - 1 / bits) ** rounds)


_CASES_1 = ((8, 1), (8, 4), (16, 4), (16, 10), (4, 3), (2, 5), (8, 50))


@self_check
def check_1(bits_per_weight) -> str:
    """Check ``bits_per_weight(bits, rounds)``: S / N_K with N_K = S (1 - (1 - 1/b)^K)."""
    label = _label(1)
    expect(callable(bits_per_weight), label, "pass your function itself, e.g. check_1(bits_per_weight)")
    got = {case: as_number(bits_per_weight(*case), label, f"bits_per_weight{case}") for case in _CASES_1}

    def all_near(target):
        return all(abs(got[c] - target(*c)) <= 1e-3 * max(1.0, abs(target(*c))) for c in _CASES_1)

    if all_near(_bits_per_weight):
        return passed(label, "S / N_K = 1 / (1 - (1 - 1/b)^K): 8 bits and 4 rounds give about 2.42 bits per "
                             "weight, and many rounds approach 1 bit")
    if all_near(lambda b, k: 1 + (b - 1) / k):
        fail(label, "1 + (b - 1)/K is the ledger of K equal chunks; here every round trains all the storage "
                    "that is still free, so the free storage shrinks by (1 - 1/b) per round.")
    if all_near(lambda b, k: 1 - (1 - 1 / b) ** k):
        fail(label, "that is N_K / S, the weights per bit; the question asks for bits per weight, S / N_K.")
    if all_near(lambda b, k: 1 / (1 - (1 - 1 / b) ** (k + 1))) or all_near(
            lambda b, k: 1 / (1 - (1 - 1 / b) ** (k - 1)) if k > 1 else float(b)):
        fail(label, "off by one round: after round 1 alone the network is the conventional one, b bits per "
                    "weight.")
    if got[(8, 1)] != 8 and abs(got[(8, 1)] - 8) > 1e-3:
        fail(label, "after one round (K = 1) every weight still holds its b-bit training copy: the answer must "
                    "be b.")
    fail(label, "the free storage after round k is S (1 - 1/b)^k, so N_K = S (1 - (1 - 1/b)^K); return S / N_K.")


# --- exercise 2: the fixed-chunk variant ----------------------------------------------------------------------


def _fixed_chunk_rounds(budget_bits: int, fan: int, bits: int, chunk_units: int) -> int:
    chunk = chunk_units * fan
    if budget_bits < bits * chunk:
        return 0
    return (budget_bits - bits * chunk) // chunk + 1


_CASES_2 = ((4736, 74, 8, 2), (4736, 74, 8, 8), (4736, 74, 8, 9), (2368, 74, 8, 1), (1000, 10, 16, 3),
            (5000, 10, 4, 7), (592, 74, 8, 1), (591, 74, 8, 1), (100, 10, 8, 5))


@self_check
def check_2(fixed_chunk_rounds) -> str:
    """Check ``fixed_chunk_rounds(budget_bits, fan, bits, chunk_units)``: the rounds of equal chunks that fit."""
    label = _label(2)
    expect(callable(fixed_chunk_rounds), label, "pass your function itself, e.g. check_2(fixed_chunk_rounds)")
    got = {}
    for case in _CASES_2:
        value = as_number(fixed_chunk_rounds(*case), label, f"fixed_chunk_rounds{case}")
        expect(value == int(value), label, f"fixed_chunk_rounds{case} should be a whole number of rounds, got "
                                           f"{value}")
        got[case] = int(value)

    def all_equal(target):
        return all(got[c] == target(*c) for c in _CASES_2)

    if all_equal(_fixed_chunk_rounds):
        return passed(label, "K = floor((S - b c) / c) + 1 rounds of c weights: 8 bits, 2 units per round and "
                             "4736 bits give 25 rounds, 50 units")
    if all_equal(lambda s, f, b, c: s // (c * f)):
        fail(label, "S // c counts every chunk at 1 bit: the chunk that trains last still needs b bits per "
                    "weight.")
    if all_equal(lambda s, f, b, c: s // (b * c * f)):
        fail(label, "S // (b c) is the conventional ledger: frozen chunks cost only 1 bit per weight.")
    if all_equal(lambda s, f, b, c: max(0, (s - b * c * f) // (c * f))):
        fail(label, "off by one: count the last (training) chunk as a round too.")
    if any(value < 0 for value in got.values()):
        fail(label, "a number of rounds is never negative: when even one chunk cannot train (S < b c), return 0.")
    fail(label, "round K fits when (K - 1) c frozen bits plus b c training bits stay within S, with c = "
                "chunk_units * fan weights per chunk.")
