"""Self-checks of the chapter "Ternary Neural Networks with Fine-Grained Quantization".

Each check calls the student's function on several inputs, compares with a reference built from
:mod:`qteach.papers.fine_grained_ternary` (or plain arithmetic), and either prints the success line or raises
``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import expect, expect_type, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import fine_grained_ternary as fgq
from qteach.papers import ternary_weight_networks as twn

_SLUG = "fine_grained_ternary"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: TWN's rule inside every group ------------------------------------------------------------------

def _cases_1():
    return [
        ("Gaussian weights (6 x 16), N = 4", weight_samples((6, 16), "gaussian", seed=11), 4),
        ("the 1 x 8 example", torch.tensor([[0.1, -0.5, 1.0, -2.0, 0.3, 0.3, -0.2, 0.9]]), 4),
        ("Laplace weights (5 x 24), N = 8", weight_samples((5, 24), "laplace", seed=12), 8),
        ("a group of zeros", torch.tensor([[0.0, 0.0, 0.0, 0.0, 1.0, -0.2, 0.4, 0.0]]), 4),
        ("N = 2", weight_samples((3, 6), "uniform", seed=13), 2),
    ]


def _hint_1(w: torch.Tensor, n: int, got: torch.Tensor) -> str:
    w_t, alpha, _ = twn.ternary_weights(w)
    per_row = fgq.fgq_quantize(w, w.shape[1], rule="twn")
    candidates = [
        (alpha * w_t, "that is one Delta and one alpha for the whole layer (plain TWN); compute them inside every "
                      "group of N consecutive weights of a row."),
        (per_row, "that is one Delta and one alpha per row; a row holds in / N groups, each with its own pair."),
        (fgq.fgq_quantize(w, n), "that is the exact optimal threshold of each group; this exercise asks for TWN's "
                                 "rule Delta_g = 0.7 * mean|W_g|."),
    ]
    if w.shape[0] % n == 0:
        columns = fgq.fgq_quantize(w.T.contiguous(), n, rule="twn").T
        candidates.append((columns, "the groups run along the input dimension (dim 1, within a row), not down the "
                                    "output channels."))
    groups = w.reshape(w.shape[0], -1, n)
    delta = 0.7 * groups.abs().mean(-1, keepdim=True)
    t = (groups > delta).to(w.dtype) - (groups < -delta).to(w.dtype)
    candidates.append(((groups.abs().mean(-1, keepdim=True) * t).reshape(w.shape),
                       "alpha is the mean magnitude of the weights *above* the threshold, not of the whole group."))
    delta1 = groups.abs().mean(-1, keepdim=True)
    t1 = (groups > delta1).to(w.dtype) - (groups < -delta1).to(w.dtype)
    kept = (t1 != 0).to(w.dtype)
    alpha1 = (groups.abs() * kept).sum(-1, keepdim=True) / kept.sum(-1, keepdim=True).clamp(min=1)
    candidates.append(((alpha1 * t1).reshape(w.shape), "you forgot the factor 0.7: Delta_g = 0.7 * mean |W_g|."))
    for value, hint in candidates:
        if got.shape == value.shape and torch.allclose(got, value, atol=1e-6):
            return hint
    return ("per group g of N consecutive weights of a row: Delta_g = 0.7 * mean|W_g|, keep |W_i| > Delta_g, "
            "alpha_g = mean of the kept magnitudes, result alpha_g * sign(W_i) for kept weights, 0 elsewhere.")


@self_check
def check_1(group_twn) -> str:
    """Check ``group_twn(w, group_size)``: TWN's 0.7 rule applied in every group of ``group_size`` inputs."""
    label = _label(1)
    expect(callable(group_twn), label, "pass your function itself, e.g. check_1(group_twn)")
    for what, w, n in _cases_1():
        got = group_twn(w.clone(), n)
        expect_type(got, torch.Tensor, label, "group_twn(w, group_size)")
        expect(got.shape == w.shape, label, f"on {what}: the result should have the shape of w {tuple(w.shape)}, "
                                            f"got {tuple(got.shape)}")
        reference = fgq.fgq_quantize(w, n, rule="twn")
        if not torch.allclose(got.detach().to(w.dtype), reference, atol=1e-6):
            fail(label, f"on {what}: your quantized weights differ from the reference. {_hint_1(w, n, got.detach())}")
    return passed(label, f"per-group thresholds and scales match on {len(_cases_1())} weight tensors")


# --- exercise 2: counting multiplications -----------------------------------------------------------------------

@self_check
def check_2(count_multiplications) -> str:
    """Check ``count_multiplications(batch, in_features, out_features, group_size)`` against FGQ's count."""
    label = _label(2)
    expect(callable(count_multiplications), label, "pass your function itself, e.g. check_2(count_multiplications)")
    cases = [(1, 64, 10, 4), (8, 128, 32, 64), (3, 10, 5, 4), (2, 7, 3, 8), (5, 16, 16, 1)]
    for batch, k, out, n in cases:
        got = count_multiplications(batch, k, out, n)
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        expect(isinstance(got, (int, float)) and not isinstance(got, bool), label,
               f"count_multiplications should return a number, got {type(got).__name__}")
        w_t = torch.ones(out, k)
        _, reference = fgq.grouped_ternary_linear(torch.zeros(batch, k), w_t, w_t, n)
        if got != reference:
            what = f"batch={batch}, in={k}, out={out}, N={n}"
            if got == batch * out * k:
                hint = "that is one multiplication per weight (float); FGQ needs one per *group* of N weights."
            elif got == batch * out * (k // n):
                hint = ("when N does not divide the input size, the last, shorter group still needs its "
                        "multiplication: round the number of groups up.")
            elif math.isclose(got, batch * out * k / n):
                hint = "the number of groups per row is a whole number: ceil(in / N)."
            elif got == out * math.ceil(k / n):
                hint = "count every sample of the batch."
            else:
                hint = "batch * out * ceil(in / N): one alpha_g * partial-sum product per group, output and sample."
            fail(label, f"for {what}: got {got}, expected {reference}. {hint}")
    return passed(label, f"multiplication counts match for {len(cases)} layer shapes, including ragged groups")
