"""Self-checks of the chapter "Trained Ternary Quantization".

Each check calls the student's function on several latent-weight tensors and scales, compares with
:mod:`qteach.papers.trained_ternary_quantization`, and either prints the success line or raises ``AssertionError``
with a hint naming the likely mistake.
"""

from __future__ import annotations

import math

import torch

from qteach.checks import as_number, expect, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import trained_ternary_quantization as ttq

_SLUG = "trained_ternary_quantization"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


def _cases():
    return [
        ("[0.1, -0.5, 1.0, -2.0] (0.1 sits exactly at Delta)", torch.tensor([0.1, -0.5, 1.0, -2.0]), 1.5, 0.5, 0.05),
        ("Gaussian weights, t = 0.05", weight_samples((8, 9), "gaussian", seed=1), 0.9, 1.2, 0.05),
        ("Laplace weights, t = 0.3", weight_samples(300, "laplace", seed=2), 1.1, 0.7, 0.3),
        ("uniform weights, t = 0.5", weight_samples((5, 4, 3), "uniform", seed=3), 2.0, 0.25, 0.5),
    ]



# --- exercise 1: the forward pass --------------------------------------------------------------------------------

@self_check
def check_1(ttq_forward) -> None:
    """Check ``ttq_forward(w, w_p, w_n, t)`` against the ternary function with Delta = t * max|w|."""
    label = _label(1)
    expect(callable(ttq_forward), label, "pass your function itself, e.g. check_1(ttq_forward)")
    for what, w, w_p, w_n, t in _cases():
        got = ttq_forward(w.clone(), w_p, w_n, t)
        expect(isinstance(got, torch.Tensor), label, f"ttq_forward should return a tensor, got {type(got).__name__}")
        expect(got.shape == w.shape, label, f"on {what}: shape {tuple(got.shape)}, expected {tuple(w.shape)}")
        ref = ttq.ttq_ternarize(w, w_p, w_n, t)
        got = got.detach().to(ref.dtype)
        if torch.allclose(got, ref, atol=1e-6):
            continue
        delta = t * w.abs().max()
        hint = "w_t = W_p where w > Delta, -W_n where w < -Delta, 0 otherwise, with Delta = t * max|w|."
        twn_delta = 0.7 * w.abs().mean()
        if torch.allclose(got.abs() > 0, w.abs() > twn_delta):
            hint = "that threshold is TWN's 0.7 * E|w|; TTQ uses Delta = t * max|w|."
        elif bool((got[w < -delta] > 0).any()):
            hint = "negative weights map to -W_n (W_n is a positive scale): mind the minus sign."
        elif bool((got[w < -delta] == -w_p).all()) and w_p != w_n:
            hint = "the negative side has its own scale: use -W_n there, not -W_p."
        elif bool((got[(w.abs() == delta)] != 0).any()):
            hint = "a weight exactly at +-Delta becomes 0: use w > Delta, not w >= Delta."
        fail(label, f"on {what}: the ternary weights differ from the paper's. {hint}")
    passed(label, f"your ternary weights match on {len(_cases())} tensors, including a weight exactly at Delta")


# --- exercise 2: the backward pass -------------------------------------------------------------------------------

@self_check
def check_2(ttq_backward) -> None:
    """Check ``ttq_backward(w, grad, w_p, w_n, t) -> (grad_w, grad_w_p, grad_w_n)`` against the paper's rules."""
    label = _label(2)
    expect(callable(ttq_backward), label, "pass your function itself, e.g. check_2(ttq_backward)")
    for k, (what, w, w_p, w_n, t) in enumerate(_cases()):
        grad = weight_samples(tuple(w.shape), "gaussian", seed=10 + k) + 0.3
        result = ttq_backward(w.clone(), grad.clone(), w_p, w_n, t)
        expect(isinstance(result, (tuple, list)) and len(result) == 3, label,
               "ttq_backward should return three things: (grad_w, grad_w_p, grad_w_n)")
        grad_w, grad_p, grad_n = result
        ref_w, ref_p, ref_n = ttq.ttq_gradients(grad, w, w_p, w_n, t)
        pos, neg = ttq.ternary_masks(w, t)
        expect(isinstance(grad_w, torch.Tensor) and grad_w.shape == w.shape, label,
               f"on {what}: grad_w should be a tensor of shape {tuple(w.shape)}")
        grad_w = grad_w.detach().to(ref_w.dtype)
        if not torch.allclose(grad_w, ref_w, atol=1e-5):
            hint = "scale the incoming gradient by W_p on I_p, by 1 on the zeros, by W_n on I_n."
            if torch.allclose(grad_w, grad, atol=1e-5):
                hint = ("that is the plain straight-through estimator; TTQ scales it by W_p on I_p and by W_n on "
                        "I_n (the 'scaled gradients' of the paper).")
            elif torch.allclose(grad_w, grad * (pos | neg), atol=1e-5) or torch.allclose(
                    grad_w, ref_w * (pos | neg), atol=1e-5):
                hint = "the zero region still passes the gradient, with factor 1: that lets weights leave zero."
            elif torch.allclose(grad_w, grad * torch.where(pos, w_n, torch.where(neg, w_p, 1.0)), atol=1e-5):
                hint = "you swapped the scales: W_p goes with the positive weights, W_n with the negative ones."
            fail(label, f"on {what}: grad_w differs. {hint}")
        p = as_number(grad_p, label, "grad_w_p")
        n = as_number(grad_n, label, "grad_w_n")
        if not math.isclose(p, float(ref_p), rel_tol=1e-5, abs_tol=1e-5):
            hint = "dL/dW_p is the sum of dL/dw_t over I_p = {w > Delta}."
            if math.isclose(p, float((grad * pos).sum() / max(int(pos.sum()), 1)), rel_tol=1e-5):
                hint = "sum the gradients over I_p, do not average them."
            fail(label, f"on {what}: grad_w_p = {p:.6g}, expected {float(ref_p):.6g}. {hint}")
        if not math.isclose(n, float(ref_n), rel_tol=1e-5, abs_tol=1e-5):
            hint = "dL/dW_n is minus the sum of dL/dw_t over I_n = {w < -Delta}."
            if math.isclose(n, -float(ref_n), rel_tol=1e-5):
                hint = ("the sign is wrong: w_t = -W_n on I_n, so dw_t/dW_n = -1 and dL/dW_n = -sum over I_n. "
                        "(Transcriptions of the paper's equation drop this minus; the authors' code has it.)")
            elif math.isclose(n, float((grad * neg).sum() / max(int(neg.sum()), 1)), rel_tol=1e-5) or math.isclose(
                    n, -float((grad * neg).sum() / max(int(neg.sum()), 1)), rel_tol=1e-5):
                hint = "sum the gradients over I_n, do not average them (and keep the minus sign)."
            fail(label, f"on {what}: grad_w_n = {n:.6g}, expected {float(ref_n):.6g}. {hint}")
    passed(label, f"your three gradients match the paper's rules on {len(_cases())} tensors")
