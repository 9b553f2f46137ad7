"""Self-checks of the binary-network survey chapter (notebooks/2020/bnn_survey.ipynb).

Each check calls the student's answer, compares it with the expected one, and either prints the success line or
raises ``AssertionError`` with a hint that names the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.papers import bnn_survey as survey

_SLUG = "bnn_survey"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the gain of each category over the naive binarization ---------------------------------------


def _cases():
    """Fixed accuracy tables (from a seeded generator) over slugs of several categories."""
    g = torch.Generator().manual_seed(0)
    slugs = ["binarized_neural_networks", "binaryconnect", "xnor_net", "abc_net", "ir_net", "bnn_plus",
             "information_capacity"]
    cases = []
    for k in range(4):
        chosen = slugs[: 3 + k] if k < 3 else slugs
        values = (0.3 + 0.6 * torch.rand(len(chosen), generator=g, dtype=torch.float64)).tolist()
        cases.append(dict(zip(chosen, values)))
    return cases


def _reference(accuracy):
    groups = {}
    for slug, value in accuracy.items():
        groups.setdefault(survey.category_of(slug), []).append(value)
    naive = sum(groups[survey.NAIVE]) / len(groups[survey.NAIVE])
    return {c: sum(v) / len(v) - naive for c, v in groups.items()}


@self_check
def check_1(gain_over_naive) -> str:
    """Check ``gain_over_naive(accuracy)``: {category: mean accuracy of its methods - mean of the naive ones}."""
    label = _label(1)
    expect(callable(gain_over_naive), label, "pass your function itself, e.g. check_1(gain_over_naive)")
    for accuracy in _cases():
        got = gain_over_naive(dict(accuracy))
        expect_type(got, dict, label, "gain_over_naive(accuracy)")
        expected = _reference(accuracy)
        expect(set(got) == set(expected), label,
               f"the keys should be the categories of the methods given, {sorted(expected)}, got {sorted(got)}: "
               "look each slug up with paper.category_of(slug) (or paper.CHAPTERS[slug][0]).")
        sums = {c: sum(v for s, v in accuracy.items() if survey.category_of(s) == c) for c in expected}
        naive_sum = sums[survey.NAIVE]
        naive_mean = naive_sum / sum(1 for s in accuracy if survey.category_of(s) == survey.NAIVE)
        for c in expected:
            value = float(got[c])
            if abs(value - expected[c]) < 1e-6:
                continue
            if abs(value + expected[c]) < 1e-6:
                fail(label, f"the sign of {c!r} is flipped: the gain is the category's mean minus the naive mean.")
            if abs(value - (sums[c] - naive_sum)) < 1e-6:
                fail(label, f"{c!r}: you subtracted sums, not means; average each category's accuracies first "
                            "(a category with more methods must not count more).")
            if abs(value - expected[c] - naive_mean) < 1e-6:
                fail(label, f"{c!r}: that is the category's mean accuracy; subtract the mean of the naive methods.")
            fail(label, f"the gain of {c!r} should be {expected[c]:.4f}, got {value:.4f}: the mean accuracy of its "
                        "methods minus the mean accuracy of the methods in 'naive binarization' (which gets 0).")
    return passed(label, "category gains over the naive binarization")


# --- exercise 2: place five methods in the taxonomy -----------------------------------------------------------


#: The descriptions of exercise 2 and the category each belongs to.
DESCRIPTIONS = {
    "a": (("The backward pass of the sign uses the derivative of a piecewise polynomial close to the sign, instead "
          "of the straight-through estimator's box; the forward pass is the plain sign."), survey.GRADIENT),
    "b": (("The training loss adds a term that pulls the binary network's outputs towards those of a trained "
          "real-valued network of the same shape."), survey.LOSS),
    "c": (("Each weight tensor is approximated by the sum of two binary tensors, each with a scale fit by least "
          "squares to the real weights."), survey.QUANTIZATION_ERROR),
    "d": (("A trained binary network is exported to packed bits and evaluated with XNOR and popcount on a "
          "microcontroller, with batch norm folded into integer thresholds."), survey.HARDWARE),
    "e": (("BNN's layers and loss unchanged; trained with Adam, a decaying learning rate and the latent weights "
          "clipped to [-1, 1]."), survey.TRICKS),
}

_WHY = {
    survey.GRADIENT: "it changes only the backward pass of the sign: the gradient error",
    survey.LOSS: "it changes what the network minimises (a teacher term): the loss",
    survey.QUANTIZATION_ERROR: "it makes the binary tensors approximate the real ones better: the quantization error",
    survey.HARDWARE: "it changes how the network runs, not how it learns: hardware-friendly design",
    survey.TRICKS: "nothing in the network or its loss changes, only the recipe: training tricks",
}


def _normalise(answer) -> str:
    return " ".join(str(answer).lower().replace("_", " ").split())


@self_check
def check_2(place) -> str:
    """Check ``place()``: {"a": category, ..., "e": category}, categories named as in ``paper.TAXONOMY``."""
    label = _label(2)
    expect(callable(place), label, "pass your function itself, e.g. check_2(place)")
    placement = place()
    expect_type(placement, dict, label, "place()")
    expect(set(placement) == set(DESCRIPTIONS), label,
           f"placement should have the keys {sorted(DESCRIPTIONS)}, got {sorted(placement)}")
    names = {_normalise(c): c for c in survey.TAXONOMY}
    for key, (_, category) in DESCRIPTIONS.items():
        given = _normalise(placement[key])
        expect(given in names, label, f"{key!r}: {placement[key]!r} is not a category; use a key of "
                                      "paper.TAXONOMY (e.g. paper.GRADIENT) or its name.")
        expect(names[given] == category, label, f"{key!r} is not {names[given]!r}: {_WHY[category]}.")
    return passed(label, "five methods placed in the survey's categories")
