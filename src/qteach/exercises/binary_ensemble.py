"""Self-checks of the chapter on the Binary Ensemble Neural Network (notebooks/2019/binary_ensemble.ipynb).

Each check calls the student's function, compares it with a closed form, and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import math

from qteach.checks import as_number, expect, fail, passed, self_check

_SLUG = "binary_ensemble"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the SAMME vote weight -------------------------------------------------------------------------


def _samme(e: float, c: int) -> float:
    return math.log((1 - e) / e) + math.log(c - 1)


_CASES_1 = ((0.1, 10), (0.3, 10), (0.5, 10), (0.9, 10), (0.2, 2), (0.4, 3), (0.75, 4))


@self_check
def check_1(samme_alpha) -> str:
    """Check ``samme_alpha(error, num_classes)``: log((1 - e) / e) + log(C - 1)."""
    label = _label(1)
    expect(callable(samme_alpha), label, "pass your function itself, e.g. check_1(samme_alpha)")
    values = {c: as_number(samme_alpha(*c), label, f"samme_alpha{c}") for c in _CASES_1}

    def all_near(target):
        return all(abs(values[c] - target(*c)) <= 1e-6 * max(1.0, abs(target(*c))) for c in _CASES_1)

    if all_near(_samme):
        return passed(label, "alpha = log((1 - e)/e) + log(C - 1): zero at e = 1 - 1/C, the error of guessing")
    if all_near(lambda e, c: 0.5 * _samme(e, c)):
        fail(label, "the 1/2 belongs to two-class AdaBoost (Boost A); SAMME's weight has no factor 1/2.")
    if all_near(lambda e, c: math.log((1 - e) / e)):
        fail(label, "missing the + log(C - 1) term: without it a 10-class member with 60 % error gets a negative "
                    "weight although it is far better than guessing (90 % error).")
    if all_near(lambda e, c: math.log(e / (1 - e)) + math.log(c - 1)):
        fail(label, "the ratio is upside down: a member with a small error must get a large weight, "
                    "log((1 - e) / e).")
    if all_near(lambda e, c: math.log((1 - e) / e) + math.log(c)):
        fail(label, "log(C - 1), not log(C): the weight must vanish at the guessing error e = 1 - 1/C.")
    fail(label, "alpha = log((1 - e) / e) + log(C - 1), natural logarithms.")


# --- exercise 2: how much of the data a bootstrap sample sees --------------------------------------------------


def _unique(n: int) -> float:
    return 1 - (1 - 1 / n) ** n


_CASES_2 = (1, 2, 3, 5, 10, 1347)


@self_check
def check_2(unique_fraction) -> str:
    """Check ``unique_fraction(n)``: expected fraction of distinct examples in a bootstrap sample of size n."""
    label = _label(2)
    expect(callable(unique_fraction), label, "pass your function itself, e.g. check_2(unique_fraction)")
    values = {n: as_number(unique_fraction(n), label, f"unique_fraction({n})") for n in _CASES_2}

    def all_near(target, tol=2e-3):
        return all(abs(values[n] - target(n)) <= tol for n in _CASES_2)

    if all_near(_unique):
        return passed(label, "1 - (1 - 1/n)^n: 100 % for n = 1, 75 % for n = 2, about 63.2 % for large n")
    if all_near(lambda n: 1 - math.exp(-1)):
        fail(label, "1 - 1/e is the limit for large n only; for n = 1 the one draw is certainly the one example, "
                    "for n = 2 the fraction is 3/4. Use the exact probability that an example is drawn.")
    if all_near(lambda n: (1 - 1 / n) ** n):
        fail(label, "that is the fraction never drawn (left out of the bag); the question asks for the distinct "
                    "examples that are in it.")
    if all_near(lambda n: 1 - (1 - 1 / n) ** (n - 1)) or all_near(lambda n: 1 - (1 / n) ** n):
        fail(label, "an example is missed by one draw with probability 1 - 1/n, and there are n independent draws.")
    if any(not 0 <= v <= 1 for v in values.values()):
        fail(label, "a fraction lies between 0 and 1.")
    fail(label, "by linearity of expectation the fraction is the probability that one given example is drawn at "
                "least once in n draws with replacement.")
