"""Self-checks of the chapter "ABC-Net: Towards Accurate Binary Convolutional Neural Network".

Each check calls the student's function on several weight tensors, compares with :mod:`qteach.papers.abc_net`,
and either prints the success line or raises ``AssertionError`` with a hint naming the likely mistake.
"""

from __future__ import annotations

import torch

from qteach.checks import expect, fail, passed, self_check
from qteach.data import weight_samples
from qteach.papers import abc_net as abc

_SLUG = "abc_net"


def _label(n: int) -> str:
    return f"ex-{_SLUG}-{n}"


# --- exercise 1: the shifted bases -------------------------------------------------------------------------------

@self_check
def check_1(abc_bases) -> None:
    """Check ``abc_bases(w, M)`` -> tensor (M, *w.shape) of sign(W - mean(W) + u_i std(W))."""
    label = _label(1)
    expect(callable(abc_bases), label, "pass your function itself, e.g. check_1(abc_bases)")
    cases = [
        ("[1, 2, 3, 4], M = 3", torch.tensor([1.0, 2.0, 3.0, 4.0]), 3),
        ("[1, 2, 3, 4, 5], M = 3 (the middle weight sits exactly on a threshold)",
         torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0]), 3),
        ("Gaussian filters (8, 3, 3) with a non-zero mean, M = 5",
         weight_samples((8, 3, 3), "gaussian", scale=0.1, seed=1) + 0.05, 5),
        ("Laplace weights, M = 2", weight_samples(300, "laplace", seed=2) - 0.2, 2),
    ]
    for what, w, m in cases:
        got = abc_bases(w.clone(), m)
        expect(isinstance(got, torch.Tensor), label, f"abc_bases should return a tensor, got {type(got).__name__}")
        expect(got.shape == (m, *w.shape), label, f"on {what}: shape {tuple(got.shape)}, expected "
                                                  f"{(m, *tuple(w.shape))}: the M bases stacked on a new first axis")
        ref = abc.binary_bases(w, m)
        got = got.detach().to(ref.dtype)
        if torch.equal(got, ref):
            continue
        u = torch.linspace(-1.0, 1.0, m).reshape(-1, *([1] * w.dim()))
        std = w.std(unbiased=False)
        if bool((got == 0).any()):
            hint = "a value exactly on a threshold gives torch.sign(0) = 0; binary bases need sign(0) = +1 " \
                   "(qteach.binary.sign)."
        elif torch.equal(got, torch.where(w.unsqueeze(0) + u * std >= 0, 1.0, -1.0)):
            hint = "centre the weights first: W - mean(W), then add u_i * std(W)."
        elif torch.equal(got, torch.where(w.unsqueeze(0) - w.mean() + torch.linspace(0.0, 1.0, m).reshape(u.shape)
                                          * std >= 0, 1.0, -1.0)):
            hint = "the shifts u_i are spread over [-1, 1]: u_i = -1 + (i - 1) * 2 / (M - 1)."
        elif torch.equal(got, torch.where(w.unsqueeze(0) - w.mean() + u >= 0, 1.0, -1.0)):
            hint = "scale the shifts by the standard deviation: + u_i * std(W)."
        else:
            hint = "B_i = sign(W - mean(W) + u_i * std(W)), u_i = -1 + (i - 1) * 2 / (M - 1), over the whole tensor."
        fail(label, f"on {what}: the bases differ. {hint}")
    passed(label, f"your bases match ABC-Net's on {len(cases)} tensors, a weight on a threshold included")


# --- exercise 2: the least-squares scales ------------------------------------------------------------------------

@self_check
def check_2(abc_alphas) -> None:
    """Check ``abc_alphas(w, bases)`` -> (M,) least-squares scales of the fixed bases."""
    label = _label(2)
    expect(callable(abc_alphas), label, "pass your function itself, e.g. check_2(abc_alphas)")
    cases = [
        ("[1, 2, 3, 4], M = 2 (orthogonal bases)", torch.tensor([1.0, 2.0, 3.0, 4.0]), 2),
        ("Gaussian filters, M = 3", weight_samples((16, 3, 3), "gaussian", scale=0.1, seed=3), 3),
        ("Laplace weights, M = 5", weight_samples(400, "laplace", seed=4), 5),
        ("shifted uniform weights, M = 1", weight_samples(50, "uniform", seed=5) + 0.3, 1),
    ]
    for what, w, m in cases:
        w = w.double()
        bases = abc.binary_bases(w, m)
        got = abc_alphas(w.clone(), bases.clone())
        expect(isinstance(got, torch.Tensor), label, f"abc_alphas should return a tensor, got {type(got).__name__}")
        expect(got.numel() == m, label, f"on {what}: {got.numel()} scales, expected one per basis ({m})")
        ref = abc.basis_scales(w, bases)
        got = got.detach().reshape(-1).double()
        if torch.allclose(got, ref, rtol=1e-5, atol=1e-7):
            continue
        flat = bases.reshape(m, -1)
        separate = flat @ w.reshape(-1) / flat.shape[1]
        hint = "solve the joint least squares (B^T B) alpha = B^T w, B the n x M matrix of flattened bases."
        if torch.allclose(got, separate, rtol=1e-5):
            hint = ("each alpha_i = B_i . w / n is the best scale for basis i alone; the bases are correlated, so "
                    "solve for all the alphas together: (B^T B) alpha = B^T w.")
        elif torch.allclose(got, torch.full_like(got, float(w.abs().mean()))):
            hint = "mean|W| is XNOR-Net's scale for a single sign basis; with several bases solve the least squares."
        fail(label, f"on {what}: alpha = {[round(v, 5) for v in got.tolist()]}, expected "
                    f"{[round(v, 5) for v in ref.tolist()]}. {hint}")
    passed(label, f"your scales are the least-squares solution on {len(cases)} tensors, M = 1 to 5")
