"""Self-checks of the chapter "Ternary Neural Networks with Fine-Grained Quantization".

Each check calls the student's function on several inputs, compares with a reference built from
:mod:`qteach.papers.fine_grained_ternary` (exercise 1) or with the exact minimum of the squared error (exercise 2),
and either prints the success line or raises
``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, expect_tensor_like, fail, passed, self_check
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
        (alpha * w_t, ("that is one Delta and one alpha for the whole layer (plain TWN); compute them inside every "
                      "group of N consecutive weights of a row.")),
        (per_row, "that is one Delta and one alpha per row; a row holds in / N groups, each with its own pair."),
        (fgq.fgq_quantize(w, n), ("that is the exact optimal threshold of each group; this exercise asks for TWN's "
                                 "rule Delta_g = 0.7 * mean|W_g|.")),
    ]
    if w.shape[0] % n == 0:
        columns = fgq.fgq_quantize(w.T.contiguous(), n, rule="twn").T
        candidates.append((columns, ("the groups run along the input dimension (dim 1, within a row), not down the "
                                    "output channels.")))
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
        expect_tensor_like(got, w, label, f"on {what}, group_twn(w, group_size)")
        reference = fgq.fgq_quantize(w, n, rule="twn")
        if not torch.allclose(got.detach().to(w.dtype), reference, atol=1e-6):
            fail(label, f"on {what}: your quantized weights differ from the reference. {_hint_1(w, n, got.detach())}")
    return passed(label, f"per-group thresholds and scales match on {len(_cases_1())} weight tensors")


# --- exercise 2: the exact optimum of one group ------------------------------------------------------------------

def _cases_2():
    return [
        ("the group [0.1, -0.5, 1.0, -2.0]", torch.tensor([0.1, -0.5, 1.0, -2.0])),
        ("the group [0.3, 0.3, -0.2, 0.9]", torch.tensor([0.3, 0.3, -0.2, 0.9])),
        ("the group [1, -1, 1, -1] (equal magnitudes)", torch.tensor([1.0, -1.0, 1.0, -1.0])),
        ("a group with one large weight, [0.05, -3, 0.1, 0.02, -0.08, 0.04]",
         torch.tensor([0.05, -3.0, 0.1, 0.02, -0.08, 0.04])),
        ("a group of zeros", torch.zeros(4)),
        ("8 Gaussian weights", weight_samples(8, "gaussian", seed=21)),
        ("16 Laplace weights", weight_samples(16, "laplace", seed=22)),
        ("32 uniform weights", weight_samples(32, "uniform", seed=23)),
    ]


def _best_error(w: torch.Tensor) -> float:
    m = w.double().abs().sort(descending=True).values
    prefix = m.cumsum(0)
    k = torch.arange(1, m.numel() + 1, dtype=torch.float64)
    return float((m**2).sum() - (prefix**2 / k).max())


def _hint_2(w: torch.Tensor, got: torch.Tensor) -> str:
    w64, got64 = w.double(), got.double()
    twn_rule = fgq.fgq_quantize(w.reshape(1, -1), w.numel(), rule="twn").reshape(w.shape).double()
    kept = got64 != 0
    if torch.allclose(got64, twn_rule, atol=1e-6):
        return ("that is TWN's rule of thumb, Delta = 0.7 * mean|W|; the exact optimum tries every 'keep the k "
                "largest' set and takes the k with the smallest error.")
    if kept.sum() == 1 and torch.allclose(got64[kept].abs(), w64.abs().max().reshape(1)):
        return ("you kept only the largest weight: that maximises alpha, not the fit. With the k largest kept, the "
                "error is sum(m^2) - S_k^2 / k (S_k the sum of the k largest magnitudes): maximise S_k^2 / k.")
    if bool(kept.all()) and bool((w64 != 0).all()):
        return "keeping every weight is one candidate (k = N), rarely the best: try every k from 1 to N."
    if bool(kept.any()) and torch.allclose(got64[kept].abs(), torch.full_like(got64[kept], w64.abs().mean().item())):
        return "alpha is the mean magnitude of the weights you keep, not of the whole group."
    if bool(kept.any()) and torch.allclose(got64[kept].abs(), torch.ones_like(got64[kept])):
        return "return the quantized weights alpha * t, not the ternary pattern t alone."
    return ("sort the magnitudes in decreasing order; keeping the k largest with alpha = their mean leaves the error "
            "sum(m^2) - S_k^2 / k; choose the k that minimises it and return alpha * sign(W) on the kept weights.")


@self_check
def check_2(optimal_ternary) -> str:
    """Check ``optimal_ternary(w) -> alpha * t`` for one group: any ternary approximation ``alpha * t``,
    ``t`` in {-1, 0, +1}, whose squared error equals the exact minimum is accepted."""
    label = _label(2)
    expect(callable(optimal_ternary), label, "pass your function itself, e.g. check_2(optimal_ternary)")
    for what, w in _cases_2():
        got = optimal_ternary(w.clone())
        expect_tensor_like(got, w, label, f"on {what}, optimal_ternary(w)")
        got = got.detach().double()
        expect(bool(torch.isfinite(got).all()), label,
               f"on {what}: the result has NaN or inf. A group of zeros keeps nothing: avoid dividing by 0 (return "
               f"zeros).")
        magnitudes = got[got != 0].abs()
        expect(magnitudes.numel() == 0 or bool(torch.allclose(magnitudes, magnitudes[:1].expand_as(magnitudes),
                                                               rtol=1e-5, atol=1e-7)),
               label, f"on {what}: a ternary group has one scale: the non-zero outputs should all be +alpha or "
                      f"-alpha, got magnitudes {sorted({round(v, 4) for v in magnitudes.tolist()})}")
        error = float(((w.double() - got) ** 2).sum())
        best = _best_error(w)
        if error > best + 1e-5 * max(1.0, best):
            fail(label, f"on {what}: your squared error is {error:.5g}, the optimum is {best:.5g}. "
                        f"{_hint_2(w, got)}")
    many = weight_samples((125, 8), "gaussian", seed=24)
    kept = {rule: (fgq.group_ternary(many, 8, rule=rule)[0] != 0).sum().item() / 125 for rule in ("optimal", "twn")}
    return passed(label, f"your groups reach the exact minimum on {len(_cases_2())} groups. On 125 Gaussian groups "
                         f"of 8, the optimum keeps {kept['optimal']:.2f} weights per group on average, the 0.7 rule "
                         f"{kept['twn']:.2f}")
